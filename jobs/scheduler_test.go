package jobs_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmsgo/kmsgo/jobs"
)

// "@every 100ms" is rounded up to one second by cron; tests use "@every 1s"
// and bounded waits of several seconds.
const fast = "@every 1s"

// TestPanicIsRecoveredAndJobRunsAgain: the start-up run panics; the panic
// is recovered and counted, and the job runs again at the next tick (in
// cron v3.0.1 with Recover outside SkipIfStillRunning it never would).
func TestPanicIsRecoveredAndJobRunsAgain(t *testing.T) {
	var calls atomic.Int32
	reg := prometheus.NewRegistry()
	s, err := jobs.New(jobs.Config{Registry: reg}, nil, jobs.Job{Name: "flaky", Schedule: fast, Run: func(context.Context) (int, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return 0, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer stop(t, s)
	waitFor(t, 5*time.Second, "a run after the panic", func() bool { return calls.Load() >= 2 })
	waitFor(t, 5*time.Second, "the runs to be counted", func() bool { return metric(t, reg, "kms_jobs_runs_total", "flaky") >= 2 })
	if v := metric(t, reg, "kms_jobs_failures_total", "flaky"); v != 1 {
		t.Fatalf("failures_total %v, want 1 (the panic)", v)
	}
}

// TestRunNowRecoversPanic: an on-demand run returns ErrPanic instead of
// crashing the caller.
func TestRunNowRecoversPanic(t *testing.T) {
	s, err := jobs.New(jobs.Config{}, nil, jobs.Job{Name: "p", Schedule: "@hourly", Run: func(context.Context) (int, error) { panic("boom") }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.RunNow(context.Background(), "p")
	if !errors.Is(err, jobs.ErrPanic) || !errors.Is(res.Err, jobs.ErrPanic) {
		t.Fatalf("RunNow: %v, %v", res, err)
	}
	// The job's lock was released by the panic: it can run again.
	if _, err := s.RunNow(context.Background(), "p"); !errors.Is(err, jobs.ErrPanic) {
		t.Fatalf("second RunNow: %v", err)
	}
}

// TestSkipIfStillRunning: while a run is in progress, ticks are skipped
// (and counted), never run concurrently; after it ends the job runs again.
func TestSkipIfStillRunning(t *testing.T) {
	var calls, inFlight, maxInFlight atomic.Int32
	release := make(chan struct{})
	reg := prometheus.NewRegistry()
	s, err := jobs.New(jobs.Config{Registry: reg}, nil, jobs.Job{Name: "slow", Schedule: fast, Run: func(ctx context.Context) (int, error) {
		calls.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return 1, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer stop(t, s)
	waitFor(t, 5*time.Second, "two skipped ticks", func() bool { return metric(t, reg, "kms_jobs_skipped_total", "slow") >= 2 })
	if c, m := calls.Load(), maxInFlight.Load(); c != 1 || m != 1 {
		t.Fatalf("while running: %d calls, %d max in flight; want 1 and 1", c, m)
	}
	close(release)
	waitFor(t, 5*time.Second, "a run after the slow one ended", func() bool { return calls.Load() >= 2 })
	if m := maxInFlight.Load(); m != 1 {
		t.Fatalf("max in flight %d, want 1", m)
	}
}

// TestRunNowWaitsForScheduledRun: RunNow is serialized with a scheduled
// run of the same job instead of overlapping it.
func TestRunNowWaitsForScheduledRun(t *testing.T) {
	var inFlight, maxInFlight atomic.Int32
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	s, err := jobs.New(jobs.Config{}, nil, jobs.Job{Name: "j", Schedule: "@hourly", Run: func(ctx context.Context) (int, error) {
		if n := inFlight.Add(1); n > maxInFlight.Load() {
			maxInFlight.Store(n)
		}
		defer inFlight.Add(-1)
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
		return 0, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil { // the catch-up run holds the job
		t.Fatal(err)
	}
	defer stop(t, s)
	<-entered
	done := make(chan error, 1)
	go func() { _, err := s.RunNow(context.Background(), "j"); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("RunNow returned during the scheduled run: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := maxInFlight.Load(); m != 1 {
		t.Fatalf("max in flight %d, want 1", m)
	}
}

// TestStopCancelsRunsAndLeavesNoGoroutines: Stop cancels a running job's
// context, waits for it, and every scheduler goroutine ends.
func TestStopCancelsRunsAndLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	var sawCancel atomic.Bool
	started := make(chan struct{})
	s, err := jobs.New(jobs.Config{}, nil, jobs.Job{Name: "blocker", Schedule: fast, Run: func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		sawCancel.Store(errors.Is(ctx.Err(), context.Canceled))
		return 0, ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	<-started
	stop(t, s)
	if !sawCancel.Load() {
		t.Fatal("the running job's context was not cancelled by Stop")
	}
	if err := s.Start(); !errors.Is(err, jobs.ErrStopped) {
		t.Fatalf("Start after Stop: %v", err)
	}
	stop(t, s) // idempotent
	settleGoroutines(t, base)
}

// TestStopTimeout: Stop returns the context's error when a job ignores
// cancellation for too long.
func TestStopTimeout(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	s, err := jobs.New(jobs.Config{}, nil, jobs.Job{Name: "stubborn", Schedule: "@hourly", Run: func(context.Context) (int, error) {
		close(started)
		<-release
		return 0, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop: %v, want DeadlineExceeded", err)
	}
	close(release)
	stop(t, s)
}

// TestRunTimeout: Config.Timeout bounds one run.
func TestRunTimeout(t *testing.T) {
	s, err := jobs.New(jobs.Config{Timeout: 20 * time.Millisecond}, nil, jobs.Job{Name: "hang", Schedule: "@hourly", Run: func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunNow(context.Background(), "hang"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RunNow: %v", err)
	}
}

func TestValidateSchedules(t *testing.T) {
	for _, tc := range []struct {
		spec string
		ok   bool
	}{
		{"@every 1m", true},
		{"@every 100ms", true}, // rounded up to 1s by cron
		{"@hourly", true},
		{"@daily", true},
		{"0 3 * * *", true},
		{"*/5 * * * *", true},
		{"0 3 * * MON-FRI", true},
		{"", true}, // default
		{"TZ=Europe/Berlin 0 3 * * *", false},
		{"CRON_TZ=UTC 0 3 * * *", false},
		{"61 * * * *", false},
		{"* * *", false},
		{"0 0 3 * * *", false}, // seconds field not accepted
		{"@every", false},
		{"@every -1m", false},
		{"@sometimes", false},
		{"every minute", false},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			for _, c := range []jobs.Config{{DestroySchedule: tc.spec}, {RotateSchedule: tc.spec}, {OrphanSchedule: tc.spec}} {
				err := c.Validate()
				if tc.ok != (err == nil) {
					t.Fatalf("Validate(%q) = %v, want ok=%v", tc.spec, err, tc.ok)
				}
				if err != nil && !errors.Is(err, jobs.ErrInvalidSchedule) {
					t.Fatalf("error %v does not wrap ErrInvalidSchedule", err)
				}
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	run := func(context.Context) (int, error) { return 0, nil }
	for _, tc := range []struct {
		name string
		cfg  jobs.Config
		jobs []jobs.Job
		want error
	}{
		{"no name", jobs.Config{}, []jobs.Job{{Schedule: "@hourly", Run: run}}, jobs.ErrInvalidJob},
		{"no run", jobs.Config{}, []jobs.Job{{Name: "a", Schedule: "@hourly"}}, jobs.ErrInvalidJob},
		{"duplicate", jobs.Config{}, []jobs.Job{{Name: "a", Schedule: "@hourly", Run: run}, {Name: "a", Schedule: "@daily", Run: run}}, jobs.ErrInvalidJob},
		{"bad job schedule", jobs.Config{}, []jobs.Job{{Name: "a", Schedule: "nope", Run: run}}, jobs.ErrInvalidSchedule},
		{"empty job schedule", jobs.Config{}, []jobs.Job{{Name: "a", Run: run}}, jobs.ErrInvalidSchedule},
		{"bad config schedule", jobs.Config{RotateSchedule: "TZ=UTC @daily"}, nil, jobs.ErrInvalidSchedule},
		{"negative timeout", jobs.Config{Timeout: -time.Second}, nil, jobs.ErrInvalidJob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := jobs.New(tc.cfg, nil, tc.jobs...); !errors.Is(err, tc.want) {
				t.Fatalf("New: %v, want %v", err, tc.want)
			}
		})
	}
	s, err := jobs.New(jobs.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunNow(context.Background(), jobs.JobDestroyDueKeys); !errors.Is(err, jobs.ErrUnknownJob) {
		t.Fatalf("RunNow on a scheduler without a Maintainer: %v", err)
	}
}

// TestSharedRegistry: two schedulers (replicas in one process) can share a
// registry; their counts add up.
func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	run := func(context.Context) (int, error) { return 2, nil }
	for range 2 {
		s, err := jobs.New(jobs.Config{Registry: reg}, nil, jobs.Job{Name: "a", Schedule: "@hourly", Run: run})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RunNow(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
	}
	if v := metric(t, reg, "kms_jobs_items_total", "a"); v != 4 {
		t.Fatalf("items_total %v, want 4", v)
	}
}

// FuzzValidate: no schedule string crashes Validate, and whatever
// Validate accepts New accepts too.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"@every 1m", "0 3 * * *", "TZ=UTC @daily", "*/0 * * * *", "@every 0s", "0-70/3 * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		c := jobs.Config{DestroySchedule: spec}
		err := c.Validate()
		if err != nil {
			if !errors.Is(err, jobs.ErrInvalidSchedule) {
				t.Fatalf("%q: %v does not wrap ErrInvalidSchedule", spec, err)
			}
			return
		}
		if _, err := jobs.New(jobs.Config{}, nil, jobs.Job{Name: "x", Schedule: spec, Run: func(context.Context) (int, error) { return 0, nil }}); err != nil && spec != "" {
			t.Fatalf("%q: Validate accepted, New refused: %v", spec, err)
		}
	})
}
