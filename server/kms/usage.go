package kms

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kmsgo/kmsgo/server/store"
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
// has not yet added to the database: count and the latest time (Unix
// milliseconds of business time). Both are swapped to zero by a flush.
type usageCell struct {
	count atomic.Int64
	last  atomic.Int64
}

// note records one decryption at ms.
func (c *usageCell) note(ms int64) {
	c.count.Add(1)
	for {
		old := c.last.Load()
		if ms <= old || c.last.CompareAndSwap(old, ms) {
			return
		}
	}
}

// usageTable is the in-memory side of the per-version decryption counters:
// the hot path does a read-locked map lookup and two atomic operations, no
// allocation once the version has a cell, and no database access. Flush
// moves the counts to the database in one transaction. Cells are kept for
// the life of the Service (one per version ever decrypted here).
type usageTable struct {
	mu    sync.RWMutex
	cells map[usageKey]*usageCell

	flushMu sync.Mutex // one flush at a time; see Service.FlushUsage
}

func newUsageTable() *usageTable { return &usageTable{cells: map[usageKey]*usageCell{}} }

// note records one decryption under (keyID, version) at t. A nil table
// counts nothing (the baseline of the hot-path benchmark).
func (u *usageTable) note(keyID string, version int64, t time.Time) {
	if u == nil {
		return
	}
	k := usageKey{keyID, version}
	u.mu.RLock()
	c := u.cells[k]
	u.mu.RUnlock()
	if c == nil {
		u.mu.Lock()
		if c = u.cells[k]; c == nil {
			c = new(usageCell)
			u.cells[k] = c
		}
		u.mu.Unlock()
	}
	c.note(t.UnixMilli())
}

// pending returns the unflushed count and last use of (keyID, version).
func (u *usageTable) pending(keyID string, version int64) (int64, time.Time) {
	u.mu.RLock()
	c := u.cells[usageKey{keyID, version}]
	u.mu.RUnlock()
	if c == nil {
		return 0, time.Time{}
	}
	n, ms := c.count.Load(), c.last.Load()
	if ms == 0 {
		return n, time.Time{}
	}
	return n, time.UnixMilli(ms).UTC()
}

// take swaps every cell's counts out for flushing.
func (u *usageTable) take() []store.VersionUsage {
	u.mu.RLock()
	defer u.mu.RUnlock()
	var out []store.VersionUsage
	for k, c := range u.cells {
		n := c.count.Swap(0)
		ms := c.last.Swap(0)
		if n == 0 && ms == 0 {
			continue
		}
		x := store.VersionUsage{KeyID: k.keyID, Version: k.version, Count: n}
		if ms != 0 {
			// ms == 0 with n > 0: a decryption counted between the two
			// swaps; its time stays in the cell for the next flush.
			x.LastUsed = time.UnixMilli(ms).UTC()
		}
		out = append(out, x)
	}
	return out
}

// giveBack returns counts whose flush failed to their cells.
func (u *usageTable) giveBack(us []store.VersionUsage) {
	for _, x := range us {
		u.mu.RLock()
		c := u.cells[usageKey{x.KeyID, x.Version}]
		u.mu.RUnlock()
		if c == nil {
			continue
		}
		c.count.Add(x.Count)
		if x.LastUsed.IsZero() {
			continue
		}
		ms := x.LastUsed.UnixMilli()
		for {
			old := c.last.Load()
			if ms <= old || c.last.CompareAndSwap(old, ms) {
				break
			}
		}
	}
}

// FlushUsage adds the decryption counts this Service gathered in memory
// since the last flush to the database (counters add up across replicas;
// the last-used time only moves forward). A Service flushes by itself every
// Config.UsageFlushInterval and when closed; call FlushUsage to make the
// counts visible at once. On failure the counts stay in memory for the next
// flush.
func (s *Service) FlushUsage(ctx context.Context) error {
	s.usage.flushMu.Lock()
	defer s.usage.flushMu.Unlock()
	us := s.usage.take()
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
