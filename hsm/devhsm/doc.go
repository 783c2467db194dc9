// Package devhsm is a software implementation of hsm.Backend for development,
// tests and demos.
//
// THIS IS NOT AN HSM. It offers none of the protection a hardware security
// module gives: its root key is an ordinary file on disk, every key lives in
// the memory of the process, and anyone who can read the directory or the
// process memory can read every key. Never use it for production data.
//
// Layout of the directory given to Open:
//
//	<dir>/root.key        32 random bytes (AES-256), mode 0600
//	<dir>/keys/           mode 0700
//	<dir>/keys/<id>.key   one file per key, mode 0600: the key material
//	                      sealed (AES-256-GCM) under the root key, bound to
//	                      its id, in the framed hsm.Sealed layout that
//	                      WrapKey also returns; <id> is the base64url
//	                      encoding of the id
//
// Open creates root.key from crypto/rand when it is missing and refuses to
// start when root.key, keys/ or a key file is readable by group or others,
// when root.key has the wrong size, or when a key file does not open under
// the root key. Files are written atomically (temporary file, fsync,
// rename). Only one process may use a directory at a time.
//
// The root key is exposed as the key hsm.RootKeyID: WrapKey and UnwrapKey use
// it, and Encrypt and Decrypt accept it as well, except with AAD that starts
// with one of the reserved domain-separation prefixes (hsm.WrapAAD's prefix
// and the key-file prefix), so data encrypted by Encrypt can never pass for
// wrapped key material or for a key file.
//
// Keys are kept unwrapped in memory so that Encrypt and Decrypt are fast.
// Their raw bytes are zeroed on DestroyKey and Close; the expanded AES key
// schedule held inside crypto/aes cannot be wiped and is left to the garbage
// collector. The package logs nothing.
package devhsm
