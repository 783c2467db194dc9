// Package jobs runs kmsd's scheduled key maintenance with
// github.com/robfig/cron/v3: destroying keys whose deletion window has
// ended (kms.Service.DestroyDueKeys), rotating keys whose rotation policy is
// due (RotateDueKeys) and removing orphaned HSM objects (CleanupOrphans).
//
// Schedules are cron specs evaluated in UTC (standard five-field specs or
// descriptors such as "@every 5m"; "@every" below one second rounds up to
// one second). A time-zone prefix (TZ=, CRON_TZ=) is refused so that a DST
// jump can never skip a run. cron does not catch up runs missed while the
// process was down, so Start also runs every job once immediately.
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
// failed), updates Prometheus counters when Config.Registry is set, and
// when a run changed something calls Config.Audit (kmsd records one audit
// record per run: action AuditAction, reason the job name, the count in the
// details).
//
// Several replicas: the kms operations are compare-and-swap and idempotent,
// so running the scheduler on every replica is correct; it is merely
// redundant work (each replica scans for due keys, and at most one of them
// wins each state change). A lease that elects a single runner is not
// implemented here; disable the jobs on all but some replicas (kmsd:
// jobs.enabled: false) if the extra scans matter.
package jobs
