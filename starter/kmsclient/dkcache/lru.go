package dkcache

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"
)

// cacheKey identifies an entry: a SHA-256 over a canonical encoding.
type cacheKey [sha256.Size]byte

// entry is one cached item. secret is the plaintext the cache owns and
// clears when the entry leaves.
type entry struct {
	key     cacheKey
	created time.Time
	secret  []byte
	size    int64 // bytes of secret counted against the total bound

	keyID      string
	keyVersion int
	blob       []byte // data-key ciphertext (not secret)

	uses  uint64 // data-key uses so far
	bytes int64  // data-key bytes protected so far

	byUse *list.Element // in lru.recency: front = most recently used
	byAge *list.Element // in lru.age: front = oldest
}

// lru is a map with two orders: recency for capacity eviction and age for
// expiry. It is not safe for concurrent use; the caches lock around it.
type lru struct {
	maxEntries int
	maxTotal   int64 // bound on the sum of entry sizes; 0 = none
	maxAge     time.Duration
	now        func() time.Time

	items   map[cacheKey]*entry
	recency *list.List
	age     *list.List
	total   int64
}

func newLRU(maxEntries int, maxTotal int64, maxAge time.Duration, now func() time.Time) *lru {
	if now == nil {
		now = time.Now
	}
	return &lru{
		maxEntries: maxEntries,
		maxTotal:   maxTotal,
		maxAge:     maxAge,
		now:        now,
		items:      make(map[cacheKey]*entry),
		recency:    list.New(),
		age:        list.New(),
	}
}

// expire removes every entry whose age has reached maxAge. Entries are
// kept in creation order, so this stops at the first live one.
func (l *lru) expire(now time.Time) {
	for {
		front := l.age.Front()
		if front == nil {
			return
		}
		e := front.Value.(*entry)
		if now.Sub(e.created) < l.maxAge {
			return
		}
		l.remove(e)
	}
}

// lookup returns the live entry for k and marks it most recently used.
func (l *lru) lookup(k cacheKey) *entry {
	l.expire(l.now())
	e := l.items[k]
	if e != nil {
		l.recency.MoveToFront(e.byUse)
	}
	return e
}

// insert stores e, replacing any entry with the same key, then evicts the
// least recently used entries until the bounds hold. It returns false (and
// clears e.secret) if e alone exceeds the total-size bound.
func (l *lru) insert(e *entry) bool {
	now := l.now()
	l.expire(now)
	if old := l.items[e.key]; old != nil {
		l.remove(old)
	}
	if l.maxTotal > 0 && e.size > l.maxTotal {
		clear(e.secret)
		return false
	}
	e.created = now
	e.byUse = l.recency.PushFront(e)
	e.byAge = l.age.PushBack(e)
	l.items[e.key] = e
	l.total += e.size
	for len(l.items) > l.maxEntries || (l.maxTotal > 0 && l.total > l.maxTotal) {
		l.remove(l.recency.Back().Value.(*entry))
	}
	return true
}

// remove drops e and clears the plaintext it owns.
func (l *lru) remove(e *entry) {
	l.recency.Remove(e.byUse)
	l.age.Remove(e.byAge)
	delete(l.items, e.key)
	l.total -= e.size
	clear(e.secret)
	e.secret = nil
}

// removeAll drops and clears every entry.
func (l *lru) removeAll() {
	for _, e := range l.items {
		l.remove(e)
	}
}

// keyHasher builds a cacheKey from length-prefixed fields, so that no two
// different field sequences encode to the same bytes.
type keyHasher struct{ buf []byte }

func newKeyHasher(domain byte) *keyHasher {
	return &keyHasher{buf: append(make([]byte, 0, 128), domain)}
}

func (h *keyHasher) field(b []byte) {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(b)))
	h.buf = append(h.buf, b...)
}

func (h *keyHasher) str(s string) {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
}

// context appends the encryption context sorted by key. A nil and an empty
// context encode the same.
func (h *keyHasher) context(encCtx map[string]string) {
	keys := make([]string, 0, len(encCtx))
	for k := range encCtx {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h.buf = binary.AppendUvarint(h.buf, uint64(len(keys)))
	for _, k := range keys {
		h.str(k)
		h.str(encCtx[k])
	}
}

func (h *keyHasher) sum() cacheKey {
	k := cacheKey(sha256.Sum256(h.buf))
	clear(h.buf)
	return k
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
