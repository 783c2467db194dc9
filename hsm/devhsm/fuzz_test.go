package devhsm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
)

// FuzzOpen feeds arbitrary blobs (as found in a key file or a Decrypt
// request) to open: it never panics, and fails with exactly hsm.ErrDecrypt
// unless the blob is a genuine seal under the key and aad, which a fuzzer
// cannot forge. A blob sealed by the fuzz target itself must open.
func FuzzOpen(f *testing.F) {
	a, err := newAEAD(bytes.Repeat([]byte{0x11}, 32))
	if err != nil {
		f.Fatal(err)
	}
	iv := bytes.Repeat([]byte{0x22}, hsm.IVSize)
	f.Add(seal(a, iv, []byte("seed"), []byte("aad")), []byte("aad"))
	f.Add([]byte{hsm.SealedV1}, []byte(nil))
	f.Add(append([]byte{0x02}, make([]byte, 40)...), []byte("x"))
	f.Fuzz(func(t *testing.T, blob, aad []byte) {
		pt, err := open(a, blob, aad)
		if err == nil {
			// Only possible for a blob really sealed under this key.
			if !bytes.Equal(seal(a, blob[1:hsm.SealedHeader], pt, aad), blob) {
				t.Fatalf("open accepted a blob that is not a seal of its output")
			}
			return
		}
		if err != hsm.ErrDecrypt || pt != nil {
			t.Fatalf("open = %x, %v; want nil, ErrDecrypt itself", pt, err)
		}
		// Round trip of the fuzzed input as plaintext.
		if len(blob) <= MaxPlaintext {
			sealed := seal(a, iv, blob, aad)
			got, err := open(a, sealed, aad)
			if err != nil || !bytes.Equal(got, blob) {
				t.Fatalf("round trip failed: %v", err)
			}
			if _, err := open(a, sealed, append(bytes.Clone(aad), 0)); !errors.Is(err, hsm.ErrDecrypt) {
				t.Fatalf("longer aad accepted")
			}
		}
	})
}

// FuzzOpenParts feeds arbitrary parts (as a Decrypt request hands them
// over, sizes unchecked) to openParts: it never panics (crypto/cipher would
// on a wrong IV size), fails with exactly hsm.ErrDecrypt unless the parts
// are a genuine seal under the key and aad, and parts sealed by the target
// itself open. Seeds are in testdata/fuzz/FuzzOpenParts.
func FuzzOpenParts(f *testing.F) {
	a, err := newAEAD(bytes.Repeat([]byte{0x11}, 32))
	if err != nil {
		f.Fatal(err)
	}
	iv := bytes.Repeat([]byte{0x22}, hsm.IVSize)
	s := sealParts(a, iv, []byte("seed"), []byte("aad"))
	f.Add(s.IV, s.Ciphertext, []byte("aad"))
	f.Add(s.IV[:hsm.IVSize-1], s.Ciphertext, []byte("aad"))
	f.Add(append(bytes.Clone(s.IV), 0), s.Ciphertext, []byte("aad"))
	f.Add(s.IV, s.Ciphertext[:hsm.TagSize-1], []byte("aad"))
	f.Add([]byte(nil), []byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, iv, ct, aad []byte) {
		in := hsm.Sealed{IV: bytes.Clone(iv), Ciphertext: bytes.Clone(ct)}
		pt, err := openParts(a, in, aad)
		if !bytes.Equal(in.IV, iv) || !bytes.Equal(in.Ciphertext, ct) {
			t.Fatal("openParts modified its input")
		}
		if err == nil {
			if len(iv) != hsm.IVSize {
				t.Fatalf("openParts accepted a %d-byte IV", len(iv))
			}
			if again := sealParts(a, iv, pt, aad); !bytes.Equal(again.Ciphertext, ct) {
				t.Fatalf("openParts accepted parts that are not a seal of its output")
			}
			return
		}
		if err != hsm.ErrDecrypt || pt != nil { //nolint:errorlint
			t.Fatalf("openParts = %x, %v; want nil, ErrDecrypt itself", pt, err)
		}
	})
}
