package dkcache

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock for expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testKey(b byte) DataKey {
	return DataKey{
		KeyID:          "key-1",
		KeyVersion:     3,
		Plaintext:      bytes.Repeat([]byte{b}, 32),
		CiphertextBlob: []byte("blob-" + string(rune('a'+b%26))),
	}
}

// secretOf returns the slice the cache owns for (keyID, encCtx), so tests
// can check that eviction clears it.
func (c *DataKeyCache) secretOf(t *testing.T, keyID string, encCtx map[string]string) []byte {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.l.items[dataKeyKey(keyID, encCtx)]
	if e == nil {
		t.Fatalf("no entry for %q %v", keyID, encCtx)
	}
	return e.secret
}

func (c *DecryptCache) secretOf(t *testing.T, blob []byte, encCtx map[string]string) []byte {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.l.items[decryptKey(blob, encCtx)]
	if e == nil {
		t.Fatalf("no entry for %q", blob)
	}
	return e.secret
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return len(b) > 0
}

func TestNewDataKeyCacheConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     DataKeyConfig
		wantErr bool
	}{
		{"defaults", DataKeyConfig{}, false},
		{"max uses at limit", DataKeyConfig{MaxUses: MaxUsesLimit}, false},
		{"max uses above limit", DataKeyConfig{MaxUses: MaxUsesLimit + 1}, true},
		{"negative age", DataKeyConfig{MaxAge: -1}, true},
		{"negative bytes", DataKeyConfig{MaxBytes: -1}, true},
		{"negative entries", DataKeyConfig{MaxEntries: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewDataKeyCache(tt.cfg)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("err = %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.cfg.MaxUses == 0 && c.maxUses != DefaultMaxUses {
				t.Fatalf("default MaxUses = %d", c.maxUses)
			}
		})
	}
	if _, err := NewDecryptCache(DecryptConfig{TTL: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("decrypt cache negative TTL: %v", err)
	}
}

func TestDataKeyCacheMaxUses(t *testing.T) {
	for _, maxUses := range []uint64{1, 2, 5} {
		t.Run(fmt.Sprint(maxUses), func(t *testing.T) {
			c, err := NewDataKeyCache(DataKeyConfig{MaxUses: maxUses})
			if err != nil {
				t.Fatal(err)
			}
			cached := c.Put("k", nil, testKey(1), 10)
			if cached != (maxUses > 1) {
				t.Fatalf("Put cached = %v with MaxUses %d", cached, maxUses)
			}
			if !cached {
				if c.Len() != 0 {
					t.Fatal("entry cached although the first use exhausted it")
				}
				return
			}
			secret := c.secretOf(t, "k", nil)
			// Put counted one use; maxUses-1 Gets remain.
			for i := uint64(1); i < maxUses; i++ {
				dk, ok := c.Get("k", nil, 10)
				if !ok {
					t.Fatalf("use %d: miss", i+1)
				}
				if !bytes.Equal(dk.Plaintext, bytes.Repeat([]byte{1}, 32)) || dk.KeyVersion != 3 || dk.KeyID != "key-1" {
					t.Fatalf("use %d: got %+v", i+1, dk)
				}
			}
			if _, ok := c.Get("k", nil, 10); ok {
				t.Fatalf("use %d beyond MaxUses %d was allowed", maxUses+1, maxUses)
			}
			if !allZero(secret) {
				t.Fatalf("exhausted key not zeroed: %x", secret)
			}
			if c.Len() != 0 {
				t.Fatalf("Len = %d after exhaustion", c.Len())
			}
		})
	}
}

