package kms

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/store"
)

// Defaults of the version usage and retirement settings of Config.
const (
	// DefaultUsageFlushInterval is how often a Service adds the decryption
	// counts it gathered in memory to the database.
	DefaultUsageFlushInterval = 10 * time.Second
	// DefaultRetirementQuietPeriod is how long a key version must have gone
	// without decryptions before DisableKeyVersion accepts it unforced.
	DefaultRetirementQuietPeriod = 24 * time.Hour
)

// usageKey names one key version in the usage table.
type usageKey struct {
	keyID   string
	version int64
}

// usageCell counts the decryptions under one key version that this Service
// has not yet added to the database; a flush swaps it to zero.
type usageCell struct {
	count atomic.Int64
}

// usageTable is the in-memory side of the per-version decryption counters.
// The crypto path finds the version's cell in the key's cache entry
// (cellsFor, filled when the entry is loaded) and does one atomic add: no
// lock, no allocation, no clock read, no database access. The last-used
// time is the business time of the flush that carries the counts to the
// database, so it is late by at most one flush interval, never early (the
// safe side for the retirement quiet period). Cells are kept for the life
// of the Service (one per version of every key loaded here).
type usageTable struct {
	mu    sync.RWMutex
	cells map[usageKey]*usageCell

	flushMu sync.Mutex // one flush at a time; see Service.FlushUsage
}

func newUsageTable() *usageTable { return &usageTable{cells: map[usageKey]*usageCell{}} }

// cellsFor returns the cells of the given versions of keyID, creating
// missing ones, for a key cache entry. A nil table (the benchmark's
// uncounted baseline) returns nil, and nothing is counted.
func (u *usageTable) cellsFor(keyID string, versions map[int64]store.KeyVersion) map[int64]*usageCell {
	if u == nil {
		return nil
	}
	out := make(map[int64]*usageCell, len(versions))
	u.mu.Lock()
	defer u.mu.Unlock()
	for v := range versions {
		k := usageKey{keyID, v}
		c := u.cells[k]
		if c == nil {
			c = new(usageCell)
			u.cells[k] = c
		}
		out[v] = c
	}
	return out
}

// pending returns the unflushed count of (keyID, version).
func (u *usageTable) pending(keyID string, version int64) int64 {
	u.mu.RLock()
	c := u.cells[usageKey{keyID, version}]
	u.mu.RUnlock()
	if c == nil {
		return 0
	}
	return c.count.Load()
}

// take swaps every cell's count out for a flush at now.
func (u *usageTable) take(now time.Time) []store.VersionUsage {
	u.mu.RLock()
	defer u.mu.RUnlock()
	var out []store.VersionUsage
	for k, c := range u.cells {
		if n := c.count.Swap(0); n != 0 {
			out = append(out, store.VersionUsage{KeyID: k.keyID, Version: k.version, Count: n, LastUsed: now})
		}
	}
	return out
}

// giveBack returns counts whose flush failed to their cells.
func (u *usageTable) giveBack(us []store.VersionUsage) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	for _, x := range us {
		if c := u.cells[usageKey{x.KeyID, x.Version}]; c != nil {
			c.count.Add(x.Count)
		}
	}
}

// FlushUsage adds the decryption counts this Service gathered in memory
// since the last flush to the database, with the current time as the
// versions' last use (counters add up across replicas; the last-used time
// only moves forward). A Service flushes by itself every
// Config.UsageFlushInterval and when closed; call FlushUsage to make the
// counts visible at once. On failure the counts stay in memory for the next
// flush.
func (s *Service) FlushUsage(ctx context.Context) error {
	s.usage.flushMu.Lock()
	defer s.usage.flushMu.Unlock()
	return s.flushLocked(ctx)
}

// flushLocked is FlushUsage with usage.flushMu held.
func (s *Service) flushLocked(ctx context.Context) error {
	us := s.usage.take(s.now())
	if len(us) == 0 {
		return nil
	}
	if err := s.st.AddVersionUsage(ctx, us); err != nil {
		s.usage.giveBack(us)
		return err
	}
	return nil
}

// flushLoop flushes every interval until stop is closed.
func (s *Service) flushLoop(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			_ = s.FlushUsage(ctx) // kept in memory and retried on failure
			cancel()
		}
	}
}
