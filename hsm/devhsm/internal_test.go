package devhsm

import (
	"bytes"
	"context"
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