func TestDataKeyCacheMaxAge(t *testing.T) {
	clk := newFakeClock()
	c, err := NewDataKeyCache(DataKeyConfig{MaxAge: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	c.Put("k", map[string]string{"a": "1"}, testKey(2), 0)
	secret := c.secretOf(t, "k", map[string]string{"a": "1"})

	clk.Advance(59 * time.Second)
	if _, ok := c.Get("k", map[string]string{"a": "1"}, 0); !ok {
		t.Fatal("miss before MaxAge")
	}
	clk.Advance(time.Second)
	if _, ok := c.Get("k", map[string]string{"a": "1"}, 0); ok {
		t.Fatal("hit at MaxAge")
	}
	if !allZero(secret) {
		t.Fatalf("expired key not zeroed: %x", secret)
	}
}

func TestDataKeyCacheExpiryZeroesUntouchedEntries(t *testing.T) {
	// An expired entry is cleared by any later operation, not only by a
	// lookup of that entry.
	clk := newFakeClock()
	c, _ := NewDataKeyCache(DataKeyConfig{MaxAge: time.Minute, Now: clk.Now})
	c.Put("old", nil, testKey(3), 0)
	secret := c.secretOf(t, "old", nil)
	clk.Advance(2 * time.Minute)
	c.Put("new", nil, testKey(4), 0)
	if !allZero(secret) {
		t.Fatal("expired entry not zeroed by an unrelated Put")
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1", c.Len())
	}
}

func TestDataKeyCacheMaxBytes(t *testing.T) {
	tests := []struct {
		name     string
		putN     int64
		gets     []int64
		wantHits []bool
	}{
		{"fits exactly", 40, []int64{30, 30, 1}, []bool{true, true, false}},
		{"one byte over", 40, []int64{30, 31}, []bool{true, false}},
		{"under", 10, []int64{10, 10, 10, 10, 10}, []bool{true, true, true, true, true}},
		{"over on first get", 90, []int64{11}, []bool{false}},
		{"small then too big", 0, []int64{50, 51}, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := NewDataKeyCache(DataKeyConfig{MaxBytes: 100})
			if !c.Put("k", nil, testKey(5), tt.putN) {
				t.Fatal("not cached")
			}
			secret := c.secretOf(t, "k", nil)
			for i, n := range tt.gets {
				_, ok := c.Get("k", nil, n)
				if ok != tt.wantHits[i] {
					t.Fatalf("get %d (%d bytes): hit = %v, want %v", i, n, ok, tt.wantHits[i])
				}
			}
			if !tt.wantHits[len(tt.wantHits)-1] && !allZero(secret) {
				t.Fatal("key over MaxBytes not zeroed")
			}
		})
	}
	c, _ := NewDataKeyCache(DataKeyConfig{MaxBytes: 100})
	if c.Put("k", nil, testKey(6), 100) {
		t.Fatal("Put cached a key whose first use reaches MaxBytes")
	}
	if c.Put("k", nil, testKey(6), -1) {
		t.Fatal("Put accepted a negative size")
	}
}

func TestDataKeyCacheReachingLimitEvictsAfterUse(t *testing.T) {
	c, _ := NewDataKeyCache(DataKeyConfig{MaxBytes: 100})
	c.Put("k", nil, testKey(7), 50)
	secret := c.secretOf(t, "k", nil)
	dk, ok := c.Get("k", nil, 50)
	if !ok {
		t.Fatal("miss")
	}
	if !allZero(secret) {
		t.Fatal("key that reached MaxBytes stays in memory")
	}
	if allZero(dk.Plaintext) {
		t.Fatal("the caller's copy was zeroed too")
	}
}

func TestDataKeyCacheContextMatching(t *testing.T) {
	c, _ := NewDataKeyCache(DataKeyConfig{})
	c.Put("k", map[string]string{"table": "users", "col": "email"}, testKey(8), 0)
	tests := []struct {
		keyID string
		ctx   map[string]string
		hit   bool
	}{
		{"k", map[string]string{"col": "email", "table": "users"}, true},
		{"k", map[string]string{"table": "Users", "col": "email"}, false},
		{"k", map[string]string{"table": "users"}, false},
		{"k", nil, false},
		{"K", map[string]string{"table": "users", "col": "email"}, false},
		{"k", map[string]string{"table": "users", "col": "email", "x": ""}, false},
		// Length prefixes keep shifted boundaries apart.
		{"k", map[string]string{"table": "userscol", "": "email"}, false},
	}
	for i, tt := range tests {
		if _, ok := c.Get(tt.keyID, tt.ctx, 0); ok != tt.hit {
			t.Errorf("%d: Get(%q, %v) hit = %v, want %v", i, tt.keyID, tt.ctx, ok, tt.hit)
		}
	}
	// nil and empty context are the same.
	c.Put("e", nil, testKey(9), 0)
	if _, ok := c.Get("e", map[string]string{}, 0); !ok {
		t.Error("empty context does not match nil context")
	}
}

func TestDataKeyCacheCopies(t *testing.T) {
	c, _ := NewDataKeyCache(DataKeyConfig{})
	dk := testKey(10)
	c.Put("k", nil, dk, 0)
	clear(dk.Plaintext) // the caller's copy is independent
	got, ok := c.Get("k", nil, 0)
	if !ok || !bytes.Equal(got.Plaintext, bytes.Repeat([]byte{10}, 32)) {
		t.Fatalf("cache shares the caller's slice: %x", got.Plaintext)
	}
	clear(got.Plaintext)
	again, _ := c.Get("k", nil, 0)
	if !bytes.Equal(again.Plaintext, bytes.Repeat([]byte{10}, 32)) {
		t.Fatal("Get returned the cache's own slice")
	}
}

func TestDataKeyCacheReplaceAndClearZero(t *testing.T) {
	c, _ := NewDataKeyCache(DataKeyConfig{})
	c.Put("k", nil, testKey(11), 0)
	first := c.secretOf(t, "k", nil)
	c.Put("k", nil, testKey(12), 0)
	if !allZero(first) {
		t.Fatal("replaced key not zeroed")
	}
	got, _ := c.Get("k", nil, 0)
	if got.Plaintext[0] != 12 {
		t.Fatal("replacement not served")
	}
	second := c.secretOf(t, "k", nil)
	c.Clear()
	if !allZero(second) || c.Len() != 0 {
		t.Fatal("Clear did not zero and empty the cache")
	}
}

func TestDataKeyCacheMaxEntries(t *testing.T) {
	c, _ := NewDataKeyCache(DataKeyConfig{MaxEntries: 2})
	c.Put("a", nil, testKey(1), 0)
	a := c.secretOf(t, "a", nil)
	c.Put("b", nil, testKey(2), 0)
	c.Get("a", nil, 0) // a is now most recently used
	c.Put("c", nil, testKey(3), 0)
	if _, ok := c.Get("b", nil, 0); ok {
		t.Fatal("least recently used entry b survived")
	}
	if allZero(a) {
		t.Fatal("recently used entry a was evicted")
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d", c.Len())
	}
}

func TestDecryptCacheLRUBound(t *testing.T) {
	c, _ := NewDecryptCache(DecryptConfig{MaxEntries: 3})
	var secrets [][]byte
	for i := range 3 {
		blob := []byte{byte(i)}
		c.Put(blob, nil, Decrypted{KeyID: "k", KeyVersion: 1, Plaintext: []byte{byte(i + 1), 7}})
		secrets = append(secrets, c.secretOf(t, blob, nil))
	}
	c.Get([]byte{0}, nil) // order now (MRU first): 0, 2, 1
	c.Put([]byte{3}, nil, Decrypted{Plaintext: []byte{4, 7}})
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	if _, ok := c.Get([]byte{1}, nil); ok {
		t.Fatal("LRU entry 1 survived")
	}
	if !allZero(secrets[1]) {
		t.Fatal("evicted plaintext not zeroed")
	}
	for _, i := range []byte{0, 2, 3} {
		d, ok := c.Get([]byte{i}, nil)
		if !ok || d.Plaintext[0] != i+1 {
			t.Fatalf("entry %d: ok=%v %v", i, ok, d.Plaintext)
		}
	}
}

func TestDecryptCacheTTL(t *testing.T) {
	clk := newFakeClock()
	c, _ := NewDecryptCache(DecryptConfig{TTL: time.Minute, Now: clk.Now})
	blob := []byte("ciphertext")
	c.Put(blob, map[string]string{"a": "b"}, Decrypted{KeyID: "k", KeyVersion: 2, Plaintext: []byte("secret")})
	secret := c.secretOf(t, blob, map[string]string{"a": "b"})
	clk.Advance(30 * time.Second)
	d, ok := c.Get(blob, map[string]string{"a": "b"})
	if !ok || string(d.Plaintext) != "secret" || d.KeyID != "k" || d.KeyVersion != 2 {
		t.Fatalf("got %+v %v", d, ok)
	}
	if _, ok := c.Get(blob, map[string]string{"a": "c"}); ok {
		t.Fatal("hit with a different context")
	}
	if _, ok := c.Get([]byte("ciphertexT"), map[string]string{"a": "b"}); ok {
		t.Fatal("hit with a different ciphertext")
	}
	clk.Advance(30 * time.Second)
	if _, ok := c.Get(blob, map[string]string{"a": "b"}); ok {
		t.Fatal("hit after TTL")
	}
	if !allZero(secret) {
		t.Fatal("expired plaintext not zeroed")
	}
}

func TestDecryptCacheMaxBytes(t *testing.T) {
	c, _ := NewDecryptCache(DecryptConfig{MaxBytes: 10})
	c.Put([]byte("a"), nil, Decrypted{Plaintext: []byte("12345")})
	a := c.secretOf(t, []byte("a"), nil)
	c.Put([]byte("b"), nil, Decrypted{Plaintext: []byte("12345")})
	c.Put([]byte("c"), nil, Decrypted{Plaintext: []byte("1")}) // evicts a
	if _, ok := c.Get([]byte("a"), nil); ok || !allZero(a) {
		t.Fatal("total byte bound not enforced by LRU eviction")
	}
	if c.Put([]byte("d"), nil, Decrypted{Plaintext: make([]byte, 11)}) {
		t.Fatal("result larger than MaxBytes was cached")
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
}

func TestCachesConcurrent(t *testing.T) {
	dkc, _ := NewDataKeyCache(DataKeyConfig{MaxUses: 50, MaxEntries: 4})
	dc, _ := NewDecryptCache(DecryptConfig{MaxEntries: 4})
	var wg sync.WaitGroup
	var mu sync.Mutex
	hits := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				id := fmt.Sprint("k", i%6)
				if dk, ok := dkc.Get(id, nil, 1); ok {
					if len(dk.Plaintext) != 32 || allZero(dk.Plaintext) {
						t.Error("got a zeroed or short key")
						return
					}
					mu.Lock()
					hits++
					mu.Unlock()
				} else {
					dkc.Put(id, nil, testKey(byte(g+1)), 1)
				}
				blob := []byte{byte(i % 6)}
				if d, ok := dc.Get(blob, nil); ok && d.Plaintext[0] != byte(i%6)+1 {
					t.Error("decrypt cache returned another entry's plaintext")
					return
				}
				dc.Put(blob, nil, Decrypted{Plaintext: []byte{byte(i%6) + 1}})
			}
		})
	}
	wg.Wait()
	if hits == 0 {
		t.Fatal("no cache hits at all")
	}
	if dkc.Len() > 4 || dc.Len() > 4 {
		t.Fatalf("bounds exceeded: %d %d", dkc.Len(), dc.Len())
	}
}

func BenchmarkDataKeyCacheGet(b *testing.B) {
	c, _ := NewDataKeyCache(DataKeyConfig{MaxUses: MaxUsesLimit})
	ctx := map[string]string{"table": "users", "column": "email"}
	c.Put("alias/orders", ctx, testKey(1), 0)
	for b.Loop() {
		dk, ok := c.Get("alias/orders", ctx, 100)
		if !ok {
			b.Fatal("miss")
		}
		clear(dk.Plaintext)
	}
}

func BenchmarkDecryptCacheGet(b *testing.B) {
	c, _ := NewDecryptCache(DecryptConfig{})
	blob := bytes.Repeat([]byte{1}, 120)
	ctx := map[string]string{"table": "users", "column": "email"}
	c.Put(blob, ctx, Decrypted{Plaintext: make([]byte, 32)})
	for b.Loop() {
		d, ok := c.Get(blob, ctx)
		if !ok {
			b.Fatal("miss")
		}
		clear(d.Plaintext)
	}
}
