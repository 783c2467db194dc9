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
// Encrypt returns a Sealed blob (see sealed.go): a format byte, a fresh random
// 96-bit IV and the AES-GCM ciphertext with its tag. Both backends produce
// and accept the same format.
package hsm
