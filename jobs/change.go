package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Change is one item a run changed, reported with ReportChange: for kmsd's
// maintenance a key (Key is its id) whose Field ("state",
// "primary_version") went from Old to New.
type Change struct {
	Key   string
	Field string
	Old   string
	New   string
}

// Fields of the maintenance jobs' changes.
const (
	FieldState          = "state"
	FieldPrimaryVersion = "primary_version"
)

// MaxResultChanges bounds Result.Changes; Result.Items still counts every
// item and every change is still passed to Config.AuditChange.
const MaxResultChanges = 1000

type runKey struct{}

// runState collects what a run reports while it goes.
type runState struct {
	s   *Scheduler
	job string

	mu       sync.Mutex
	changes  []Change
	reported int
	auditErr error // first failed AuditChange
}

// ReportChange records that the running job changed c.Key. With
// Config.AuditChange set it is called now, before ReportChange returns, so
// the change is audited as soon as it is made; when that fails the error
// (wrapping ErrAudit) is returned, the run fails whatever the job returns,
// and the job should stop making changes (fail closed). Outside a run it
// returns ErrNotInRun.
func ReportChange(ctx context.Context, c Change) error {
	rs, _ := ctx.Value(runKey{}).(*runState)
	if rs == nil {
		return ErrNotInRun
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.auditErr != nil { // fail closed: nothing more is accepted
		return rs.auditErr
	}
	rs.reported++
	if len(rs.changes) < MaxResultChanges {
		rs.changes = append(rs.changes, c)
	}
	if f := rs.s.cfg.AuditChange; f != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
		err := f(actx, rs.job, c)
		cancel()
		if err != nil {
			rs.auditErr = fmt.Errorf("%w: %s %s of %s: %w", ErrAudit, rs.job, c.Field, c.Key, err)
			return rs.auditErr
		}
	}
	return nil
}

// collect moves the reported changes and a failed audit into r.
func (rs *runState) collect(r *Result) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r.Changes = rs.changes
	if rs.auditErr != nil && !errors.Is(r.Err, ErrAudit) {
		r.Err = errors.Join(r.Err, rs.auditErr)
	}
}
