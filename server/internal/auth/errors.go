package auth

import "errors"

var (
	// ErrUnauthenticated is the one error for a request that does not carry a
	// valid signature: a malformed or missing Authorization header, a clock
	// skew beyond the window, a wrong region or service, an unknown, disabled
	// or deleted access key, a bad signature, or a replayed nonce. Unknown
	// key, disabled key and bad signature return exactly this value (not a
	// wrapped error) so callers cannot tell them apart. Map it to 401.
	ErrUnauthenticated = errors.New("auth: request not authenticated")

	// ErrNotFound means no access key has the given id.
	ErrNotFound = errors.New("auth: access key not found")

	// ErrInvalidPolicy reports a policy document that does not parse or does
	// not validate (unknown effect, empty actions or resources, bad pattern).
	ErrInvalidPolicy = errors.New("auth: invalid policy")

	// ErrInvalidArgument reports a bad access key id, an over-long
	// description or a similar caller mistake.
	ErrInvalidArgument = errors.New("auth: invalid argument")

	// ErrIdempotencyMismatch reports an idempotency token the same caller
	// used before for an access key with another description or policy.
	ErrIdempotencyMismatch = errors.New("auth: idempotency token already used with other parameters")

	// ErrBootstrapFileExists means EnsureBootstrapAdmin found an existing file
	// at the credentials path and refused to overwrite it.
	ErrBootstrapFileExists = errors.New("auth: bootstrap credentials file already exists")
)
