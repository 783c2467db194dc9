package kms

import (
	"errors"
	"fmt"

	"github.com/kmsgo/kmsgo/hsm"
)

// Errors returned by the Service. Match them with errors.Is; the HTTP layer
// maps them to status codes as noted. hsm.ErrUnavailable (503) passes
// through unchanged; anything else is a server fault (500).
var (
	// ErrValidation reports a bad request value (400). It is wrapped with a
	// detail that is safe to show to the caller.
	ErrValidation = errors.New("kms: validation error")
	// ErrNotFound reports an unknown key or alias (404).
	ErrNotFound = errors.New("kms: not found")
	// ErrAlreadyExists reports a taken alias name or key id (409).
	ErrAlreadyExists = errors.New("kms: already exists")
	// ErrInvalidKeyState reports an operation the key's state does not
	// allow (409); see the table in the package documentation.
	ErrInvalidKeyState = errors.New("kms: operation not allowed in the key's current state")
	// ErrConcurrentUpdate reports that another replica or request changed
	// the key at the same time (for example two simultaneous rotations; one
	// wins). It matches ErrInvalidKeyState (409); the caller may retry.
	ErrConcurrentUpdate = fmt.Errorf("%w: concurrent update, retry", ErrInvalidKeyState)
	// ErrInvalidCiphertext is the one opaque decryption failure (400): wrong
	// key, wrong encryption context, tampering, unknown format, destroyed
	// version. The precise reason is only available through ReasonCode, for
	// audit and logs; its Error text never varies.
	ErrInvalidCiphertext = errors.New("kms: invalid ciphertext")
	// ErrIdempotencyMismatch reports an idempotency token the same caller
	// used before with other parameters (409).
	ErrIdempotencyMismatch = errors.New("kms: idempotency token already used with other parameters")
	// ErrUnavailable is hsm.ErrUnavailable (503): the HSM cannot be used
	// now. Transports match it without importing the HSM layer.
	ErrUnavailable = hsm.ErrUnavailable
	// ErrKeyVersionDisabled reports a decryption under a key version that
	// is disabled for decryption (retired with DisableKeyVersion; 409, like
	// a disabled key). The message names the key and version and nothing
	// about the ciphertext's contents.
	ErrKeyVersionDisabled = errors.New("kms: key version is disabled for decryption")
	// ErrVersionInUse reports a DisableKeyVersion refused because the
	// version was used for decryption within the retirement quiet period
	// (409). The message says when, and how to wait or force.
	ErrVersionInUse = errors.New("kms: key version is still in use")
)

// versionDisabledError is ErrKeyVersionDisabled for one key version.
type versionDisabledError struct {
	keyID   string
	version int64
}

func (e *versionDisabledError) Error() string {
	return fmt.Sprintf("%s: version %d of key %s is retired; enable it again to decrypt (POST /v1/keys/%s/versions/%d/enable)",
		ErrKeyVersionDisabled.Error(), e.version, e.keyID, e.keyID, e.version)
}
func (e *versionDisabledError) Is(target error) bool { return target == ErrKeyVersionDisabled }

// Reason codes of ErrInvalidCiphertext, for audit and logs only.
const (
	ReasonMalformed        = "malformed"         // blob does not parse
	ReasonUnknownFormat    = "unknown_format"    // unsupported format version
	ReasonKeyNotFound      = "key_not_found"     // key named in the blob does not exist
	ReasonKeyMismatch      = "key_mismatch"      // caller named a different key
	ReasonVersionNotFound  = "version_not_found" // key has no such version
	ReasonVersionDestroyed = "version_destroyed" // version material destroyed
	ReasonAuthFailed       = "auth_failed"       // GCM authentication failed: wrong context or tampering
)

type invalidCiphertextError struct{ reason string }

func (e *invalidCiphertextError) Error() string        { return ErrInvalidCiphertext.Error() }
func (e *invalidCiphertextError) Is(target error) bool { return target == ErrInvalidCiphertext }

func invalidCiphertext(reason string) error { return &invalidCiphertextError{reason: reason} }

// ReasonCode returns the precise reason behind an ErrInvalidCiphertext error
// (one of the Reason* constants), or "" for any other error. Use it for audit
// records and logs only; never return it to the caller.
func ReasonCode(err error) string {
	var e *invalidCiphertextError
	if errors.As(err, &e) {
		return e.reason
	}
	return ""
}

func validationf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrValidation, fmt.Sprintf(format, args...))
}
