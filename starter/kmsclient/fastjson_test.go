package kmsclient

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// fastDecodeSeeds are bodies in and just outside the fast path's subset.
var fastDecodeSeeds = []string{
	`{"key_id":"k","key_version":1,"ciphertext_blob":"AQID"}`,
	`{"key_id":"0f1e2d3c-aaaa","key_version":12,"plaintext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}`,
	`{"key_id":"k","key_version":3,"plaintext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","ciphertext_blob":"AQID"}`,
	" {\n\t\"ciphertext_blob\" : \"\" , \"key_version\":-0,\"key_id\":\"\u00e4\u4e2d\"}\r\n",
	`{}`,
	`{"key_id":"k","key_id":"j"}`,
	`{"KEY_ID":"k"}`,
	`{"key_id":"a\"b"}`,
	`{"key_id":"a\u00e4"}`,
	`{"key_id":null,"plaintext":null}`,
	`{"key_version":1.0}`,
	`{"key_version":1e2}`,
	`{"key_version":01}`,
	`{"key_version":99999999999999999999}`,
	`{"key_version":"1"}`,
	`{"plaintext":"AQ"}`,
	`{"plaintext":"A\/=="}`,
	`{"plaintext":"!!!!"}`,
	`{"unknown":1,"key_id":"k"}`,
	`{"key_id":"k"}x`,
	`{"key_id":"k",}`,
	`[]`,
	``,
	"{\"key_id\":\"\xff\"}",
	`{"key_id":"k"} {}`,
}

// checkFastDecode decodes body as each hot answer with decodeResponse and
// with json.Unmarshal and fails unless both give the same value and the
// same error; when the fast path alone accepts body, json.Unmarshal must
// accept it with the same value.
func checkFastDecode(t *testing.T, body []byte) {
	t.Helper()
	targets := []struct {
		allowed int
		new     func() any
	}{
		{fieldKeyID | fieldKeyVersion | fieldBlob, func() any { return new(kmsapi.EncryptResponse) }},
		{fieldKeyID | fieldKeyVersion | fieldPlaintext, func() any { return new(kmsapi.DecryptResponse) }},
		{fieldKeyID | fieldKeyVersion | fieldPlaintext | fieldBlob, func() any { return new(kmsapi.GenerateDataKeyResponse) }},
	}
	for _, tg := range targets {
		got, want := tg.new(), tg.new()
		gerr := decodeResponse(body, got)
		werr := json.Unmarshal(body, want)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("%T %q: error %v, encoding/json %v", got, body, gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%T %q: got %+v, encoding/json %+v", got, body, got, want)
		}
		f, ok := fastDecodeCrypto(body, tg.allowed)
		if !ok {
			if !reflect.DeepEqual(f, cryptoFields{}) {
				t.Fatalf("%q: a rejected body left fields %+v", body, f)
			}
			continue
		}
		if werr != nil {
			t.Fatalf("%T %q: fast path accepted what encoding/json rejects: %v", got, body, werr)
		}
	}
}

// FuzzFastDecode: the reflection-free decoder of the hot answers agrees
// with encoding/json on every input.
func FuzzFastDecode(f *testing.F) {
	for _, s := range fastDecodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastDecode(t, body) })
}

// TestFastDecodeTakesFastPath: kmsd's own shapes are decoded by the fast
// path (not by the fallback), and the odd shapes are not.
func TestFastDecodeTakesFastPath(t *testing.T) {
	all := fieldKeyID | fieldKeyVersion | fieldPlaintext | fieldBlob
	for _, s := range fastDecodeSeeds[:5] {
		if _, ok := fastDecodeCrypto([]byte(s), all); !ok {
			t.Errorf("fast path refused %q", s)
		}
	}
	for _, s := range fastDecodeSeeds[5:] {
		if _, ok := fastDecodeCrypto([]byte(s), all); ok {
			t.Errorf("fast path accepted %q", s)
		}
	}
	// Fields outside the answer's type go to encoding/json.
	if _, ok := fastDecodeCrypto([]byte(`{"plaintext":"AQID"}`), fieldKeyID|fieldKeyVersion|fieldBlob); ok {
		t.Error("Encrypt's fast path accepted plaintext")
	}
	f, ok := fastDecodeCrypto([]byte(`{"key_id":"k","key_version":7,"plaintext":"AQID","ciphertext_blob":"BAU="}`), all)
	if !ok || f.keyID != "k" || f.keyVersion != 7 || string(f.plaintext) != "\x01\x02\x03" || string(f.blob) != "\x04\x05" {
		t.Fatalf("decoded %+v ok=%t", f, ok)
	}
	for _, s := range fastDecodeSeeds {
		checkFastDecode(t, []byte(s))
	}
}

func BenchmarkDecodeEncryptResponse(b *testing.B) {
	body := []byte(`{"key_id":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0","key_version":3,"ciphertext_blob":"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="}`)
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out kmsapi.EncryptResponse
			if err := json.Unmarshal(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out kmsapi.EncryptResponse
			if err := decodeResponse(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
