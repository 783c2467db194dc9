package kms

import (
	"container/list"
	"sync"

	"github.com/kmsgo/kmsgo/hsm"
)

// materialCache is a bounded LRU of unwrapped SOFTWARE key version material.
// Evicted or dropped material is zeroed. Readers get a copy, so zeroing
// never races with a cipher in use.
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
	k   materialKey
	mat []byte
}

func newMaterialCache(limit int) *materialCache {
	return &materialCache{limit: limit, ll: list.New(), items: map[materialKey]*list.Element{}}
}

// get copies the material of (keyID, version) into dst[:0] and reports
// whether it was cached.
func (c *materialCache) get(keyID string, version int64, dst []byte) ([]byte, bool) {
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
	return append(dst[:0], el.Value.(*materialItem).mat...), true
}

// put stores a copy of mat.
func (c *materialCache) put(keyID string, version int64, mat []byte) {
	if c.limit <= 0 {
		return
	}
	k := materialKey{keyID, version}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&materialItem{k: k, mat: append([]byte(nil), mat...)})
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
