package dkcache

import (
	"fmt"
	"sync"
	"time"
)

// Defaults and hard limits of DataKeyConfig.
const (
	DefaultMaxAge     = 5 * time.Minute
	DefaultMaxUses    = uint64(1) << 20
	DefaultMaxBytes   = int64(1) << 36 // 64 GiB
	DefaultMaxEntries = 1000

	// MaxUsesLimit is the highest MaxUses accepted: 2^32 messages is the
	// NIST SP 800-38D bound for one AES-GCM key with random 96-bit IVs.
	MaxUsesLimit = uint64(1) << 32
)

// DataKey is a data key as returned by GenerateDataKey.
type DataKey struct {
	KeyID          string // master key id that protects the data key
	KeyVersion     int    // master key version
	Plaintext      []byte // the data key itself: secret
	CiphertextBlob []byte // the data key encrypted under the master key
}

// DataKeyConfig sets the limits of a DataKeyCache. Zero values mean the
// defaults.
type DataKeyConfig struct {
	// MaxAge is how long after it was generated a data key may be reused.
	MaxAge time.Duration
	// MaxUses is how many encryptions one data key may protect, counting
	// the first. At most MaxUsesLimit.
	MaxUses uint64
	// MaxBytes is how many plaintext bytes one data key may protect.
	MaxBytes int64
	// MaxEntries bounds the number of cached data keys (LRU eviction).
	MaxEntries int
	// Now is the clock; tests inject one. Default time.Now.
	Now func() time.Time
}

// DataKeyCache reuses data keys per (master key id, encryption context)
// within age, use and byte limits. See the package comment.
type DataKeyCache struct {
	mu       sync.Mutex
	l        *lru
	maxUses  uint64
	maxBytes int64
}

// NewDataKeyCache returns an empty cache. It fails with ErrInvalidConfig
// for negative limits or MaxUses above MaxUsesLimit.
func NewDataKeyCache(cfg DataKeyConfig) (*DataKeyCache, error) {
	if cfg.MaxAge < 0 || cfg.MaxBytes < 0 || cfg.MaxEntries < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	}
	if cfg.MaxUses > MaxUsesLimit {
		return nil, fmt.Errorf("%w: MaxUses %d above %d", ErrInvalidConfig, cfg.MaxUses, MaxUsesLimit)
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxUses == 0 {
		cfg.MaxUses = DefaultMaxUses
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	return &DataKeyCache{
		l:        newLRU(cfg.MaxEntries, 0, cfg.MaxAge, cfg.Now),
		maxUses:  cfg.MaxUses,
		maxBytes: cfg.MaxBytes,
	}, nil
}

func dataKeyKey(keyID string, encCtx map[string]string) cacheKey {
	h := newKeyHasher('K')
	h.str(keyID)
	h.context(encCtx)
	return h.sum()
}

// Get returns a copy of the cached data key for (keyID, encCtx) and records
// one use protecting n plaintext bytes. It reports false when there is no
// live entry or when this use would exceed MaxUses or MaxBytes; such an
// entry is evicted and its plaintext cleared. An entry that reaches MaxUses
// with this use is evicted right after the copy is made. The caller owns the
// returned Plaintext and should clear it when done.
func (c *DataKeyCache) Get(keyID string, encCtx map[string]string, n int64) (DataKey, bool) {
	if n < 0 {
		return DataKey{}, false
	}
	k := dataKeyKey(keyID, encCtx)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.l.lookup(k)
	if e == nil {
		return DataKey{}, false
	}
	if e.uses >= c.maxUses || n > c.maxBytes-e.bytes {
		c.l.remove(e)
		return DataKey{}, false
	}
	e.uses++
	e.bytes += n
	dk := DataKey{KeyID: e.keyID, KeyVersion: e.keyVersion, Plaintext: clone(e.secret), CiphertextBlob: clone(e.blob)}
	if e.uses >= c.maxUses || e.bytes >= c.maxBytes {
		c.l.remove(e)
	}
	return dk, true
}

// Put caches a copy of dk for (keyID, encCtx) and records its first use,
// protecting n plaintext bytes. dk is left untouched and still belongs to
// the caller. Nothing is cached (and false is returned) when that first use
// already exhausts the limits. An existing entry for the same pair is
// replaced and cleared.
func (c *DataKeyCache) Put(keyID string, encCtx map[string]string, dk DataKey, n int64) bool {
	if n < 0 || len(dk.Plaintext) == 0 {
		return false
	}
	k := dataKeyKey(keyID, encCtx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxUses <= 1 || n >= c.maxBytes {
		if old := c.l.items[k]; old != nil {
			c.l.remove(old)
		}
		return false
	}
	return c.l.insert(&entry{
		key:        k,
		secret:     clone(dk.Plaintext),
		keyID:      dk.KeyID,
		keyVersion: dk.KeyVersion,
		blob:       clone(dk.CiphertextBlob),
		uses:       1,
		bytes:      n,
	})
}

// Len returns the number of live entries.
func (c *DataKeyCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.l.expire(c.l.now())
	return len(c.l.items)
}

// Clear evicts every entry and clears its plaintext.
func (c *DataKeyCache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.l.removeAll()
}
