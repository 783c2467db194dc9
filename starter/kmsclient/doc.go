// Package kmsclient is the Go client of kmsd, the kmsgo key management
// service. Every Go application, the starters and the kmsctl CLI talk to
// kmsd through it.
//
// It follows the HTTP contract in server/internal/httpapi/API.md: each request is
// signed with AWS Signature Version 4 (service "kms", default region
// "local") over the host, X-Amz-Date, X-Amz-Content-Sha256 (the hex SHA-256
// of the body) and, with Config.SendNonce, a fresh random X-Kms-Nonce.
// Every attempt is signed anew with a new date and nonce.
//
// Each attempt is bounded by Config.Timeout; the whole call, retries
// included, by the caller's context. Transient faults — network errors,
// attempt timeouts, 429 and 5xx — are retried up to Config.MaxRetries times
// with capped exponential backoff and full jitter, waiting at least as long
// as a Retry-After header on 429/503 asks (up to MaxRetryAfter). Other 4xx
// answers, InvalidCiphertext above all, are never retried.
//
// Failures from kmsd are *APIError values that match the sentinel of their
// code with errors.Is (ErrNotFound, ErrInvalidCiphertext, ...); IsRetryable
// tells transient faults apart.
//
// Cached wraps a Client with the client-side caches of package dkcache: a
// data-key cache with age, use and byte limits (the AWS Encryption SDK
// model) and a bounded decrypt cache; both zero evicted key material.
//
// The client never logs. Plaintext request bodies are cleared after the
// call; response buffers are cleared after decoding; Config's String
// method redacts the secret key. Callers own every returned Plaintext and
// should clear it when done.
package kmsclient
