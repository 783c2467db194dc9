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
	// ErrStopped reports a Start after Stop.
	ErrStopped = errors.New("jobs: scheduler stopped")
)
