package httpapi

import (
	"encoding/base64"
	"strconv"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// fastEncode appends the JSON of the answers of the hot crypto routes to
// dst without encoding/json's reflection, byte for byte what writeJSON's
// encoder writes (HTML escaping off, without the newline). It reports
// false for another type, a nil []byte (encoding/json writes null) or a
// string that would need escaping; writeJSON then uses encoding/json.
func fastEncode(dst []byte, v any) ([]byte, bool) {
	switch t := v.(type) {
	case *kmsapi.EncryptResponse:
		if t.CiphertextBlob == nil || !plainJSON(t.KeyID) {
			return dst, false
		}
		dst = appendKeyAndVersion(dst, t.KeyID, t.KeyVersion)
		return append(appendB64(append(dst, `,"ciphertext_blob":`...), t.CiphertextBlob), '}'), true
	case *kmsapi.DecryptResponse:
		if t.Plaintext == nil || !plainJSON(t.KeyID) {
			return dst, false
		}
		dst = appendKeyAndVersion(dst, t.KeyID, t.KeyVersion)
		return append(appendB64(append(dst, `,"plaintext":`...), t.Plaintext), '}'), true
	case *kmsapi.GenerateDataKeyResponse:
		if t.CiphertextBlob == nil || !plainJSON(t.KeyID) {
			return dst, false
		}
		dst = appendKeyAndVersion(dst, t.KeyID, t.KeyVersion)
		if len(t.Plaintext) > 0 { // omitempty
			dst = appendB64(append(dst, `,"plaintext":`...), t.Plaintext)
		}
		return append(appendB64(append(dst, `,"ciphertext_blob":`...), t.CiphertextBlob), '}'), true
	}
	return dst, false
}

func appendKeyAndVersion(dst []byte, keyID string, version int) []byte {
	dst = append(dst, `{"key_id":"`...)
	dst = append(dst, keyID...)
	dst = append(dst, `","key_version":`...)
	return strconv.AppendInt(dst, int64(version), 10)
}

func appendB64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// plainJSON reports whether s is printable ASCII that encoding/json (HTML
// escaping off) writes unchanged between quotes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
