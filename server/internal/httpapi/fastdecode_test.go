package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// stdDecode is decodeStrict without the fast path: the reference.
func stdDecode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if !jsonSpace(body[dec.InputOffset():]) {
		return errTrailing
	}
	return nil
}

var errTrailing = &json.SyntaxError{}

// checkFastDecode: whenever fastDecode accepts body into a fresh value of
// each request type, encoding/json accepts it too and decodes exactly the
// same value; when it refuses, it leaves the value zero.
func checkFastDecode(t *testing.T, body []byte) (accepted int) {
	t.Helper()
	for _, mk := range []func() any{
		func() any { return new(kmsapi.EncryptRequest) },
		func() any { return new(kmsapi.DecryptRequest) },
		func() any { return new(kmsapi.GenerateDataKeyRequest) },
	} {
		fast, ref := mk(), mk()
		if !fastDecode(body, fast) {
			if !reflect.DeepEqual(fast, mk()) {
				t.Fatalf("%q: refused but left %+v", body, fast)
			}
			continue
		}
		accepted++
		if err := stdDecode(body, ref); err != nil {
			t.Fatalf("%q: fast path accepted %T, encoding/json refused: %v", body, fast, err)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%q: fast path %#v, encoding/json %#v", body, fast, ref)
		}
	}
	return accepted
}

var fastDecodeSeeds = []string{
	`{"key_id":"alias/a","plaintext":"aGVsbG8=","encryption_context":{"a":"b"}}`,
	` { "key_id" : "k" , "plaintext" : "" , "encryption_context" : { } } `,
	`{"ciphertext_blob":"AAEC","encryption_context":{"x":"1","x":"2"},"key_id":"k"}`,
	`{"key_id":"k","key_spec":"AES_256","number_of_bytes":32,"encryption_context":{"app":"bench"}}`,
	`{"number_of_bytes":-0}`, `{"number_of_bytes":012}`, `{"number_of_bytes":1e3}`, `{"number_of_bytes":1.5}`,
	`{"number_of_bytes":9999999999999999999999}`, `{"number_of_bytes":-}`,
	`{"KEY_ID":"k"}`, `{"key_id":"k","key_id":"j"}`, `{"key_id":"\u0041"}`, `{"key_id":null}`,
	`{"plaintext":"eA"}`, `{"plaintext":"e A=="}`, `{"plaintext":"eA==="}`, `{"plaintext":"eB=="}`,
	`{"key_id":"k",}`, `{"key_id":"k"} {}`, `{"key_id":"k"}x`, `{}`, `[]`, `{"x":1}`,
	"{\"key_id\":\"\xff\"}", `{"encryption_context":{"a":1}}`, `{"encryption_context":null}`,
}

func TestFastDecodeAgreesWithEncodingJSON(t *testing.T) {
	accepted := 0
	for _, s := range fastDecodeSeeds {
		accepted += checkFastDecode(t, []byte(s))
	}
	if accepted < 8 {
		t.Fatalf("fast path accepted only %d (type, body) pairs of the seeds: it is not used", accepted)
	}
}

// TestFastDecodeUsed: the bodies kmsload and the SDKs send take the fast path.
func TestFastDecodeUsed(t *testing.T) {
	cases := []struct {
		body string
		v    any
	}{
		{`{"key_id":"0123","plaintext":"AAAA","encryption_context":{"app":"bench"}}`, new(kmsapi.EncryptRequest)},
		{`{"ciphertext_blob":"AAAA","encryption_context":{"app":"bench"}}`, new(kmsapi.DecryptRequest)},
		{`{"key_id":"alias/x","number_of_bytes":32}`, new(kmsapi.GenerateDataKeyRequest)},
	}
	for _, c := range cases {
		if !fastDecode([]byte(c.body), c.v) {
			t.Errorf("%s: not decoded by the fast path", c.body)
		}
	}
}

// FuzzFastDecode: the fast path never accepts what encoding/json refuses
// and never decodes differently.
func FuzzFastDecode(f *testing.F) {
	for _, s := range fastDecodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastDecode(t, body) })
}
