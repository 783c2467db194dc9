package httpapi

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// FuzzDecodeStrict checks that the strict body decoder never panics, that
// every failure is ErrValidation, and that what it accepts survives a
// round trip unchanged.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"key_id":"alias/a","plaintext":"aGVsbG8=","encryption_context":{"a":"b"}}`,
		`{"key_id":1}`, `{"plaintext":"!!"}`, `{} {}`, `[]`, `null`, ``, `{"x":1}`,
		`{"key_id":"k","key_id":"j"}`, "{\"key_id\":\"\\ud800\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in kmsapi.EncryptRequest
		err := decodeStrict(body, &in)
		if err != nil {
			if !errors.Is(err, ErrValidation) {
				t.Fatalf("error %v is not ErrValidation", err)
			}
			return
		}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var again kmsapi.EncryptRequest
		if err := decodeStrict(b, &again); err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
		if len(in.Plaintext) == 0 {
			in.Plaintext, again.Plaintext = nil, nil
		}
		if len(in.EncryptionContext) == 0 {
			in.EncryptionContext, again.EncryptionContext = nil, nil
		}
		if !reflect.DeepEqual(in, again) {
			t.Fatalf("round trip changed %+v to %+v", in, again)
		}
	})
}

func TestDecodeStrict(t *testing.T) {
	cases := []struct {
		body string
		ok   bool
	}{
		{``, true}, {`  `, true}, {`{}`, true},
		{`{"key_id":"a","plaintext":"eA=="}`, true},
		{`{"key_id":"a"}{}`, false},
		{`{"key_id":"a"} x`, false},
		{`{"keyid":"a"}`, false},
		{`{"key_id":["a"]}`, false},
		{`{"plaintext":"eA"}`, false}, // missing padding
		{`{"plaintext":"e A=="}`, false},
		{`{"key_id":"a"`, false},
	}
	for _, tc := range cases {
		var in kmsapi.EncryptRequest
		err := decodeStrict([]byte(tc.body), &in)
		if (err == nil) != tc.ok {
			t.Errorf("decodeStrict(%q) = %v, want ok=%v", tc.body, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrValidation) {
			t.Errorf("decodeStrict(%q): %v is not ErrValidation", tc.body, err)
		}
	}
}
