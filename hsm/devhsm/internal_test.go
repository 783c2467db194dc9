package devhsm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
)

func allZero(b []byte) bool { return len(b) > 0 && bytes.Count(b, []byte{0}) == len(b) }

// TestKeysZeroed checks that DestroyKey and Close wipe the raw key buffers.
func TestKeysZeroed(t *testing.T) {
	ctx := context.Background()
	b, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := b.ImportKey(ctx, id, bytes.Repeat([]byte{0x42}, 32)); err != nil {
			t.Fatal(err)
		}
	}
	a, bk, root := b.keys["a"], b.keys["b"], b.root
	if allZero(a.raw) || allZero(bk.raw) || allZero(root.raw) {
		t.Fatal("keys zero before DestroyKey/Close")
	}
	if err := b.DestroyKey(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if !allZero(a.raw) || a.aead != nil {
		t.Errorf("DestroyKey left key material: %x", a.raw)
	}
	if allZero(bk.raw) {
		t.Errorf("DestroyKey wiped another key")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !allZero(bk.raw) || !allZero(root.raw) || len(b.keys) != 0 {
		t.Errorf("Close left key material: key %x, root %x, %d keys", bk.raw, root.raw, len(b.keys))
	}
}

// TestSealLayout checks the blob layout seal produces and that open rejects
// a blob whose IV was moved into the ciphertext.
func TestSealLayout(t *testing.T) {
	a, err := newAEAD(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	iv := bytes.Repeat([]byte{9}, hsm.IVSize)
	blob := seal(a, iv, []byte("abc"), nil)
	if blob[0] != hsm.SealedV1 || !bytes.Equal(blob[1:hsm.SealedHeader], iv) || len(blob) != 3+hsm.SealedOverhead {
		t.Fatalf("layout: %x", blob)
	}
	if pt, err := open(a, blob, nil); err != nil || string(pt) != "abc" {
		t.Fatalf("open = %q, %v", pt, err)
	}
	empty, err := open(a, seal(a, iv, nil, nil), nil)
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("empty plaintext opens to %#v, %v; want non-nil empty", empty, err)
	}
	for _, size := range []int{0, 8, 24, 48} {
		if _, err := newAEAD(make([]byte, size)); err == nil {
			t.Errorf("newAEAD accepted a %d-byte key", size)
		}
	}
}

// TestSealParts checks that the raw parts Encrypt returns are exactly the
// framed blob without its format byte (so stored blobs and kmsgo ciphertexts
// made before the API returned parts stay valid), that the parts do not
// overlap, and that openParts refuses wrong sizes with hsm.ErrDecrypt
// instead of letting crypto/cipher panic on a bad nonce length.
func TestSealParts(t *testing.T) {
	a, err := newAEAD(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	iv := bytes.Repeat([]byte{9}, hsm.IVSize)
	s := sealParts(a, iv, []byte("abc"), []byte("aad"))
	framed := seal(a, iv, []byte("abc"), []byte("aad"))
	if !bytes.Equal(s.Encode(), framed) {
		t.Fatalf("parts %x || %x are not the framed blob %x", s.IV, s.Ciphertext, framed)
	}
	if cap(s.IV) != hsm.IVSize {
		t.Errorf("cap(IV) = %d: appending to the IV would overwrite the ciphertext", cap(s.IV))
	}
	if pt, err := openParts(a, s, []byte("aad")); err != nil || string(pt) != "abc" {
		t.Fatalf("openParts = %q, %v", pt, err)
	}
	if pt, err := openParts(a, sealParts(a, iv, nil, nil), nil); err != nil || pt == nil || len(pt) != 0 {
		t.Fatalf("empty plaintext opens to %#v, %v; want non-nil empty", pt, err)
	}
	for _, n := range []int{0, 1, 8, 11, 13, 16, 64} {
		bad := make([]byte, n)
		copy(bad, s.IV)
		pt, err := openParts(a, hsm.Sealed{IV: bad, Ciphertext: s.Ciphertext}, []byte("aad"))
		if err != hsm.ErrDecrypt || pt != nil { //nolint:errorlint
			t.Errorf("%d-byte IV: openParts = %x, %v; want ErrDecrypt itself", n, pt, err)
		}
	}
	for _, n := range []int{0, 1, hsm.TagSize - 1} {
		if pt, err := openParts(a, hsm.Sealed{IV: s.IV, Ciphertext: s.Ciphertext[:n]}, []byte("aad")); err != hsm.ErrDecrypt || pt != nil { //nolint:errorlint
			t.Errorf("%d-byte ciphertext: openParts = %x, %v; want ErrDecrypt itself", n, pt, err)
		}
	}
}

// Golden data written by devhsm before Encrypt returned raw parts (commit
// 3a7e324): a root key of 32 bytes 0x5a, a key file for "golden/v1" holding
// goldenMaterial, a wrapped blob and a framed Encrypt output. They must keep
// opening: the on-disk formats did not change.
const (
	goldenKeyFile   = "01ab38262a55b2a2923edb8cc4c97c282040c741cadb0e4be9af7c21d029d4f25038ec85529cb49b174a2798bf7110fdb106a6dabf55a45368ac341a3a"
	goldenWrapped   = "01f626013d2ac636e23d9bee228e27bbd154ffffcb9f85be5fd7d2193b406d08c9b8713b44be9812fb7bf45473"
	goldenEncrypted = "01ad2ac8777d25589aed477077acd7987b5e00ac61f17ac02ae52ebc8f5746d78c186f936969170b6eee9eed55"
	goldenMaterial  = "golden key material, 32 bytes!!!"
)

func TestGoldenStoredFormats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	unhexT := func(s string) []byte { return unhex(t, s) }
	if err := os.WriteFile(filepath.Join(dir, rootKeyFile), bytes.Repeat([]byte{0x5a}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, keysDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, keysDir, fileName("golden/v1")), unhexT(goldenKeyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatalf("Open with a golden key file: %v", err)
	}
	defer b.Close()
	if got := string(b.keys["golden/v1"].raw); got != goldenMaterial {
		t.Fatalf("golden key file holds %q", got)
	}
	m, err := b.UnwrapKey(ctx, unhexT(goldenWrapped), []byte("cmk=golden/v=1"))
	if err != nil || string(m) != "wrapped material" {
		t.Fatalf("UnwrapKey(golden) = %q, %v", m, err)
	}
	parts, err := hsm.ParseSealed(unhexT(goldenEncrypted))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := b.Decrypt(ctx, "golden/v1", parts, []byte("aad"))
	if err != nil || string(pt) != "golden plaintext" {
		t.Fatalf("Decrypt(parts of golden Encrypt output) = %q, %v", pt, err)
	}
	// And today's output has the same shape: the framed form of the parts
	// round-trips through the old layout.
	s, err := b.Encrypt(ctx, "golden/v1", []byte("golden plaintext"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if enc := s.Encode(); len(enc) != len(unhexT(goldenEncrypted)) || enc[0] != hsm.SealedV1 {
		t.Fatalf("framed parts %x do not have the golden layout", enc)
	}
}
