package kmsclient

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// decodeResponse decodes a 2xx body into out. The hot answers (Encrypt,
// Decrypt, GenerateDataKey) take a reflection-free path when the body is in
// the simple shape kmsd writes; anything else (escapes, nulls, unknown or
// repeated fields, numbers that are not plain integers, bad base64, ...)
// goes to encoding/json, so the result, errors included, is always what
// json.Unmarshal gives (FuzzFastDecode checks this).
func decodeResponse(raw []byte, out any) error {
	switch o := out.(type) {
	case *kmsapi.EncryptResponse:
		if f, ok := fastDecodeCrypto(raw, fieldKeyID|fieldKeyVersion|fieldBlob); ok {
			*o = kmsapi.EncryptResponse{KeyID: f.keyID, KeyVersion: f.keyVersion, CiphertextBlob: f.blob}
			return nil
		}
	case *kmsapi.DecryptResponse:
		if f, ok := fastDecodeCrypto(raw, fieldKeyID|fieldKeyVersion|fieldPlaintext); ok {
			*o = kmsapi.DecryptResponse{KeyID: f.keyID, KeyVersion: f.keyVersion, Plaintext: f.plaintext}
			return nil
		}
	case *kmsapi.GenerateDataKeyResponse:
		if f, ok := fastDecodeCrypto(raw, fieldKeyID|fieldKeyVersion|fieldPlaintext|fieldBlob); ok {
			*o = kmsapi.GenerateDataKeyResponse{KeyID: f.keyID, KeyVersion: f.keyVersion, Plaintext: f.plaintext, CiphertextBlob: f.blob}
			return nil
		}
	}
	return json.Unmarshal(raw, out)
}

const (
	fieldKeyID = 1 << iota
	fieldKeyVersion
	fieldPlaintext
	fieldBlob
)

type cryptoFields struct {
	keyID      string
	keyVersion int
	plaintext  []byte
	blob       []byte
}

// fastDecodeCrypto parses {"key_id":"..","key_version":N,"plaintext":"..",
// "ciphertext_blob":".."} with only the fields in allowed, each at most
// once, in any order, with JSON whitespace; strings without escapes or
// control characters, key_id valid UTF-8, N a plain integer. ok is false
// for anything else; then it has cleared whatever plaintext it decoded.
func fastDecodeCrypto(raw []byte, allowed int) (f cryptoFields, ok bool) {
	defer func() {
		if !ok {
			clear(f.plaintext)
			f = cryptoFields{}
		}
	}()
	p := fastParser{b: raw}
	if !p.consume('{') {
		return f, false
	}
	seen := 0
	if p.consume('}') {
		return f, p.end()
	}
	for {
		name, ok := p.str()
		if !ok || !p.consume(':') {
			return f, false
		}
		var field int
		switch string(name) {
		case "key_id":
			field = fieldKeyID
		case "key_version":
			field = fieldKeyVersion
		case "plaintext":
			field = fieldPlaintext
		case "ciphertext_blob":
			field = fieldBlob
		default:
			return f, false
		}
		if allowed&field == 0 || seen&field != 0 {
			return f, false
		}
		seen |= field
		switch field {
		case fieldKeyID:
			s, ok := p.str()
			if !ok || !utf8.Valid(s) {
				return f, false
			}
			f.keyID = string(s)
		case fieldKeyVersion:
			n, ok := p.int()
			if !ok {
				return f, false
			}
			f.keyVersion = n
		default:
			s, ok := p.str()
			if !ok {
				return f, false
			}
			b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
			n, err := base64.StdEncoding.Decode(b, s)
			if err != nil {
				clear(b)
				return f, false
			}
			if field == fieldPlaintext {
				f.plaintext = b[:n]
			} else {
				f.blob = b[:n]
			}
		}
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return f, p.end()
		}
		return f, false
	}
}

// maxIntDigits keeps int from overflowing.
const maxIntDigits = 18*(strconv.IntSize/64) + 9*(1-strconv.IntSize/64)

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, if it is next.
func (p *fastParser) consume(c byte) bool {
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (p *fastParser) end() bool {
	p.skipSpace()
	return p.i == len(p.b)
}

// str reads a string with no escapes and no control characters; the result
// aliases the input.
func (p *fastParser) str() ([]byte, bool) {
	if !p.consume('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// int reads -?(0|[1-9][0-9]*) of at most maxIntDigits digits, not followed by a
// fraction or exponent.
func (p *fastParser) int() (int, bool) {
	p.skipSpace()
	neg := false
	if p.i < len(p.b) && p.b[p.i] == '-' {
		neg = true
		p.i++
	}
	start := p.i
	n := 0
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		n = n*10 + int(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > maxIntDigits || (digits > 1 && p.b[start] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}
