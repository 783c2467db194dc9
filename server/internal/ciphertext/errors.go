package ciphertext

import "errors"

var (
	// ErrMalformed reports a blob that is truncated, oversized or has a bad field.
	ErrMalformed = errors.New("ciphertext: malformed blob")
	// ErrUnknownFormat reports a blob whose format version is not supported.
	ErrUnknownFormat = errors.New("ciphertext: unknown format version")
	// ErrInvalidContext reports an encryption context that cannot be encoded
	// (empty key, invalid UTF-8, too large).
	ErrInvalidContext = errors.New("ciphertext: invalid encryption context")
)
