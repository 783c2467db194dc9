package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

type leaseKey struct{}

// runLease is the lease of the run in progress, reachable from its context.
type runLease struct {
	store  *Store
	job    string
	holder string
	state  State
	sched  bool // a scheduled run (it claimed state.PeriodMS)
	lost   atomic.Bool
}

func leaseOf(ctx context.Context) (*runLease, error) {
	l, _ := ctx.Value(leaseKey{}).(*runLease)
	if l == nil {
		return nil, ErrNoStore
	}
	return l, nil
}

// Cursor returns where the previous, unfinished run of this job stopped
// ("" when it finished or never ran). A resumable job reads it at its start
// and calls SaveCursor as it goes; a run that succeeds clears it.
func Cursor(ctx context.Context) string {
	l, err := leaseOf(ctx)
	if err != nil {
		return ""
	}
	return l.state.Cursor
}

// SaveCursor persists the resume point of the running job under its lease;
// ErrLeaseLost when another runner took the job over, ErrNoStore when the
// scheduler has no Store.
func SaveCursor(ctx context.Context, cursor string) error {
	l, err := leaseOf(ctx)
	if err != nil {
		return err
	}
	if err := l.store.saveCursor(context.WithoutCancel(ctx), l.job, l.holder, cursor); err != nil {
		return err
	}
	l.state.Cursor = cursor
	return nil
}

// Period returns the due time of the scheduled run in progress (zero for
// an on-demand run, for a job's very first run, or without a Store). Two
// scheduled runs of one job never share a non-zero period.
func Period(ctx context.Context) time.Time {
	l, err := leaseOf(ctx)
	if err != nil || !l.sched {
		return time.Time{}
	}
	return msTime(l.state.PeriodMS)
}

func defaultHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return clip(fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b)), 128)
}
