// Package jobs runs kmsd's scheduled key maintenance with
// github.com/robfig/cron/v3: destroying keys whose deletion window has
// ended (kms.Service.DestroyDueKeys), rotating keys whose rotation policy is
// due (RotateDueKeys) and removing orphaned HSM objects (CleanupOrphans).
//
// Schedules are cron specs evaluated in UTC (standard five-field specs or
// descriptors such as "@every 5m"; "@every" below one second rounds up to
// one second). A time-zone prefix (TZ=, CRON_TZ=) is refused so that a DST
// jump can never skip a run. cron does not catch up runs missed while the
// process was down, so Start also runs every job once immediately (with a
// Store: every job that is due, once across all schedulers).
//
// Each job is wrapped as cron.NewChain(SkipIfStillRunning, Recover), the
// per-job equivalent of cron.WithChain: the first wrapper is the
// outermost, so a run that panics is recovered inside
// the skip guard (in cron v3.0.1 a panic escaping SkipIfStillRunning would
// disable the job for good) and the job runs again at its next tick, while
// a run that is still going makes the next tick a counted skip instead of an
// overlapping run. RunNow runs a job on demand, serialized with its
// scheduled runs.
//
// Every run logs one structured line (job, items, duration; Info when it
// changed something, Debug when there was nothing to do, Error when it
// failed), updates Prometheus metrics when Config.Registry is set (runs by
// outcome, duration, items, last success), and when a run changed
// something calls Config.Audit. A job reports each item it changes with
// ReportChange, which calls Config.AuditChange right away: kmsd writes one
// audit record per key a maintenance job changes (action AuditAction, the
// key id, the old and new state or primary version), and a record that
// cannot be written fails the run and stops it (fail closed). TryRunNow is
// RunNow that answers ErrRunning or ErrLeaseHeld at once instead of
// waiting (kmsd's POST /v1/jobs/:name/run).
//
// Several replicas or application instances: give every scheduler the same
// Store (Config.Store, a kmsgo_jobs table in the shared database). A
// scheduled run first claims its period by compare-and-swap on the job's
// row (NextRunMS moves past now in the same UPDATE), so each period runs on
// exactly one scheduler; the winner holds a lease it renews every
// LeaseTTL/3, and a runner that dies frees the job within LeaseTTL, when the
// next scheduler to look takes it over at once and resumes from the cursor
// the dead run saved (Cursor, SaveCursor). On-demand runs (RunNow) need the
// lease only and get ErrLeaseHeld while another runner has the job. The
// last run's start, end, outcome, item count and error, and the next due
// time, are persisted (Store.List, Scheduler.States), so a run missed while
// no scheduler was up is caught up exactly once at the next Start. Times
// come from each scheduler's clock: keep replicas' clocks within a small
// fraction of the shortest schedule.
//
// Without a Store every scheduler runs every job: the kms operations are
// compare-and-swap and idempotent, so that is correct but redundant.
package jobs
