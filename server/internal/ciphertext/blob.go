package ciphertext

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// Format and size limits of a v1 blob.
const (
	FormatV1    byte = 0x01
	MaxKeyIDLen      = 64
	IVSize           = 12
	TagSize          = 16
	// MaxPlaintext is the largest plaintext kmsd encrypts.
	MaxPlaintext = 4096
	// MaxSealedLen bounds the ciphertext||tag part.
	MaxSealedLen = MaxPlaintext + TagSize
	// MaxBlobLen bounds a whole blob.
	MaxBlobLen = 2 + MaxKeyIDLen + 4 + IVSize + MaxSealedLen
)

// Blob is a parsed ciphertext blob. Slices alias the parsed input.
type Blob struct {
	KeyID      string
	KeyVersion uint32
	IV         []byte // IVSize bytes
	Sealed     []byte // AES-GCM ciphertext || tag
}

// ValidKeyID reports whether id may appear in a blob.
func ValidKeyID(id string) bool {
	if len(id) == 0 || len(id) > MaxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Header returns the authenticated header bytes of b (format, key id, version).
func (b Blob) Header() []byte {
	return b.appendHeader(make([]byte, 0, b.headerLen()))
}

func (b Blob) headerLen() int { return 2 + len(b.KeyID) + 4 }

func (b Blob) appendHeader(out []byte) []byte {
	out = append(out, FormatV1, byte(len(b.KeyID)))
	out = append(out, b.KeyID...)
	return binary.BigEndian.AppendUint32(out, b.KeyVersion)
}

// AAD returns AAD(b.Header(), canonicalContext) in one allocation.
func (b Blob) AAD(canonicalContext []byte) []byte {
	out := make([]byte, 0, len(aadDomain)+4+b.headerLen()+len(canonicalContext))
	out = append(out, aadDomain...)
	out = binary.BigEndian.AppendUint32(out, uint32(b.headerLen()))
	out = b.appendHeader(out)
	return append(out, canonicalContext...)
}

// Validate checks every field against the format rules.
func (b Blob) Validate() error {
	switch {
	case !ValidKeyID(b.KeyID):
		return fmt.Errorf("%w: key id", ErrMalformed)
	case b.KeyVersion == 0:
		return fmt.Errorf("%w: key version 0", ErrMalformed)
	case len(b.IV) != IVSize:
		return fmt.Errorf("%w: iv length %d", ErrMalformed, len(b.IV))
	case len(b.Sealed) < TagSize || len(b.Sealed) > MaxSealedLen:
		return fmt.Errorf("%w: sealed length %d", ErrMalformed, len(b.Sealed))
	}
	return nil
}

// Encode returns the canonical bytes of b. It fails if b is not valid.
func (b Blob) Encode() ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, b.headerLen()+IVSize+len(b.Sealed))
	out = b.appendHeader(out)
	out = append(out, b.IV...)
	return append(out, b.Sealed...), nil
}

// parseHook, when set, sees the input of every Parse call. Only tests set
// it (export_test.go), to prove that a request's blob is parsed once.
var parseHook atomic.Pointer[func(raw []byte)]

// Parse splits raw into its fields. It fails with ErrUnknownFormat or
// ErrMalformed; a successful parse re-encodes to exactly raw.
func Parse(raw []byte) (Blob, error) {
	if h := parseHook.Load(); h != nil {
		(*h)(raw)
	}
	if len(raw) == 0 {
		return Blob{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if raw[0] != FormatV1 {
		return Blob{}, fmt.Errorf("%w: 0x%02x", ErrUnknownFormat, raw[0])
	}
	if len(raw) > MaxBlobLen {
		return Blob{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(raw))
	}
	if len(raw) < 2 {
		return Blob{}, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	n := int(raw[1])
	rest := raw[2:]
	if len(rest) < n+4+IVSize {
		return Blob{}, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	b := Blob{
		KeyID:      string(rest[:n]),
		KeyVersion: binary.BigEndian.Uint32(rest[n : n+4]),
		IV:         rest[n+4 : n+4+IVSize : n+4+IVSize],
		Sealed:     rest[n+4+IVSize:],
	}
	if err := b.Validate(); err != nil {
		return Blob{}, err
	}
	return b, nil
}
