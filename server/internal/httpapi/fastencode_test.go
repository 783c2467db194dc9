package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// stdEncode is writeJSON's encoding/json path: the reference.
func stdEncode(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// checkFastEncode: when fastEncode encodes v, it writes exactly what
// encoding/json writes.
func checkFastEncode(t *testing.T, v any) bool {
	t.Helper()
	got, ok := fastEncode(nil, v)
	if !ok {
		return false
	}
	if want := stdEncode(t, v); !bytes.Equal(got, want) {
		t.Fatalf("%#v: fast %s, encoding/json %s", v, got, want)
	}
	return true
}

func TestFastEncodeAgreesWithEncodingJSON(t *testing.T) {
	cases := []struct {
		v    any
		fast bool
	}{
		{&kmsapi.EncryptResponse{KeyID: "0195f3a0-7c1e-7b3a-9d2f-000000000001", KeyVersion: 3, CiphertextBlob: []byte{1, 2, 3, 4, 5}}, true},
		{&kmsapi.EncryptResponse{KeyID: "k<&>", KeyVersion: -1, CiphertextBlob: []byte{}}, true},
		{&kmsapi.EncryptResponse{KeyID: "k", CiphertextBlob: nil}, false},
		{&kmsapi.EncryptResponse{KeyID: "k\"", CiphertextBlob: []byte{1}}, false},
		{&kmsapi.EncryptResponse{KeyID: "ké", CiphertextBlob: []byte{1}}, false},
		{&kmsapi.DecryptResponse{KeyID: "k", KeyVersion: 1, Plaintext: make([]byte, 32)}, true},
		{&kmsapi.DecryptResponse{KeyID: "k", KeyVersion: 1, Plaintext: []byte{}}, true},
		{&kmsapi.DecryptResponse{KeyID: "k", Plaintext: nil}, false},
		{&kmsapi.GenerateDataKeyResponse{KeyID: "k", KeyVersion: 7, Plaintext: []byte{9, 9}, CiphertextBlob: []byte{1}}, true},
		{&kmsapi.GenerateDataKeyResponse{KeyID: "k", KeyVersion: 7, Plaintext: nil, CiphertextBlob: []byte{1}}, true},
		{&kmsapi.GenerateDataKeyResponse{KeyID: "k", KeyVersion: 7, Plaintext: []byte{}, CiphertextBlob: []byte{1}}, true},
		{&kmsapi.GenerateDataKeyResponse{KeyID: "k\\", CiphertextBlob: []byte{1}}, false},
		{&kmsapi.RandomResponse{Plaintext: []byte{1}}, false},
	}
	for _, c := range cases {
		if got := checkFastEncode(t, c.v); got != c.fast {
			t.Errorf("%#v: fast path used %v, want %v", c.v, got, c.fast)
		}
	}
}

// FuzzFastEncode: for any key id, version and bytes, the fast path writes
// what encoding/json writes, or refuses.
func FuzzFastEncode(f *testing.F) {
	f.Add("0195f3a0-7c1e", 1, []byte{1, 2, 3}, []byte{4})
	f.Add("k\"\\\x00é", -5, []byte{}, []byte(nil))
	f.Fuzz(func(t *testing.T, keyID string, version int, a, b []byte) {
		checkFastEncode(t, &kmsapi.EncryptResponse{KeyID: keyID, KeyVersion: version, CiphertextBlob: a})
		checkFastEncode(t, &kmsapi.DecryptResponse{KeyID: keyID, KeyVersion: version, Plaintext: a})
		checkFastEncode(t, &kmsapi.GenerateDataKeyResponse{KeyID: keyID, KeyVersion: version, Plaintext: a, CiphertextBlob: b})
	})
}
