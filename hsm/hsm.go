package hsm

import "context"

// Backend is the one interface the server uses for key material.
//
// All methods are safe for concurrent use. Errors that mean "the HSM cannot be
// used right now" match ErrUnavailable (map them to 503); a failed
// authentication on decrypt is always ErrDecrypt and nothing more specific.
type Backend interface {
	// GenerateKey creates a new AES key of bits (128 or 256) inside the
	// backend under id. The key is persistent, sensitive and not extractable.
	// It fails with ErrKeyExists if id is taken.
	GenerateKey(ctx context.Context, id string, bits int) error

	// ImportKey stores caller-supplied AES material (16 or 32 bytes) under id
	// as a sensitive, non-extractable key. Used for BYOK of HSM-protected keys.
	ImportKey(ctx context.Context, id string, material []byte) error

	// DestroyKey removes the key id. ErrKeyNotFound if there is none.
	DestroyKey(ctx context.Context, id string) error

	// ListKeys returns the ids of all keys whose id starts with prefix, sorted.
	// Used to find and clean orphaned objects.
	ListKeys(ctx context.Context, prefix string) ([]string, error)

	// Encrypt seals plaintext (at most 64 KiB) with AES-GCM under key id with
	// a fresh random 96-bit IV and the given additional authenticated data.
	// The result is the raw parts: the IV (IVSize bytes) and the ciphertext
	// followed by the TagSize-byte tag; no format byte (callers frame them
	// in their own formats). Under the root key, an aad for which IsWrapAAD
	// holds is refused.
	Encrypt(ctx context.Context, id string, plaintext, aad []byte) (Sealed, error)

	// Decrypt opens the parts produced by Encrypt under the same key id and
	// AAD. Any authentication failure and any part of the wrong size (see
	// Sealed.Check) is ErrDecrypt. Decrypt does not modify s.
	Decrypt(ctx context.Context, id string, s Sealed, aad []byte) ([]byte, error)

	// WrapKey protects key material under the deployment's root key so it can
	// be stored outside the backend. aad binds the material to its purpose
	// (for example the master key id and version). The result is a framed
	// Sealed blob (Sealed.Encode: format byte || IV || ciphertext || tag),
	// the form kmsgo stores.
	WrapKey(ctx context.Context, material, aad []byte) ([]byte, error)

	// UnwrapKey reverses WrapKey: it takes the framed blob (ParseSealed).
	// Any failure to open it is ErrDecrypt. The caller must zero the result
	// when done.
	UnwrapKey(ctx context.Context, wrapped, aad []byte) ([]byte, error)

	// Random returns n bytes from the backend's random number generator.
	Random(ctx context.Context, n int) ([]byte, error)

	// Health reports whether the backend can serve requests now. It returns
	// an error matching ErrUnavailable when it cannot.
	Health(ctx context.Context) error

	// Stats reports session-pool figures for metrics.
	Stats() Stats

	// Close releases every resource. The backend is unusable afterwards.
	Close() error
}

// Stats are point-in-time figures about a backend's session pool.
// Backends without a pool report Size 0.
type Stats struct {
	Size      int    // maximum sessions in flight
	InUse     int    // sessions currently lent out
	Waits     uint64 // calls that had to wait for a session
	Timeouts  uint64 // calls that gave up waiting (ErrBusy)
	Available bool   // false while the backend is recovering from a fault
}

// RootKeyID is the default id of the deployment's root key.
const RootKeyID = "kmsgo-root"

// WrapAADPrefix starts the AAD of every WrapKey/UnwrapKey call. Backends
// refuse Encrypt/Decrypt under the root key with an AAD that starts with it,
// so Encrypt can never forge a blob that UnwrapKey accepts.
const WrapAADPrefix = "kmsgo/wrap/v1\x00"

// WrapAAD returns the AAD used by WrapKey/UnwrapKey implementations: the
// domain-separation prefix followed by the caller's aad, so wrapped material
// can never be confused with data encrypted by Encrypt under the root key.
func WrapAAD(aad []byte) []byte {
	out := make([]byte, 0, len(WrapAADPrefix)+len(aad))
	out = append(out, WrapAADPrefix...)
	return append(out, aad...)
}

// IsWrapAAD reports whether aad is reserved for WrapKey/UnwrapKey.
func IsWrapAAD(aad []byte) bool {
	return len(aad) >= len(WrapAADPrefix) && string(aad[:len(WrapAADPrefix)]) == WrapAADPrefix
}

// Zero overwrites b with zeros. Call it on plaintext key buffers when done.
func Zero(b []byte) {
	clear(b)
}
