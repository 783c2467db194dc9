package kmsclient

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Layout of the public header of a kmsd ciphertext blob (format v1): one
// format byte, one key-id length byte, the key id, the key version as a
// big-endian uint32, then a 12-byte IV and the AES-GCM ciphertext and
// 16-byte tag. The header is authenticated by the server but readable by
// anyone; it says which key version a value needs, without a round trip.
const (
	blobFormatV1    = 0x01
	blobMaxKeyIDLen = 64
	blobIVSize      = 12
	blobTagSize     = 16
)

// CiphertextHeader is the public part of a ciphertext blob.
type CiphertextHeader struct {
	KeyID      string
	KeyVersion int
}

// ParseCiphertextHeader reads the key id and key version from a blob made
// by Encrypt (or a data key's CiphertextBlob), without decrypting it: for
// tooling that lists which values still use an old key version. It checks
// the structure only; errors match ErrInvalidCiphertext.
func ParseCiphertextHeader(blob []byte) (CiphertextHeader, error) {
	if len(blob) < 2 {
		return CiphertextHeader{}, fmt.Errorf("%w: truncated header", ErrInvalidCiphertext)
	}
	if blob[0] != blobFormatV1 {
		return CiphertextHeader{}, fmt.Errorf("%w: unknown format 0x%02x", ErrInvalidCiphertext, blob[0])
	}
	n := int(blob[1])
	if n == 0 || n > blobMaxKeyIDLen {
		return CiphertextHeader{}, fmt.Errorf("%w: key id length %d", ErrInvalidCiphertext, n)
	}
	if len(blob) < 2+n+4+blobIVSize+blobTagSize {
		return CiphertextHeader{}, fmt.Errorf("%w: truncated", ErrInvalidCiphertext)
	}
	id := blob[2 : 2+n]
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return CiphertextHeader{}, fmt.Errorf("%w: key id", ErrInvalidCiphertext)
		}
	}
	v := binary.BigEndian.Uint32(blob[2+n:])
	if v == 0 || uint64(v) > uint64(math.MaxInt) {
		return CiphertextHeader{}, fmt.Errorf("%w: key version %d", ErrInvalidCiphertext, v)
	}
	return CiphertextHeader{KeyID: string(id), KeyVersion: int(v)}, nil
}
