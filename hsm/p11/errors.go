package p11

import "errors"

var (
	// ErrNoPIN means PINFromEnvOrFile found neither a non-empty environment
	// variable nor a usable PIN file.
	ErrNoPIN = errors.New("p11: no PIN configured")

	// ErrPINFileMode means the PIN file can be read by group or others; it
	// must be 0600 or 0400.
	ErrPINFileMode = errors.New("p11: PIN file must not be readable by group or others")

	// ErrConfig reports an incomplete or inconsistent Config.
	ErrConfig = errors.New("p11: invalid config")

	// ErrModule means the PKCS#11 module could not be loaded or initialised.
	ErrModule = errors.New("p11: cannot load PKCS#11 module")

	// ErrTokenNotFound means no slot holds a token with the configured label
	// (or more than one does).
	ErrTokenNotFound = errors.New("p11: token not found")

	// ErrTokenExists means InitToken found a token with the label already.
	ErrTokenExists = errors.New("p11: a token with this label exists")

	// ErrNoFreeSlot means InitToken found no slot with an uninitialised token.
	ErrNoFreeSlot = errors.New("p11: no slot with an uninitialised token")

	// ErrRootKeyMissing means the root key does not exist in the token and
	// Config.CreateRootKey is false.
	ErrRootKeyMissing = errors.New("p11: root key not found in token")

	// ErrDuplicateKey means more than one key object carries the same id;
	// the backend refuses to guess which one to use.
	ErrDuplicateKey = errors.New("p11: several key objects share one id")
)
