// Package dkcache holds the client-side caches of kmsgo: a data-key cache
// and a decrypt cache. Both keep plaintext key material in process memory
// only, bound how long and how much it is used, and zero it when it leaves
// the cache.
//
// DataKeyCache follows the AWS Encryption SDK caching model: a data key
// obtained from GenerateDataKey is reused for further encryptions under the
// same master key and encryption context until it reaches a maximum age, a
// maximum number of uses or a maximum number of protected bytes. The use
// limit defaults to 1<<20, far below the 2^32 messages NIST SP 800-38D allows
// for one AES-GCM key with random 96-bit nonces, and can never be set above
// 2^32.
//
// DecryptCache is a bounded LRU of decryption results keyed by a SHA-256 of
// the ciphertext and the canonical encryption context, with a time to live.
//
// Both caches copy plaintext on the way in and on the way out: the cache owns
// its copy and clears it on expiry, eviction, replacement and Clear; a caller
// owns what Get returns and should clear it when done. A cache must not be
// shared between clients that use different credentials, since a hit skips
// the server's authorization check.
//
// Entries are looked up by a SHA-256 over a length-prefixed encoding of the
// master key id (as the caller spelled it, alias or id) and the encryption
// context sorted by key, so pair order does not matter and matching is exact
// and case-sensitive. All methods are safe for concurrent use.
package dkcache
