package p11_test

import (
	"bytes"
	"crypto/cipher"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
)

// fuzzKey is the fixed AES-256 key of FuzzDecrypt and FuzzDecryptParts; the
// seed corpora in testdata/fuzz hold blobs sealed under it.
var fuzzKey = []byte("kmsgo FuzzDecrypt fixed test key")

// fuzzBackend opens a token with fuzzKey imported as "fuzz".
func fuzzBackend(f *testing.F) (*p11.Backend, cipher.AEAD) {
	b := open(f, softhsmtest.New(f))
	if err := b.ImportKey(bg, "fuzz", fuzzKey); err != nil {
		f.Fatal(err)
	}
	return b, localGCM(f, fuzzKey)
}

// checkDecrypt is the differential oracle: whatever parts and AAD it gets,
// the HSM's answer must equal crypto/cipher's under the same key (parts of
// a size other than hsm.Sealed.Check allows are refused without asking
// crypto/cipher, which would panic on a wrong IV size), and every failure
// must be exactly hsm.ErrDecrypt with no data.
func checkDecrypt(t *testing.T, b *p11.Backend, aead cipher.AEAD, s hsm.Sealed, aad []byte) {
	iv, ct := bytes.Clone(s.IV), bytes.Clone(s.Ciphertext)
	got, err := b.Decrypt(bg, "fuzz", s, aad)
	if !bytes.Equal(s.IV, iv) || !bytes.Equal(s.Ciphertext, ct) {
		t.Fatal("Decrypt modified its input")
	}
	var want []byte
	werr := s.Check()
	if werr == nil {
		want, werr = aead.Open(nil, s.IV, s.Ciphertext, aad)
	}
	if werr != nil {
		if err != hsm.ErrDecrypt || got != nil { //nolint:errorlint
			t.Fatalf("crypto/cipher rejects the parts (%v) but Decrypt = %x, %v", werr, got, err)
		}
		return
	}
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("crypto/cipher opens the parts to %x but Decrypt = %x, %v", want, got, err)
	}
}

// FuzzDecrypt is a differential fuzzer over blobs in the stored framing
// (format byte || IV || ciphertext || tag, as in testdata/fuzz/FuzzDecrypt):
// the blob is split where the framing puts the IV and the parts go to
// Decrypt. The format byte is not part of the Decrypt API, so a blob with
// another format byte but valid parts opens, as crypto/cipher says.
func FuzzDecrypt(f *testing.F) {
	b, aead := fuzzBackend(f)
	iv := bytes.Repeat([]byte{0x11}, hsm.IVSize)
	for _, seed := range []struct{ pt, aad string }{{"", ""}, {"data key 0123456789abcdef0123456", "cmk=1"}} {
		blob := hsm.Sealed{IV: iv, Ciphertext: aead.Seal(nil, iv, []byte(seed.pt), []byte(seed.aad))}.Encode()
		f.Add(blob, []byte(seed.aad))
	}
	f.Fuzz(func(t *testing.T, blob, aad []byte) {
		var s hsm.Sealed
		if len(blob) > 0 {
			s.IV = blob[1:min(len(blob), hsm.SealedHeader)]
			s.Ciphertext = blob[min(len(blob), hsm.SealedHeader):]
		}
		checkDecrypt(t, b, aead, s, aad)
	})
}

// FuzzDecryptParts is the same differential fuzzer over free-standing
// parts, so IVs and ciphertexts of any size reach Decrypt (seeds in
// testdata/fuzz/FuzzDecryptParts).
func FuzzDecryptParts(f *testing.F) {
	b, aead := fuzzBackend(f)
	iv := bytes.Repeat([]byte{0x11}, hsm.IVSize)
	ct := aead.Seal(nil, iv, []byte("data key 0123456789abcdef0123456"), []byte("cmk=1"))
	f.Add(iv, ct, []byte("cmk=1"))
	f.Add(iv[:hsm.IVSize-1], ct, []byte("cmk=1"))
	f.Add(append(bytes.Clone(iv), 0x11), ct, []byte("cmk=1"))
	f.Add(iv, ct[:hsm.TagSize-1], []byte("cmk=1"))
	f.Add([]byte(nil), []byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, iv, ct, aad []byte) {
		checkDecrypt(t, b, aead, hsm.Sealed{IV: iv, Ciphertext: ct}, aad)
	})
}
