// Package envelope encrypts files and streams of any size with envelope
// encryption through kmsd, in constant memory.
//
// A Writer gets one data key from KMS (GenerateDataKey under a master key,
// optionally wrapped for more master keys so that any one of them can open
// the stream), writes a header that carries the wrapped data keys, the
// encryption context, the chunk size and a random salt and nonce prefix,
// and then encrypts the data in fixed-size chunks with AES-256-GCM under a
// per-stream key derived with HKDF-SHA256 from the data key, the salt and
// a hash of the header. Each chunk's nonce is the nonce prefix, the chunk
// index and a last-chunk flag (the STREAM construction of age and Tink's
// streaming AEAD), so dropping, reordering, duplicating, truncating or
// extending chunks is detected. A Reader returns a chunk's plaintext only
// after that chunk authenticated, and reports a stream cut at any point as
// ErrAuthentication, never as a clean io.EOF.
//
// The format is versioned and documented in FORMAT.md next to this file.
// The header MAC covers everything but the wrapped data keys, so Rewrap
// can re-encrypt them through KMS ReEncrypt (after a master key rotation,
// or to add or drop a recipient) without the data key ever reaching the
// client and without touching the body.
//
// With a *kmsclient.Cached as the KMS, data keys come from its data-key
// cache (within its age, use and byte limits; WriterOptions.SizeHint is
// what the byte limit counts) and unwrapped keys from its decrypt cache,
// so many small files under one key cost a handful of KMS calls. Reusing
// a data key is safe here: every stream derives its own AES key from a
// fresh random 256-bit salt.
//
// The data key and every derived key are cleared after use (the AES key
// schedule inside crypto/cipher cannot be cleared; it becomes garbage when
// the Writer or Reader is dropped).
package envelope
