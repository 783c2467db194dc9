// Package hsm is the boundary between kmsgo and whatever protects key material.
//
// Everything in kmsgo that touches raw key material goes through the Backend
// interface defined here. Two implementations exist:
//
//   - hsm/p11: a PKCS#11 backend (github.com/miekg/pkcs11), for production HSMs
//     and for SoftHSM2 in tests.
//   - hsm/devhsm: a software backend that keeps its root key in a local 0600
//     file. It is for development and demos only and is NOT an HSM.
//
// A Backend holds AES keys identified by stable string ids that the caller
// chooses (stored as CKA_ID and CKA_LABEL in PKCS#11). Keys never leave the
// backend. One of them, the root key, wraps key material that kmsgo stores
// outside the backend (SOFTWARE-protected master key versions, access-key
// secrets).
//
// Encrypt and Decrypt work on raw parts: Encrypt returns a Sealed value
// holding a fresh random 96-bit IV and the AES-GCM ciphertext with its tag,
// and Decrypt takes one; there is no format byte, so a caller builds its own
// format (the kmsgo ciphertext blob) straight from the parts and hands back
// the parts it parsed. Decrypt refuses parts of the wrong size (an IV other
// than IVSize bytes, a ciphertext shorter than the tag) with ErrDecrypt like
// any other failure. WrapKey and UnwrapKey keep the framed form (see
// sealed.go: format byte || IV || ciphertext || tag), because that is what
// kmsgo stores for wrapped key material. Both backends produce and accept
// the same parts and the same framing.
package hsm
