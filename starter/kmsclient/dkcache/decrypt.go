package dkcache

import (
	"fmt"
	"sync"
	"time"
)

// Defaults of DecryptConfig.
const (
	DefaultDecryptTTL        = 5 * time.Minute
	DefaultDecryptMaxEntries = 1000
	DefaultDecryptMaxBytes   = int64(16) << 20 // 16 MiB of plaintext
)

// Decrypted is a cached decryption result.
type Decrypted struct {
	KeyID      string // master key that decrypted the ciphertext
	KeyVersion int    // its version
	Plaintext  []byte // secret
}

// DecryptConfig sets the bounds of a DecryptCache. Zero values mean the
// defaults.
type DecryptConfig struct {
	// TTL is how long a result stays cached after it was stored.
	TTL time.Duration
	// MaxEntries bounds the number of results (LRU eviction).
	MaxEntries int
	// MaxBytes bounds the total plaintext held (LRU eviction); a single
	// result larger than this is not cached.
	MaxBytes int64
	// Now is the clock; tests inject one. Default time.Now.
	Now func() time.Time
}

// DecryptCache is a bounded LRU of decryption results keyed by a hash of
// (ciphertext, encryption context), with a TTL. See the package comment.
type DecryptCache struct {
	mu sync.Mutex
	l  *lru
}

// NewDecryptCache returns an empty cache. It fails with ErrInvalidConfig
// for negative bounds.
func NewDecryptCache(cfg DecryptConfig) (*DecryptCache, error) {
	if cfg.TTL < 0 || cfg.MaxEntries < 0 || cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultDecryptTTL
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultDecryptMaxEntries
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultDecryptMaxBytes
	}
	return &DecryptCache{l: newLRU(cfg.MaxEntries, cfg.MaxBytes, cfg.TTL, cfg.Now)}, nil
}

func decryptKey(blob []byte, encCtx map[string]string) cacheKey {
	h := newKeyHasher('D')
	h.field(blob)
	h.context(encCtx)
	return h.sum()
}

// Get returns a copy of the cached result for (blob, encCtx). The caller
// owns the returned Plaintext and should clear it when done.
func (c *DecryptCache) Get(blob []byte, encCtx map[string]string) (Decrypted, bool) {
	k := decryptKey(blob, encCtx)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.l.lookup(k)
	if e == nil {
		return Decrypted{}, false
	}
	return Decrypted{KeyID: e.keyID, KeyVersion: e.keyVersion, Plaintext: clone(e.secret)}, true
}

// Put caches a copy of d for (blob, encCtx), replacing and clearing any
// previous entry. d is left untouched. It reports whether d was cached.
func (c *DecryptCache) Put(blob []byte, encCtx map[string]string, d Decrypted) bool {
	k := decryptKey(blob, encCtx)
	secret := clone(d.Plaintext)
	if secret == nil {
		secret = []byte{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.l.insert(&entry{
		key:        k,
		secret:     secret,
		size:       int64(len(secret)),
		keyID:      d.KeyID,
		keyVersion: d.KeyVersion,
	})
}

// Len returns the number of live entries.
func (c *DecryptCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.l.expire(c.l.now())
	return len(c.l.items)
}

// Clear evicts every entry and clears its plaintext.
func (c *DecryptCache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.l.removeAll()
}
