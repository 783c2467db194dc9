package ormplugin

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
)

// Stored value formats (see the package documentation):
//
//	"kms1:" || base64url-without-padding( dkid[8] || nonce[12] || AES-GCM ciphertext || tag[16] )
//	"kms2:" || the same, for a row-bound column (the AAD also holds the row's bound value)
const (
	valuePrefix  = "kms1:"
	valuePrefix2 = "kms2:"
	dkIDLen      = 8
	nonceLen     = 12
	tagLen       = 16
	// overhead is the number of binary bytes added to the plaintext.
	overhead  = dkIDLen + nonceLen + tagLen
	aadLabel  = "kmsgo/ormplugin/v1"
	aadLabel2 = "kmsgo/ormplugin/v2"
)

var (
	b64       = base64.RawURLEncoding
	b64Strict = base64.RawURLEncoding.Strict()
)

// CiphertextLen returns the length in bytes (all ASCII) of the stored value
// for a plaintext of n bytes: 5 + ceil(4*(n+36)/3). See the package
// documentation for what n is for each field type.
func CiphertextLen(n int) int {
	return len(valuePrefix) + b64.EncodedLen(n+overhead)
}

// storedValue is a parsed stored value.
type storedValue struct {
	dkID   int64
	nonce  []byte
	sealed []byte // ciphertext || tag
	bound  bool   // format 2: the AAD binds the row
}

// hasPrefix reports whether b starts like an ormplugin value. It is only a
// first filter: a plaintext may start the same way (see classify).
func hasPrefix(b []byte) bool {
	return bytes.HasPrefix(b, []byte(valuePrefix)) || bytes.HasPrefix(b, []byte(valuePrefix2))
}

// parseValue parses a stored value. A value without the prefix is
// ErrNotCiphertext; anything else malformed is ErrDecrypt.
func parseValue(b []byte) (storedValue, error) { return parseValueInto(b, nil) }

// parseValueInto is parseValue decoding into scratch when it is big enough;
// the result then aliases scratch.
func parseValueInto(b, scratch []byte) (storedValue, error) {
	if !hasPrefix(b) {
		return storedValue{}, ErrNotCiphertext
	}
	bound := b[3] == '2'
	body := b[len(valuePrefix):]
	if bytes.IndexByte(body, '\r') >= 0 || bytes.IndexByte(body, '\n') >= 0 { // the decoder skips them
		return storedValue{}, ErrDecrypt
	}
	raw := scratch
	if need := b64.DecodedLen(len(body)); cap(raw) >= need {
		raw = raw[:need]
	} else {
		raw = make([]byte, need)
	}
	n, err := b64Strict.Decode(raw, body)
	if err != nil || n < overhead {
		return storedValue{}, ErrDecrypt
	}
	raw = raw[:n]
	id := int64(binary.BigEndian.Uint64(raw[:dkIDLen]))
	if id <= 0 {
		return storedValue{}, ErrDecrypt
	}
	return storedValue{
		dkID:   id,
		nonce:  raw[dkIDLen : dkIDLen+nonceLen],
		sealed: raw[dkIDLen+nonceLen:],
		bound:  bound,
	}, nil
}

// encodeValue is the inverse of parseValue.
func encodeValue(v storedValue) string {
	raw := make([]byte, 0, dkIDLen+len(v.nonce)+len(v.sealed))
	raw = binary.BigEndian.AppendUint64(raw, uint64(v.dkID))
	raw = append(raw, v.nonce...)
	raw = append(raw, v.sealed...)
	if v.bound {
		return valuePrefix2 + b64.EncodeToString(raw)
	}
	return valuePrefix + b64.EncodeToString(raw)
}

// valueAAD binds a value to its table, column and data key.
func valueAAD(table, column string, dkID int64) []byte {
	return appendAAD(make([]byte, 0, len(aadLabel)+len(table)+len(column)+3+dkIDLen), table, column, dkID)
}

func appendAAD(aad []byte, table, column string, dkID int64) []byte {
	aad = append(aad, aadLabel...)
	aad = append(aad, 0)
	aad = append(aad, table...)
	aad = append(aad, 0)
	aad = append(aad, column...)
	aad = append(aad, 0)
	return binary.BigEndian.AppendUint64(aad, uint64(dkID))
}

// boundAAD is the AAD of a format-2 value: it binds the value to its
// table, column, data key and to the bound column and value of its row.
func boundAAD(table, column string, dkID int64, bindColumn string, bindValue []byte) []byte {
	aad := make([]byte, 0, len(aadLabel2)+len(table)+len(column)+len(bindColumn)+len(bindValue)+4+dkIDLen+4)
	aad = append(aad, aadLabel2...)
	aad = append(aad, 0)
	aad = append(aad, table...)
	aad = append(aad, 0)
	aad = append(aad, column...)
	aad = append(aad, 0)
	aad = binary.BigEndian.AppendUint64(aad, uint64(dkID))
	aad = append(aad, bindColumn...)
	aad = append(aad, 0)
	aad = binary.BigEndian.AppendUint32(aad, uint32(len(bindValue)))
	return append(aad, bindValue...)
}
