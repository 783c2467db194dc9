package p11_test

import (
	"bytes"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
)

// fuzzKey is the fixed AES-256 key of FuzzDecrypt; the seed corpus in
// testdata/fuzz/FuzzDecrypt holds blobs sealed under it.
var fuzzKey = []byte("kmsgo FuzzDecrypt fixed test key")

// FuzzDecrypt is a differential fuzzer: whatever blob and AAD it gets, the
// HSM's answer must equal crypto/cipher's under the same imported key, and
// every failure must be exactly hsm.ErrDecrypt with no data.
func FuzzDecrypt(f *testing.F) {
	b := open(f, softhsmtest.New(f))
	if err := b.ImportKey(bg, "fuzz", fuzzKey); err != nil {
		f.Fatal(err)
	}
	aead := localGCM(f, fuzzKey)
	iv := bytes.Repeat([]byte{0x11}, hsm.IVSize)
	for _, seed := range []struct{ pt, aad string }{{"", ""}, {"data key 0123456789abcdef0123456", "cmk=1"}} {
		blob := hsm.Sealed{IV: iv, Ciphertext: aead.Seal(nil, iv, []byte(seed.pt), []byte(seed.aad))}.Encode()
		f.Add(blob, []byte(seed.aad))
	}
	f.Fuzz(func(t *testing.T, blob, aad []byte) {
		got, err := b.Decrypt(bg, "fuzz", blob, aad)
		var want []byte
		sb, werr := hsm.ParseSealed(blob)
		if werr == nil {
			want, werr = aead.Open(nil, sb.IV, sb.Ciphertext, aad)
		}
		if werr != nil {
			if err != hsm.ErrDecrypt || got != nil { //nolint:errorlint
				t.Fatalf("crypto/cipher rejects the blob (%v) but Decrypt = %x, %v", werr, got, err)
			}
			return
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("crypto/cipher opens the blob to %x but Decrypt = %x, %v", want, got, err)
		}
	})
}
