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
