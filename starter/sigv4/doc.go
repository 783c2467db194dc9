// Package sigv4 holds the pure building blocks of AWS Signature Version 4
// (header form, for services other than S3) shared by the kmsclient signer
// and kmsd's verifier (server/internal/auth): the canonical URI path, query
// string and header values, the Host without its default port, the
// derived signing key and the string to sign. Each produces what
// aws-sdk-go-v2's v4 signer produces, byte for byte.
//
// It holds no policy. Which headers a request signs, which it may not,
// how a malformed request is refused, the clock skew window and the
// constant-time comparison of signatures belong to the signer and the
// verifier. The functions append to a caller's buffer so that a hot path
// can build a canonical request without allocating.
//
// It imports only the standard library: the client links nothing else
// through it.
package sigv4
