package hsm

import "errors"

var (
	// ErrUnavailable means the HSM cannot be used right now (device error,
	// lost session, module finalized, recovering). Callers map it to 503.
	ErrUnavailable = errors.New("hsm: unavailable")

	// ErrBusy means no session became free within the configured wait.
	// It also matches ErrUnavailable.
	ErrBusy = &busyError{}

	// ErrKeyNotFound means no key object has the requested id.
	ErrKeyNotFound = errors.New("hsm: key not found")

	// ErrKeyExists means a key object with the requested id already exists.
	ErrKeyExists = errors.New("hsm: key already exists")

	// ErrDecrypt is the one opaque error for any failed decryption or unwrap:
	// wrong key, wrong AAD, tampering, or a malformed blob.
	ErrDecrypt = errors.New("hsm: decryption failed")

	// ErrInvalidArgument reports a bad key size, empty id, or similar.
	ErrInvalidArgument = errors.New("hsm: invalid argument")

	// ErrClosed is returned after Close.
	ErrClosed = errors.New("hsm: backend closed")

	// ErrForeignRootKey means the token's root key belongs to another
	// deployment (see DeploymentBinder).
	ErrForeignRootKey = errors.New("hsm: the root key belongs to another deployment")
)

type busyError struct{}

func (*busyError) Error() string { return "hsm: all sessions busy, wait timed out" }

// Is lets errors.Is(ErrBusy, ErrUnavailable) hold.
func (*busyError) Is(target error) bool { return target == ErrUnavailable }
