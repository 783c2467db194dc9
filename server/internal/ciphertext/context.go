package ciphertext

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf8"
)

// MaxContextLen bounds the canonical encoding of an encryption context.
const MaxContextLen = 8192

// CanonicalContext encodes an encryption context so that equal maps give
// equal bytes regardless of insertion order, and any difference in a key or
// value (including case) gives different bytes. Layout: a uint32 pair count,
// then for each pair in byte-wise key order a uint32 key length, the key, a
// uint32 value length and the value (all big-endian). A nil or empty map
// encodes to four zero bytes.
func CanonicalContext(ctx map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(ctx))
	size := 4
	for k, v := range ctx {
		if k == "" {
			return nil, fmt.Errorf("%w: empty key", ErrInvalidContext)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("%w: not UTF-8", ErrInvalidContext)
		}
		size += 8 + len(k) + len(v)
		if size > MaxContextLen {
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidContext, MaxContextLen)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]byte, 0, size)
	out = binary.BigEndian.AppendUint32(out, uint32(len(keys)))
	for _, k := range keys {
		v := ctx[k]
		out = binary.BigEndian.AppendUint32(out, uint32(len(k)))
		out = append(out, k...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(v)))
		out = append(out, v...)
	}
	return out, nil
}

// aadDomain starts every AAD: it separates kmsgo ciphertexts from any other
// use of a key.
const aadDomain = "kmsgo/ciphertext/v1\x00"

// AAD returns the additional authenticated data for a blob: a domain
// separator, the blob header and the canonical context.
func AAD(header, canonicalContext []byte) []byte {
	out := make([]byte, 0, len(aadDomain)+4+len(header)+len(canonicalContext))
	out = append(out, aadDomain...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(header)))
	out = append(out, header...)
	return append(out, canonicalContext...)
}
