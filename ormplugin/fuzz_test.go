package ormplugin

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseValue checks that the stored value parser never panics, accepts
// only canonical encodings (parse then encode gives the input back) and
// reports every malformed value as ErrDecrypt or ErrNotCiphertext.
func FuzzParseValue(f *testing.F) {
	k := &dek{id: 42}
	var err error
	if k.aead, err = newAEAD(bytes.Repeat([]byte{7}, 32)); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "hello", "a@example.com"} {
		ct, err := sealWith(k, colKey{"users", "email"}, []byte(s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(ct))
		var n nonceSource
		f.Add([]byte(sealBound(k, colKey{"users", "email"}, &bindCtx{column: "id", value: []byte("7")}, []byte(s), n.next())))
	}
	f.Add([]byte("kms2:"))
	f.Add([]byte("kms1:hello world"))
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := parseValue(in)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrNotCiphertext) {
				t.Fatalf("unexpected error %v", err)
			}
			if errors.Is(err, ErrNotCiphertext) != !hasPrefix(in) {
				t.Fatalf("ErrNotCiphertext for a prefixed value: %q", in)
			}
			return
		}
		if v.dkID <= 0 || len(v.nonce) != nonceLen || len(v.sealed) < tagLen {
			t.Fatalf("accepted malformed value %q: %+v", in, v)
		}
		if out := encodeValue(v); out != string(in) {
			t.Fatalf("not canonical: %q -> %q", in, out)
		}
		// Opening under the wrong column, or a bound value under another row, never succeeds.
		if _, err := k.aead.Open(nil, v.nonce, v.sealed, valueAAD("users", "phone", v.dkID)); err == nil {
			t.Fatalf("opened under another column: %q", in)
		}
		if v.bound {
			if _, err := k.aead.Open(nil, v.nonce, v.sealed, boundAAD("users", "email", v.dkID, "id", []byte("8"))); err == nil {
				t.Fatalf("bound value opened under another row: %q", in)
			}
		}
	})
}
