package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/dbtest"
)

func newStore(t *testing.T, db *gorm.DB) *jobs.Store {
	t.Helper()
	st, err := jobs.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newScheduler(t *testing.T, st *jobs.Store, holder string, js ...jobs.Job) *jobs.Scheduler {
	t.Helper()
	s, err := jobs.New(jobs.Config{Store: st, Holder: holder, LeaseTTL: 3 * time.Second}, nil, js...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, s) })
	return s
}

func setRow(t *testing.T, db *gorm.DB, job string, set map[string]any) {
	t.Helper()
	if err := db.Model(&jobs.State{}).Where("job = ?", job).Updates(set).Error; err != nil {
		t.Fatal(err)
	}
}

// TestOnDemandRunsRaceForOneLease: many schedulers (one per "replica")
// start an on-demand run of one job at the same moment, on every
// dialect; the lease admits exactly one, the others get ErrLeaseHeld.
func TestOnDemandRunsRaceForOneLease(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		st := newStore(t, db)
		var running, ran atomic.Int32
		release := make(chan struct{})
		const n = 6
		scheds := make([]*jobs.Scheduler, n)
		for i := range scheds {
			scheds[i] = newScheduler(t, st, fmt.Sprintf("replica-%d", i), jobs.Job{Name: "renew", Schedule: "@hourly",
				Run: func(ctx context.Context) (int, error) {
					running.Add(1)
					ran.Add(1)
					<-release
					running.Add(-1)
					return 1, nil
				}})
		}
		results := make(chan error, n)
		for _, s := range scheds {
			go func() {
				_, err := s.RunNow(context.Background(), "renew")
				results <- err
			}()
		}
		// The winner holds its run open until every other replica has
		// been answered, so no later, legitimate run can follow it.
		held := 0
		for held < n-1 {
			select {
			case err := <-results:
				if !errors.Is(err, jobs.ErrLeaseHeld) {
					t.Fatalf("RunNow while another replica runs the job: %v", err)
				}
				held++
			case <-time.After(30 * time.Second):
				t.Fatalf("only %d of %d replicas were answered", held, n-1)
			}
		}
		waitFor(t, 20*time.Second, "the winning run", func() bool { return running.Load() == 1 })
		close(release)
		if err := <-results; err != nil {
			t.Fatalf("the winning run: %v", err)
		}
		if ran.Load() != 1 || held != n-1 {
			t.Fatalf("ran %d times, %d refused; want 1 and %d", ran.Load(), held, n-1)
		}
		row, err := st.Get(context.Background(), "renew")
		if err != nil {
			t.Fatal(err)
		}
		if row.Runs != 1 || row.LastOutcome != "ok" || row.Holder != "" || row.LastItems != 1 {
			t.Fatalf("state after the run: %+v", row)
		}
	})
}

// TestSchedulersRunEachPeriodOnce: two schedulers on one database tick the
// same job every second for a few seconds; no period runs twice.
func TestSchedulersRunEachPeriodOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		st := newStore(t, db)
		var mu sync.Mutex
		periods := map[time.Time]string{}
		var dup []string
		job := func(holder string) jobs.Job {
			return jobs.Job{Name: "tick", Schedule: "@every 1s", Run: func(ctx context.Context) (int, error) {
				p := jobs.Period(ctx)
				mu.Lock()
				defer mu.Unlock()
				if prev, ok := periods[p]; ok {
					dup = append(dup, fmt.Sprintf("%v by %s and %s", p, prev, holder))
				}
				periods[p] = holder
				return 0, nil
			}}
		}
		a := newScheduler(t, st, "a", job("a"))
		b := newScheduler(t, st, "b", job("b"))
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "four periods", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(periods) >= 4
		})
		stop(t, a)
		stop(t, b)
		mu.Lock()
		defer mu.Unlock()
		if len(dup) > 0 {
			t.Fatalf("periods run twice: %v", dup)
		}
		row, err := st.Get(context.Background(), "tick")
		if err != nil {
			t.Fatal(err)
		}
		if int(row.Runs) != len(periods) {
			t.Fatalf("persisted %d runs, observed %d", row.Runs, len(periods))
		}
	})
}

// TestMissedRunCaughtUpOnceAtStart: a job due while no scheduler was up
// runs once when schedulers start again, not once per scheduler, and a
// job that is not due does not run at start.
func TestMissedRunCaughtUpOnceAtStart(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		st := newStore(t, db)
		var runs atomic.Int32
		j := jobs.Job{Name: "daily", Schedule: "@daily", Run: func(context.Context) (int, error) { runs.Add(1); return 0, nil }}

		first := newScheduler(t, st, "first", j)
		if err := first.Start(); err != nil { // a new job is due at once
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "the first run", func() bool { return runs.Load() == 1 })
		stop(t, first)
		row, err := st.Get(context.Background(), "daily")
		if err != nil {
			t.Fatal(err)
		}
		if !row.NextRun().After(time.Now()) {
			t.Fatalf("next run %v is not in the future", row.NextRun())
		}

		notDue := newScheduler(t, st, "early", j)
		if err := notDue.Start(); err != nil {
			t.Fatal(err)
		}
		stop(t, notDue)
		if runs.Load() != 1 {
			t.Fatalf("a job that was not due ran at start (%d runs)", runs.Load())
		}

		// Everything was down across the due time.
		setRow(t, db, "daily", map[string]any{"next_run_ms": time.Now().Add(-time.Hour).UnixMilli()})
		var scheds []*jobs.Scheduler
		for i := range 3 {
			scheds = append(scheds, newScheduler(t, st, fmt.Sprintf("late-%d", i), j))
		}
		for _, s := range scheds {
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 20*time.Second, "the catch-up run", func() bool { return runs.Load() >= 2 })
		for _, s := range scheds {
			stop(t, s)
		}
		if runs.Load() != 2 {
			t.Fatalf("the missed run ran %d times, want once", runs.Load()-1)
		}
	})
}

