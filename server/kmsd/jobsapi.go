package kmsd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/internal/httpapi"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// reportingKMS is the jobs.Maintainer of kmsd: the key service's
// maintenance, reporting every key it changes to the run (ReportChange),
// which audits each one as it happens (auditChange).
type reportingKMS struct{ svc *kms.Service }

func (m reportingKMS) DestroyDueKeys(ctx context.Context) (int, error) {
	return m.svc.DestroyDueKeysFunc(ctx, reportKeyChange)
}

func (m reportingKMS) RotateDueKeys(ctx context.Context) (int, error) {
	return m.svc.RotateDueKeysFunc(ctx, reportKeyChange)
}

func (m reportingKMS) CleanupOrphans(ctx context.Context) (int, error) {
	return m.svc.CleanupOrphans(ctx) // HSM objects of no key: one record per run
}

// reportKeyChange turns a key change into the run's jobs.Change: a state
// change when the state moved, otherwise a primary version change.
func reportKeyChange(ctx context.Context, c kms.KeyChange) error {
	ch := jobs.Change{Key: c.KeyID, Field: jobs.FieldState, Old: string(c.OldState), New: string(c.NewState)}
	if c.OldState == c.NewState {
		ch = jobs.Change{Key: c.KeyID, Field: jobs.FieldPrimaryVersion,
			Old: strconv.FormatInt(c.OldVersion, 10), New: strconv.FormatInt(c.NewVersion, 10)}
	}
	return jobs.ReportChange(ctx, ch)
}

// auditChange writes one audit record per key a maintenance job changed:
// action jobs.AuditAction, the key id, the job as reason code, and the
// field with its old and new value in the details (the new primary
// version also as the record's key version). Its error fails the run.
func auditChange(l *audit.Logger) func(context.Context, string, jobs.Change) error {
	return func(ctx context.Context, job string, c jobs.Change) error {
		rec := audit.Record{
			Action:     jobs.AuditAction,
			Result:     audit.ResultOK,
			ReasonCode: job,
			KeyID:      clip(c.Key, 191),
			Details: map[string]string{
				"job":   job,
				"field": clip(c.Field, 64),
				"old":   clip(c.Old, 64),
				"new":   clip(c.New, 64),
			},
		}
		if c.Field == jobs.FieldPrimaryVersion {
			rec.KeyVersion, _ = strconv.Atoi(c.New)
		}
		return l.Append(ctx, rec)
	}
}

// jobsAPI serves the /v1/jobs routes from the App's scheduler (nil until
// it started, or when jobs are disabled).
type jobsAPI struct{ a *App }

var _ httpapi.Jobs = jobsAPI{}

func (j jobsAPI) ListJobs(ctx context.Context) ([]kmsapi.JobInfo, error) {
	s := j.a.Jobs
	if s == nil {
		return nil, nil
	}
	states, err := s.States(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	out := make([]kmsapi.JobInfo, 0, len(states))
	for _, st := range states {
		ji := kmsapi.JobInfo{
			Name: st.Job, Schedule: st.Schedule, Running: st.Running,
			NextRun: timePtr(st.NextRun()), LastStart: timePtr(st.LastStart()), LastEnd: timePtr(st.LastEnd()),
			LastOutcome: st.LastOutcome, LastItems: st.LastItems, Runs: st.Runs, LastRunHolder: st.LastRunHolder,
		}
		if st.LastOutcome != "" && st.LastOutcome != jobs.OutcomeOK {
			ji.LastError = publicJobError(st.LastOutcome, st.LastError)
		}
		if st.Holder != "" && st.LeaseUntilMS >= now {
			ji.LeaseHolder, ji.LeaseUntil = st.Holder, timePtr(st.LeaseUntil())
		}
		out = append(out, ji)
	}
	return out, nil
}

func (j jobsAPI) RunJob(ctx context.Context, name string) (*kmsapi.JobRun, error) {
	s := j.a.Jobs
	if s == nil {
		return nil, fmt.Errorf("%w: this replica runs no jobs", httpapi.ErrNotFound)
	}
	res, err := s.TryRunNow(ctx, name)
	switch {
	case errors.Is(err, jobs.ErrUnknownJob):
		return nil, fmt.Errorf("%w: no job named %q", httpapi.ErrNotFound, clip(name, 64))
	case errors.Is(err, jobs.ErrRunning), errors.Is(err, jobs.ErrLeaseHeld):
		return nil, fmt.Errorf("%w: %s", httpapi.ErrJobRunning, name)
	}
	out := &kmsapi.JobRun{Job: res.Job, Started: res.Started, DurationMS: res.Duration.Milliseconds(),
		Outcome: jobs.Outcome(res.Err), Items: res.Items, Changes: make([]kmsapi.JobChange, 0, len(res.Changes))}
	if res.Err != nil {
		out.Error = publicJobError(out.Outcome, res.Err.Error())
	}
	for _, c := range res.Changes {
		out.Changes = append(out.Changes, kmsapi.JobChange{KeyID: c.Key, Field: c.Field, Old: c.Old, New: c.New})
	}
	return out, nil
}

// publicJobError is the text of a failed run shown by the API: printable
// UTF-8 of at most 256 bytes, and for a panic no more than that (the
// panic value and stack are in the log only).
func publicJobError(outcome, msg string) string {
	if outcome == jobs.OutcomePanic {
		return "the job panicked (details in the kmsd log)"
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	return clip(msg, 256)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
