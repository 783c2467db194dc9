package envelope

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them (and,
// for KMS failures, the kmsclient error as well, so errors.Is works with
// kmsclient.ErrInvalidKeyState and friends).
var (
	// ErrMalformedHeader means the stream does not start with a
	// well-formed header of a known version (bad magic, lengths out of
	// range, unsorted context, ...).
	ErrMalformedHeader = errors.New("envelope: malformed header")
	// ErrUnsupportedVersion means the header names a format version or
	// algorithm suite this package does not implement.
	ErrUnsupportedVersion = errors.New("envelope: unsupported format version")
	// ErrTruncated means the stream ended inside the header.
	ErrTruncated = errors.New("envelope: stream truncated")
	// ErrAuthentication is the one opaque error for a header or chunk that
	// does not authenticate: tampering, reordering, duplication, a
	// truncated or extended body, a wrong data key. No plaintext of the
	// failing chunk is ever returned.
	ErrAuthentication = errors.New("envelope: message authentication failed")
	// ErrNoRecipient means no recipient in the header could be unwrapped
	// by KMS with the caller's credentials; the joined KMS errors say why
	// (for example a disabled key).
	ErrNoRecipient = errors.New("envelope: no recipient could unwrap the data key")
	// ErrContextMismatch means the header's encryption context differs
	// from the one the reader required.
	ErrContextMismatch = errors.New("envelope: encryption context mismatch")
	// ErrInvalidOptions reports bad writer, reader or rewrap options.
	ErrInvalidOptions = errors.New("envelope: invalid options")
	// ErrTooLarge means a stream would exceed 2^32 chunks.
	ErrTooLarge = errors.New("envelope: stream too large for its chunk size")
	// ErrClosed is returned by Write after Close.
	ErrClosed = errors.New("envelope: writer closed")
)
