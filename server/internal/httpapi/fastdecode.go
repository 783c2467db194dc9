package httpapi

import (
	"encoding/base64"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// fastDecode decodes the usual body of the hot crypto routes (Encrypt,
// Decrypt, GenerateDataKey) without encoding/json's reflection. It accepts
// only a subset of JSON on which it provably agrees with decodeStrict's
// encoding/json decode: one object, field names spelled exactly as the
// tags, each at most once, strings of printable ASCII without escapes,
// base64 strings that decode, plain integers and string maps. It reports
// false for anything else (or for another type), with v left as it found
// it (secrets zeroed); the caller then decodes with encoding/json, which
// also produces the error message.
func fastDecode(body []byte, v any) bool {
	switch v.(type) {
	case *kmsapi.EncryptRequest, *kmsapi.DecryptRequest, *kmsapi.GenerateDataKeyRequest:
	default:
		return false
	}
	d := fastDec{b: body}
	ok := d.object(v)
	if ok {
		d.ws()
		ok = d.i == len(d.b)
	}
	if !ok {
		resetInput(v)
	}
	return ok
}

// resetInput zeroes what fastDecode may have written into v.
func resetInput(v any) {
	switch t := v.(type) {
	case *kmsapi.EncryptRequest:
		zero(t.Plaintext)
		*t = kmsapi.EncryptRequest{}
	case *kmsapi.DecryptRequest:
		*t = kmsapi.DecryptRequest{}
	case *kmsapi.GenerateDataKeyRequest:
		*t = kmsapi.GenerateDataKeyRequest{}
	}
}

type fastDec struct {
	b []byte
	i int
}

func (d *fastDec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether the next byte is c (and
// consumes it).
func (d *fastDec) next(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// rawString reads a string of printable ASCII without escapes and returns
// its contents (a sub-slice of the body).
func (d *fastDec) rawString() ([]byte, bool) {
	if !d.next('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			return s, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
		d.i++
	}
	return nil, false
}

func (d *fastDec) str(dst *string) bool {
	s, ok := d.rawString()
	if ok {
		*dst = string(s)
	}
	return ok
}

// bytes reads a base64 string as encoding/json does ([]byte fields:
// base64.StdEncoding, the empty string gives an empty non-nil slice).
func (d *fastDec) bytes(dst *[]byte) bool {
	s, ok := d.rawString()
	if !ok {
		return false
	}
	for _, c := range s {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		zero(b)
		return false
	}
	*dst = b[:n]
	return true
}

// int reads a JSON integer without fraction or exponent, at most 18 digits.
func (d *fastDec) int(dst *int) bool {
	d.ws()
	neg := d.i < len(d.b) && d.b[d.i] == '-'
	if neg {
		d.i++
	}
	start := d.i
	n := 0
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		n = n*10 + int(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || digits > 18 || (digits > 1 && d.b[start] == '0') {
		return false
	}
	if d.i < len(d.b) {
		if c := d.b[d.i]; c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	if neg {
		n = -n
	}
	*dst = n
	return true
}

// strMap reads an object of strings into a new map (encoding/json makes
// the map for {} too; a repeated key keeps the last value).
func (d *fastDec) strMap(dst *map[string]string) bool {
	if !d.next('{') {
		return false
	}
	m := make(map[string]string)
	*dst = m
	if d.next('}') {
		return true
	}
	for {
		k, ok := d.rawString()
		if !ok || !d.next(':') {
			return false
		}
		v, ok := d.rawString()
		if !ok {
			return false
		}
		m[string(k)] = string(v)
		if d.next(',') {
			continue
		}
		return d.next('}')
	}
}

// object reads the top-level object into v, field by field.
func (d *fastDec) object(v any) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	var seen uint
	for {
		k, ok := d.rawString()
		if !ok || !d.next(':') {
			return false
		}
		f, ok := d.field(v, k)
		if !ok || seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		if d.next(',') {
			continue
		}
		return d.next('}')
	}
}

// field decodes the value of field name of v and returns the field's index.
func (d *fastDec) field(v any, name []byte) (uint, bool) {
	switch t := v.(type) {
	case *kmsapi.EncryptRequest:
		switch string(name) {
		case "key_id":
			return 0, d.str(&t.KeyID)
		case "plaintext":
			return 1, d.bytes(&t.Plaintext)
		case "encryption_context":
			return 2, d.strMap(&t.EncryptionContext)
		}
	case *kmsapi.DecryptRequest:
		switch string(name) {
		case "ciphertext_blob":
			return 0, d.bytes(&t.CiphertextBlob)
		case "encryption_context":
			return 1, d.strMap(&t.EncryptionContext)
		case "key_id":
			return 2, d.str(&t.KeyID)
		}
	case *kmsapi.GenerateDataKeyRequest:
		switch string(name) {
		case "key_id":
			return 0, d.str(&t.KeyID)
		case "key_spec":
			var s string
			ok := d.str(&s)
			t.KeySpec = kmsapi.KeySpec(s)
			return 1, ok
		case "number_of_bytes":
			return 2, d.int(&t.NumberOfBytes)
		case "encryption_context":
			return 3, d.strMap(&t.EncryptionContext)
		}
	}
	return 0, false
}
