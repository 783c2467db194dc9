package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// Jobs is kmsd's job scheduler as the API sees it (server/kmsd adapts
// package jobs to it, so this package links no scheduler or database
// code of its own).
type Jobs interface {
	// ListJobs returns every job of this replica with its persisted state.
	ListJobs(ctx context.Context) ([]kmsapi.JobInfo, error)
	// RunJob runs the named job now, through its lease, and waits for it
	// under ctx. It fails with ErrNotFound for an unknown job and with
	// ErrJobRunning when the job is running here or holds its lease
	// elsewhere. A run that failed is a JobRun with its outcome, not an
	// error.
	RunJob(ctx context.Context, name string) (*kmsapi.JobRun, error)
}

var listJobs = op(noKey, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*kmsapi.ListJobsResponse, error) {
	if _, err := query(rc); err != nil {
		return nil, err
	}
	out := &kmsapi.ListJobsResponse{Jobs: []kmsapi.JobInfo{}}
	if rc.srv.opts.Jobs == nil {
		return out, nil // this replica runs no jobs
	}
	js, err := rc.srv.opts.Jobs.ListJobs(rc.ctx)
	if err != nil {
		return nil, err
	}
	if js != nil {
		out.Jobs = js
	}
	return out, nil
})

// runJob runs a job and answers when it ended. The answer may come long
// after the request (a job runs up to jobs.timeout), so the connection's
// write deadline is lifted for it; the run is bounded by the request's
// context and the job's own timeout.
var runJob = op(noKey, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*kmsapi.JobRun, error) {
	name := rc.c.Param("name")
	if err := checkIDParam("job name", name); err != nil {
		return nil, err
	}
	rc.resources = appendUnique(rc.resources, "job/"+sanitize(name, 64))
	if rc.srv.opts.Jobs == nil {
		return nil, fmt.Errorf("%w: this replica runs no jobs (jobs.enabled is false)", ErrNotFound)
	}
	_ = http.NewResponseController(rc.c.Writer).SetWriteDeadline(time.Time{})
	return rc.srv.opts.Jobs.RunJob(rc.ctx, name)
})
