package kmsclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// The wire types of the jobs routes (starter/kmsapi).
type (
	// JobInfo is one scheduled job of kmsd with its last and next run.
	JobInfo = kmsapi.JobInfo
	// JobRun is the result of a run started by RunJob.
	JobRun = kmsapi.JobRun
	// JobChange is one key a job run changed.
	JobChange = kmsapi.JobChange
)

// Job outcomes (JobInfo.LastOutcome, JobRun.Outcome).
const (
	JobOutcomeOK    = kmsapi.JobOutcomeOK
	JobOutcomeError = kmsapi.JobOutcomeError
	JobOutcomePanic = kmsapi.JobOutcomePanic
	JobOutcomeLost  = kmsapi.JobOutcomeLost
)

// ListJobs returns the scheduled jobs of the kmsd replica that answers
// (permission kms:ListJobs): schedule, last run, next run, outcome, lease.
func (c *Client) ListJobs(ctx context.Context) ([]JobInfo, error) {
	var out kmsapi.ListJobsResponse
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/jobs", out: &out}); err != nil {
		return nil, err
	}
	return out.Jobs, nil
}

// RunJob runs the named job now (permission kms:RunJob) and waits for its
// result. The wait is bounded by ctx only, not by Config.Timeout, and the
// call is never retried. A job that runs already (on any replica) fails
// with ErrJobRunning, an unknown job with ErrNotFound; a run that failed
// is a JobRun whose Outcome is not JobOutcomeOK.
func (c *Client) RunJob(ctx context.Context, name string) (*JobRun, error) {
	if name == "" {
		return nil, ErrInvalidArgument
	}
	var out JobRun
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/jobs/" + url.PathEscape(name) + "/run", out: &out, long: true}); err != nil {
		return nil, err
	}
	return &out, nil
}
