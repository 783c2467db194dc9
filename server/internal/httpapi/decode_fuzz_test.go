package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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

// tokenDecode is the former trailing-data check (dec.Token must report
// io.EOF), the reference for decodeStrict's.
func tokenDecode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// TestDecodeStrictTrailing: decodeStrict accepts and refuses exactly what
// the dec.Token check did.
func TestDecodeStrictTrailing(t *testing.T) {
	cases := []struct {
		body string
		ok   bool
	}{
		{`{"key_id":"a"}`, true},
		{"{\"key_id\":\"a\"} \t\r\n", true},
		{"  {\"key_id\":\"a\"}\n\n", true},
		{`{"key_id":"a"} {}`, false},
		{`{"key_id":"a"}}`, false},
		{`{"key_id":"a"},`, false},
		{`{"key_id":"a"}]`, false},
		{`{"key_id":"a"} x`, false},
		{`{"key_id":"a"} "s"`, false},
		{"{\"key_id\":\"a\"}\u00a0", false},
		{"{\"key_id\":\"a\"}\x00", false},
		{`{"key_id":"a"}/`, false},
	}
	for _, c := range cases {
		var a, b kmsapi.EncryptRequest
		err := decodeStrict([]byte(c.body), &a)
		ref := tokenDecode([]byte(c.body), &b)
		if (err == nil) != c.ok || (ref == nil) != c.ok {
			t.Errorf("%q: decodeStrict %v, reference %v, want ok=%v", c.body, err, ref, c.ok)
		}
	}
}

// FuzzDecodeStrictTrailing: decodeStrict agrees with the dec.Token check.
func FuzzDecodeStrictTrailing(f *testing.F) {
	f.Add([]byte(`{"key_id":"a"} `))
	f.Add([]byte(`{"key_id":"a"} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var a, b kmsapi.EncryptRequest
		if err, ref := decodeStrict(body, &a), tokenDecode(body, &b); (err == nil) != (ref == nil) {
			t.Fatalf("%q: decodeStrict %v, reference %v", body, err, ref)
		}
	})
}

// TestSanitizeFastPath: printable ASCII within the limit comes back as is;
// anything else takes the escaping path.
func TestSanitizeFastPath(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/v1/encrypt", "/v1/encrypt"},
		{"key/a,alias/b", "key/a,alias/b"},
		{"a\x00b", "a%00b"},
		{"a\x7fb", "a%7Fb"},
		{"caf\u00e9", "caf\u00e9"},
		{"\xff", "%FF"},
		{"abcdef", "abc"},
	}
	for _, c := range cases {
		n := 256
		if c.in == "abcdef" {
			n = 3
		}
		if got := sanitize(c.in, n); got != c.want {
			t.Errorf("sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