// TestDeadRunnerIsResumedFromCursor: a runner that saved a cursor and then
// died (its lease expired, nobody finished the run) is taken over at the
// next start, which sees the cursor; a successful run clears it.
func TestDeadRunnerIsResumedFromCursor(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		st := newStore(t, db)
		seen := make(chan string, 4)
		j := func(fail bool) jobs.Job {
			return jobs.Job{Name: "renewal", Schedule: "@daily", Run: func(ctx context.Context) (int, error) {
				seen <- jobs.Cursor(ctx)
				if fail {
					if err := jobs.SaveCursor(ctx, "rows>500"); err != nil {
						return 0, err
					}
					return 0, errors.New("database went away")
				}
				return 3, nil
			}}
		}
		// The first runner fails halfway and records where it was.
		failing := newScheduler(t, st, "failing", j(true))
		if _, err := failing.RunNow(context.Background(), "renewal"); err == nil {
			t.Fatal("the failing run reported success")
		}
		if c := <-seen; c != "" {
			t.Fatalf("first run saw cursor %q", c)
		}
		// Now a runner "dies" holding the lease: due in the future, lease expired.
		setRow(t, db, "renewal", map[string]any{"holder": "crashed", "lease_until_ms": time.Now().Add(-time.Second).UnixMilli(),
			"next_run_ms": time.Now().Add(time.Hour).UnixMilli()})

		next := newScheduler(t, st, "next", j(false))
		if err := next.Start(); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-seen:
			if c != "rows>500" {
				t.Fatalf("the resumed run saw cursor %q", c)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the dead runner's job was not taken over at start")
		}
		stop(t, next)
		row, err := st.Get(context.Background(), "renewal")
		if err != nil {
			t.Fatal(err)
		}
		if row.Cursor != "" || row.LastOutcome != "ok" || row.LastItems != 3 || row.Holder != "" {
			t.Fatalf("state after the resumed run: %+v", row)
		}
	})
}

// TestLostLeaseCancelsTheRun: when another runner takes the lease over
// (this one could not renew in time), the run's context is cancelled and
// its result says the lease was lost.
func TestLostLeaseCancelsTheRun(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	st := newStore(t, db)
	started := make(chan struct{})
	s, err := jobs.New(jobs.Config{Store: st, Holder: "me", LeaseTTL: 600 * time.Millisecond}, nil,
		jobs.Job{Name: "long", Schedule: "@daily", Run: func(ctx context.Context) (int, error) {
			close(started)
			<-ctx.Done()
			return 0, ctx.Err()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, s)
	done := make(chan jobs.Result, 1)
	go func() { r, _ := s.RunNow(context.Background(), "long"); done <- r }()
	<-started
	setRow(t, db, "long", map[string]any{"holder": "thief"})
	select {
	case r := <-done:
		if !errors.Is(r.Err, jobs.ErrLeaseLost) {
			t.Fatalf("result error %v, want ErrLeaseLost", r.Err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the run went on after its lease was taken")
	}
	row, err := st.Get(context.Background(), "long")
	if err != nil {
		t.Fatal(err)
	}
	if row.Holder != "thief" || row.Runs != 0 {
		t.Fatalf("the loser overwrote the new holder's row: %+v", row)
	}
}

// TestPanicIsPersistedAndFreesTheLease: a panicking run records outcome
// "panic", frees its lease, and the job can run again.
func TestPanicIsPersistedAndFreesTheLease(t *testing.T) {
	db := dbtest.Open(t, "sqlite")
	st := newStore(t, db)
	var calls atomic.Int32
	s := newScheduler(t, st, "me", jobs.Job{Name: "p", Schedule: "@daily", Run: func(context.Context) (int, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return 0, nil
	}})
	if _, err := s.RunNow(context.Background(), "p"); !errors.Is(err, jobs.ErrPanic) {
		t.Fatalf("RunNow: %v", err)
	}
	row, err := st.Get(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	if row.LastOutcome != "panic" || row.Holder != "" {
		t.Fatalf("after a panic: %+v", row)
	}
	if _, err := s.RunNow(context.Background(), "p"); err != nil {
		t.Fatalf("second run: %v", err)
	}
	states, err := s.States(context.Background())
	if err != nil || len(states) != 1 || states[0].Runs != 2 || states[0].Schedule != "@daily" {
		t.Fatalf("States: %+v, %v", states, err)
	}
}
