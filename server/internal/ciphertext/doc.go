// Package ciphertext defines the kmsd ciphertext blob and the canonical
// encoding of encryption contexts.
//
// A blob is self-describing and canonical: every byte string has at most one
// parse, and re-encoding a parsed blob yields the same bytes. Layout (v1):
//
//	byte  0          format version (FormatV1 = 0x01)
//	byte  1          n = length of the key id (1..MaxKeyIDLen)
//	bytes 2..2+n     key id (lower-case letters, digits and '-')
//	4 bytes          key version, big-endian uint32, >= 1
//	12 bytes         AES-GCM IV
//	rest             AES-GCM ciphertext followed by the 16-byte tag
//	                 (TagSize..MaxSealedLen bytes)
//
// The header (everything before the IV) is authenticated: callers pass
// AAD(header, context) as additional data to AES-GCM, so a blob cannot be
// moved to another key, version or context without failing authentication.
package ciphertext
