package kms

import (
	"container/list"
	"crypto/cipher"
	"sync"

	"github.com/kmsgo/kmsgo/hsm"
)

// materialCache is a bounded LRU of unwrapped SOFTWARE key versions: the
// material and the AES-GCM built from it once. Evicted or dropped material
// is zeroed. The AES-GCM cannot be zeroed (crypto/aes keeps its expanded key
// private); it is dropped with the entry, and a request still using it
// finishes with it. Building it per request instead would leave one such
// expanded key in the garbage per request, and cost a key expansion and
// about 1.2 KB of allocation each time.
type materialCache struct {
	mu    sync.Mutex
	limit int
	ll    *list.List
	items map[materialKey]*list.Element
}

type materialKey struct {
	keyID   string
	version int64
}

type materialItem struct {
	k    materialKey
	mat  []byte
	aead cipher.AEAD // safe for concurrent use: it holds no per-call state
}

func newMaterialCache(limit int) *materialCache {
	return &materialCache{limit: limit, ll: list.New(), items: map[materialKey]*list.Element{}}
}

// aead returns the AES-GCM of (keyID, version) if it is cached.
func (c *materialCache) aead(keyID string, version int64) (cipher.AEAD, bool) {
	if c.limit <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[materialKey{keyID, version}]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*materialItem).aead, true
}

// put stores a copy of mat and the AES-GCM built from it; material that
// is not an AES key is not stored.
func (c *materialCache) put(keyID string, version int64, mat []byte) {
	if c.limit <= 0 {
		return
	}
	aead, err := newGCM(mat)
	if err != nil {
		return
	}
	k := materialKey{keyID, version}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&materialItem{k: k, mat: append([]byte(nil), mat...), aead: aead})
	for c.ll.Len() > c.limit {
		c.removeElement(c.ll.Back())
	}
}

func (c *materialCache) removeElement(el *list.Element) {
	it := el.Value.(*materialItem)
	hsm.Zero(it.mat)
	c.ll.Remove(el)
	delete(c.items, it.k)
}

// drop zeroes and removes one version.
func (c *materialCache) drop(keyID string, version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[materialKey{keyID, version}]; ok {
		c.removeElement(el)
	}
}

// purge zeroes and removes every version of keyID, or everything if keyID
// is empty.
func (c *materialCache) purge(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.items {
		if keyID == "" || k.keyID == keyID {
			c.removeElement(el)
		}
	}
}

// len reports the number of cached versions.
func (c *materialCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
