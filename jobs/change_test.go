package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/dbtest"
)

// changeSink is a Config.AuditChange that records the changes and fails
// from the failAt-th call on (0: never).
type changeSink struct {
	mu     sync.Mutex
	got    []jobs.Change
	failAt int
}

func (s *changeSink) hook(_ context.Context, job string, c jobs.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, c)
	if s.failAt > 0 && len(s.got) >= s.failAt {
		return errors.New("audit store down")
	}
	return nil
}

// TestReportChangeAuditsEachChange: every change a run reports is passed
// to AuditChange at once and listed in the result; an audit failure is
// returned to the job and fails the run even when the job ignores it, and
// nothing reported after it is accepted (fail closed).
func TestReportChangeAuditsEachChange(t *testing.T) {
	tests := []struct {
		name        string
		failAt      int
		ignore      bool // the job carries on after a ReportChange error
		wantAudited int
		wantChanges int
		wantErr     error
	}{
		{"all audited", 0, false, 3, 3, nil},
		{"audit fails, job stops", 2, false, 2, 2, jobs.ErrAudit},
		{"audit fails, job ignores it", 2, true, 2, 2, jobs.ErrAudit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &changeSink{failAt: tc.failAt}
			var refused atomic.Int32
			reg := prometheus.NewRegistry()
			s, err := jobs.New(jobs.Config{AuditChange: sink.hook, Registry: reg}, nil, jobs.Job{Name: "rotate", Schedule: "@hourly",
				Run: func(ctx context.Context) (int, error) {
					n := 0
					for i := 1; i <= 3; i++ {
						n++ // the change is made, then reported
						if err := jobs.ReportChange(ctx, jobs.Change{Key: fmt.Sprintf("k%d", i), Field: jobs.FieldPrimaryVersion, Old: "1", New: "2"}); err != nil {
							refused.Add(1)
							if !tc.ignore {
								return n, err
							}
						}
					}
					return n, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.RunNow(context.Background(), "rotate")
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) || !errors.Is(res.Err, tc.wantErr) {
				t.Fatalf("RunNow: %v (result %v), want %v", err, res.Err, tc.wantErr)
			}
			if len(sink.got) != tc.wantAudited || len(res.Changes) != tc.wantChanges {
				t.Fatalf("audited %+v, result changes %+v", sink.got, res.Changes)
			}
			for i, c := range res.Changes {
				if c.Key != fmt.Sprintf("k%d", i+1) || c != sink.got[i] {
					t.Fatalf("change %d: %+v (audited %+v)", i, c, sink.got[i])
				}
			}
			if tc.ignore && refused.Load() != 2 {
				t.Fatalf("%d reports refused after the audit failure, want 2", refused.Load())
			}
			wantOutcome := jobs.OutcomeOK
			if tc.wantErr != nil {
				wantOutcome = jobs.OutcomeError
			}
			if jobs.Outcome(res.Err) != wantOutcome || metric(t, reg, "kms_jobs_runs_total", "rotate", "outcome", wantOutcome) != 1 {
				t.Fatalf("outcome %s, want %s counted once", jobs.Outcome(res.Err), wantOutcome)
			}
		})
	}
	if err := jobs.ReportChange(context.Background(), jobs.Change{Key: "k"}); !errors.Is(err, jobs.ErrNotInRun) {
		t.Fatalf("ReportChange outside a run: %v", err)
	}
}

// TestTryRunNowRefusesWhileRunning: while a run holds a job, TryRunNow on
// the same scheduler fails at once with ErrRunning and on another
// scheduler sharing the database with ErrLeaseHeld; States shows the job
// running under the first holder. After the run both can run it again.
func TestTryRunNowRefusesWhileRunning(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		st := newStore(t, db)
		started, release := make(chan struct{}), make(chan struct{})
		var block atomic.Bool
		j := jobs.Job{Name: "long", Schedule: "@daily", Run: func(ctx context.Context) (int, error) {
			if block.Load() {
				close(started)
				<-release
			}
			return 1, nil
		}}
		one, two := newScheduler(t, st, "one", j), newScheduler(t, st, "two", j)
		block.Store(true)
		done := make(chan error, 1)
		go func() { _, err := one.RunNow(context.Background(), "long"); done <- err }()
		<-started
		for name, tc := range map[string]struct {
			s    *jobs.Scheduler
			want error
		}{"same scheduler": {one, jobs.ErrRunning}, "other scheduler": {two, jobs.ErrLeaseHeld}} {
			begin := time.Now()
			res, err := tc.s.TryRunNow(context.Background(), "long")
			if !errors.Is(err, tc.want) || !res.Skipped || time.Since(begin) > 5*time.Second {
				t.Fatalf("%s: TryRunNow = %+v, %v; want %v at once", name, res, err, tc.want)
			}
			states, err := tc.s.States(context.Background())
			if err != nil || len(states) != 1 || !states[0].Running || states[0].Holder != "one" {
				t.Fatalf("%s: States while running: %+v, %v", name, states, err)
			}
		}
		if _, err := two.TryRunNow(context.Background(), "missing"); !errors.Is(err, jobs.ErrUnknownJob) {
			t.Fatalf("unknown job: %v", err)
		}
		block.Store(false)
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for _, s := range []*jobs.Scheduler{two, one} {
			if res, err := s.TryRunNow(context.Background(), "long"); err != nil || res.Items != 1 {
				t.Fatalf("after the run: %+v, %v", res, err)
			}
		}
		states, err := one.States(context.Background())
		if err != nil || states[0].Running || states[0].Runs != 3 || states[0].LastRunHolder != "one" {
			t.Fatalf("States after: %+v, %v", states, err)
		}
	})
}

// TestPanickingJobRunsAgainAtNextTickWithStore: with a Store (the lease
// path kmsd uses), a scheduled run that panics is recorded as "panic",
// frees its lease and the job runs again at its next tick, on every
// dialect; the metrics count the panic and the later successes by outcome.
func TestPanickingJobRunsAgainAtNextTickWithStore(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		st := newStore(t, db)
		reg := prometheus.NewRegistry()
		var calls atomic.Int32
		s, err := jobs.New(jobs.Config{Store: st, Holder: "me", LeaseTTL: 3 * time.Second, Registry: reg}, nil,
			jobs.Job{Name: "flaky", Schedule: fast, Run: func(context.Context) (int, error) {
				if calls.Add(1) == 1 {
					panic("boom")
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
		waitFor(t, 10*time.Second, "a run after the panic", func() bool {
			row, err := st.Get(context.Background(), "flaky")
			return err == nil && calls.Load() >= 2 && row.LastOutcome == jobs.OutcomeOK && row.Runs >= 2
		})
		// The metrics are updated right after the outcome is persisted.
		waitFor(t, 5*time.Second, "the successful run to be counted", func() bool {
			return metric(t, reg, "kms_jobs_runs_total", "flaky", "outcome", jobs.OutcomeOK) >= 1 &&
				metric(t, reg, "kms_jobs_duration_seconds", "flaky") >= 2
		})
		if v := metric(t, reg, "kms_jobs_runs_total", "flaky", "outcome", jobs.OutcomePanic); v != 1 {
			t.Fatalf("panic runs %v, want 1", v)
		}
	})
}
