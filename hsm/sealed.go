package hsm

import "fmt"

// Backend.Encrypt returns, and Backend.Decrypt takes, the raw parts of an
// AES-GCM seal as a Sealed value: the 96-bit IV and the ciphertext followed
// by its 16-byte tag. Only key material wrapped for storage outside the
// backend (WrapKey/UnwrapKey) is framed, with this layout, shared by every
// backend and unchanged since it was introduced:
//
//	byte 0      format version (SealedV1 = 0x01)
//	bytes 1-12  96-bit AES-GCM IV
//	bytes 13-   AES-GCM ciphertext followed by the 16-byte tag
const (
	SealedV1     byte = 0x01
	IVSize            = 12
	TagSize           = 16
	SealedHeader      = 1 + IVSize
	// SealedOverhead is how many bytes framing (Encode) adds to a plaintext.
	SealedOverhead = SealedHeader + TagSize
	// MaxSealedSize bounds what ParseSealed accepts (64 KiB of ciphertext).
	MaxSealedSize = SealedOverhead + 64<<10
	// MaxCiphertext bounds Sealed.Ciphertext (64 KiB of plaintext and the
	// tag): what a framed blob of MaxSealedSize holds.
	MaxCiphertext = MaxSealedSize - SealedHeader
)

// Sealed is the raw parts of an AES-GCM seal: what Backend.Encrypt returns
// and Backend.Decrypt takes, and the parsed form of a framed blob. The
// parts of a parsed blob alias the input slice.
type Sealed struct {
	IV         []byte // IVSize bytes
	Ciphertext []byte // ciphertext || tag, TagSize to MaxCiphertext bytes
}

// Check reports whether s has the sizes every backend accepts: an IV of
// exactly IVSize bytes and a ciphertext of TagSize to MaxCiphertext bytes.
// A failure matches ErrDecrypt (backends return ErrDecrypt itself).
func (s Sealed) Check() error {
	switch {
	case len(s.IV) != IVSize:
		return fmt.Errorf("%w: IV length %d", ErrDecrypt, len(s.IV))
	case len(s.Ciphertext) < TagSize || len(s.Ciphertext) > MaxCiphertext:
		return fmt.Errorf("%w: ciphertext length %d", ErrDecrypt, len(s.Ciphertext))
	}
	return nil
}

// ParseSealed splits a framed blob into IV and ciphertext. It fails with an
// error matching ErrDecrypt on an unknown format byte, a short or oversized
// blob. Whatever it accepts passes Check.
func ParseSealed(b []byte) (Sealed, error) {
	if len(b) < SealedOverhead || len(b) > MaxSealedSize {
		return Sealed{}, fmt.Errorf("%w: sealed blob length %d", ErrDecrypt, len(b))
	}
	if b[0] != SealedV1 {
		return Sealed{}, fmt.Errorf("%w: unknown sealed format 0x%02x", ErrDecrypt, b[0])
	}
	return Sealed{IV: b[1:SealedHeader:SealedHeader], Ciphertext: b[SealedHeader:]}, nil
}

// Encode returns the framed bytes of s (SealedV1 || IV || ciphertext), the
// form WrapKey returns and kmsgo stores.
func (s Sealed) Encode() []byte {
	out := make([]byte, 0, 1+len(s.IV)+len(s.Ciphertext))
	out = append(out, SealedV1)
	out = append(out, s.IV...)
	return append(out, s.Ciphertext...)
}
