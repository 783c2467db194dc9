package jobs

import "errors"

var (
	// ErrInvalidSchedule reports a cron spec that does not parse or that
	// names a time zone (schedules are always UTC).
	ErrInvalidSchedule = errors.New("jobs: invalid schedule")
	// ErrInvalidJob reports a job without a name or a Run function, or two
	// jobs with one name.
	ErrInvalidJob = errors.New("jobs: invalid job")
	// ErrUnknownJob reports a RunNow for a name the scheduler does not have.
	ErrUnknownJob = errors.New("jobs: unknown job")
	// ErrPanic is the error of a run that panicked (the panic is recovered
	// and logged with its stack).
	ErrPanic = errors.New("jobs: job panicked")
	// ErrAudit reports that a run changed keys but its audit record could
	// not be written.
	ErrAudit = errors.New("jobs: audit record failed")
	// ErrLeaseHeld reports an on-demand run of a job that another runner
	// (replica or application instance) is running now.
	ErrLeaseHeld = errors.New("jobs: job is running elsewhere")
	// ErrLeaseLost reports a run whose lease expired or was taken over
	// (the database was unreachable longer than the lease); its context is
	// cancelled and the next runner resumes from the saved cursor.
	ErrLeaseLost = errors.New("jobs: lease lost")
	// ErrRunning reports a TryRunNow of a job that this scheduler is
	// running now.
	ErrRunning = errors.New("jobs: job is running")
	// ErrNotInRun reports a ReportChange outside a job run.
	ErrNotInRun = errors.New("jobs: not called from a job run")
	// ErrNoStore reports a cursor call outside a run with a Store.
	ErrNoStore = errors.New("jobs: no job store in this run")
	// ErrStopped reports a Start after Stop.
	ErrStopped = errors.New("jobs: scheduler stopped")
)
