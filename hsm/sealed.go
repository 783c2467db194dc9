package hsm

import "fmt"

// Sealed blob layout, shared by every backend:
//
//	byte 0      format version (SealedV1 = 0x01)
//	bytes 1-12  96-bit AES-GCM IV
//	bytes 13-   AES-GCM ciphertext followed by the 16-byte tag
const (
	SealedV1     byte = 0x01
	IVSize            = 12
	TagSize           = 16
	SealedHeader      = 1 + IVSize
	// SealedOverhead is how many bytes Encrypt adds to a plaintext.
	SealedOverhead = SealedHeader + TagSize
	// MaxSealedSize bounds what ParseSealed accepts (64 KiB of ciphertext).
	MaxSealedSize = SealedOverhead + 64<<10
)

// Sealed is a parsed Sealed blob. IV and Ciphertext alias the input slice.
type Sealed struct {
	IV         []byte // IVSize bytes
	Ciphertext []byte // ciphertext || tag, at least TagSize bytes
}

// ParseSealed splits a blob into IV and ciphertext. It fails with an error
// matching ErrDecrypt on an unknown format byte, a short or oversized blob.
func ParseSealed(b []byte) (Sealed, error) {
	if len(b) < SealedOverhead || len(b) > MaxSealedSize {
		return Sealed{}, fmt.Errorf("%w: sealed blob length %d", ErrDecrypt, len(b))
	}
	if b[0] != SealedV1 {
		return Sealed{}, fmt.Errorf("%w: unknown sealed format 0x%02x", ErrDecrypt, b[0])
	}
	return Sealed{IV: b[1:SealedHeader:SealedHeader], Ciphertext: b[SealedHeader:]}, nil
}

// Encode returns the canonical bytes of s.
func (s Sealed) Encode() []byte {
	out := make([]byte, 0, 1+len(s.IV)+len(s.Ciphertext))
	out = append(out, SealedV1)
	out = append(out, s.IV...)
	return append(out, s.Ciphertext...)
}
