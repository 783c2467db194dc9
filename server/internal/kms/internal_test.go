package kms

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestMaterialCacheLRUZeroes(t *testing.T) {
	c := newMaterialCache(2)
	a, b, d := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	c.put("k", 1, a)
	c.put("k", 2, b)
	hsmA := c.items[materialKey{"k", 1}].Value.(*materialItem).mat
	if _, ok := c.aead("k", 1); !ok { // 1 is now most recent
		t.Fatal("miss")
	}
	hsmB := c.items[materialKey{"k", 2}].Value.(*materialItem).mat
	c.put("k", 3, d) // evicts 2
	if _, ok := c.aead("k", 2); ok || c.len() != 2 {
		t.Fatal("LRU did not evict the least recently used entry")
	}
	if !bytes.Equal(hsmB, make([]byte, 32)) {
		t.Fatal("evicted material not zeroed")
	}
	a1, ok := c.aead("k", 1)
	if !ok {
		t.Fatal("miss")
	}
	// The cached AES-GCM is the one of material a: what it seals, a GCM
	// built from a opens, and one built from d does not.
	nonce := make([]byte, 12)
	sealed := a1.Seal(nil, nonce, []byte("pt"), []byte("aad"))
	for _, m := range []struct {
		mat  []byte
		open bool
	}{{a, true}, {d, false}} {
		g, err := newGCM(m.mat)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Open(nil, nonce, sealed, []byte("aad")); (err == nil) != m.open {
			t.Fatalf("material %d: open = %v", m.mat[0], err)
		}
	}
	c.drop("k", 1)
	if !bytes.Equal(hsmA, make([]byte, 32)) {
		t.Fatal("dropped material not zeroed")
	}
	// A GCM handed out before the drop still works for its holder.
	if _, err := a1.Open(nil, nonce, sealed, []byte("aad")); err != nil {
		t.Fatal("a request's GCM broken by the drop")
	}
	c.put("x", 1, a)
	c.put("bad", 1, []byte("not an AES key"))
	if _, ok := c.aead("bad", 1); ok {
		t.Fatal("cached non-AES material")
	}
	c.purge("k")
	if c.len() != 1 {
		t.Fatalf("purge left %d", c.len())
	}
	c.purge("")
	if c.len() != 0 {
		t.Fatal("purge all")
	}
	off := newMaterialCache(-1)
	off.put("k", 1, a)
	if _, ok := off.aead("k", 1); ok {
		t.Fatal("disabled cache stored material")
	}
}

func TestHSMObjectID(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	const dep = "0123456789abcdef"
	id, err := hsmObjectID("0f8e2c1a-1111-4222-8333-444455556666", 12, now, dep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, HSMObjectPrefix+"0f8e2c1a-1111-4222-8333-444455556666-v12-t") || !ownObject(id, dep) {
		t.Fatalf("%s: not an object of deployment %s", id, dep)
	}
	for _, c := range []struct{ id, dep string }{
		{id, "fedcba9876543210"},
		{id, ""},
		{"kmsgo-root", dep},
		{"other-" + id, dep},
		{id + "x", dep},
	} {
		if ownObject(c.id, c.dep) {
			t.Errorf("ownObject(%q, %q) = true", c.id, c.dep)
		}
	}
}

func TestKeyIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id, err := newKeyID()
		if err != nil || !ValidKeyID(id) || seen[id] || id[14] != '4' {
			t.Fatalf("bad id %q %v", id, err)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "0F8E2C1A-1111-4222-8333-444455556666", "0f8e2c1a_1111-4222-8333-444455556666", "0f8e2c1a-1111-4222-8333-44445555666"} {
		if ValidKeyID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAllowedRejectsUnknown(t *testing.T) {
	if Allowed("Nope", KeyStateEnabled) || Allowed(OpEncrypt, "Gone") {
		t.Fatal("unknown op or state allowed")
	}
}

func TestZeroRSA(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	parts := append([]*big.Int{k.D, k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv}, k.Primes...)
	words := make([][]big.Word, len(parts))
	for i, p := range parts {
		words[i] = p.Bits()
	}
	zeroRSA(k)
	for i, p := range parts {
		if p.Sign() != 0 {
			t.Errorf("private part %d not zeroed", i)
		}
		for _, w := range words[i] {
			if w != 0 {
				t.Fatalf("private part %d: backing array still holds key bits", i)
			}
		}
	}
	zeroRSA(nil) // no panic
}
