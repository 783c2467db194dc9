package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
)

// Names of the maintenance jobs (also the audit reason and metric label).
const (
	JobDestroyDueKeys = "destroy_due_keys"
	JobRotateDueKeys  = "rotate_due_keys"
	JobCleanupOrphans = "cleanup_orphans"
)

// AuditAction is the audit action of scheduled maintenance records.
const AuditAction = "kms:ScheduledMaintenance"

// Defaults for empty Config fields.
const (
	DefaultDestroySchedule = "@every 1m"
	DefaultRotateSchedule  = "@every 5m"
	DefaultOrphanSchedule  = "@every 15m"
	DefaultTimeout         = 10 * time.Minute
	DefaultLeaseTTL        = 30 * time.Second
	// auditTimeout bounds writing the audit record of a run; it is not
	// cut short by Stop, since the keys have already changed.
	auditTimeout = 10 * time.Second
)

// Maintainer is the key maintenance a scheduler drives; *kms.Service
// implements it. Each method returns how many items it changed and must be
// safe to run concurrently with itself on other replicas.
type Maintainer interface {
	DestroyDueKeys(ctx context.Context) (int, error)
	RotateDueKeys(ctx context.Context) (int, error)
	CleanupOrphans(ctx context.Context) (int, error)
}

// Job is one scheduled task. Run returns how many items it changed.
type Job struct {
	Name     string
	Schedule string // cron spec, UTC
	Run      func(ctx context.Context) (int, error)
}

// Result is the outcome of one run.
type Result struct {
	Job      string
	Started  time.Time // UTC
	Duration time.Duration
	Items    int   // items changed (keys destroyed or rotated, objects removed)
	Err      error // nil on success; wraps ErrPanic or ErrAudit when those happened
	// Changes are the items the run reported with ReportChange (at most
	// MaxResultChanges; kmsd's maintenance reports every key it changed).
	Changes []Change
	// Skipped is set when, with a Store, the run did not happen because the
	// job was not due or another runner held it.
	Skipped bool
}

// Config configures a Scheduler. Every field is optional.
type Config struct {
	// Schedules of the maintenance jobs (cron specs, UTC); empty means the
	// Default*Schedule constant.
	DestroySchedule string
	RotateSchedule  string
	OrphanSchedule  string
	// Timeout bounds one run (default DefaultTimeout), so that a hung HSM
	// or database call cannot make every later tick a skip.
	Timeout time.Duration
	// Logger receives one line per run (default: discarded).
	Logger *slog.Logger
	// Registry, when set, receives the kms_jobs_* metrics.
	Registry prometheus.Registerer
	// Audit, when set, is called after each run that changed something
	// (Items > 0), with the changes it reported. Its error is logged and
	// counted as a failed run.
	Audit func(ctx context.Context, r Result) error
	// AuditChange, when set, is called by ReportChange for each change as
	// the job makes it (one audit record per key). Its error fails the run
	// (ErrAudit) and is returned to the job so that it stops.
	AuditChange func(ctx context.Context, job string, c Change) error
	// Store, when set, makes each job run once per period across every
	// scheduler sharing its database (replicas, application instances):
	// a run first takes the job's lease by compare-and-swap, the outcome,
	// counts and next due time are persisted, and a run missed while no
	// scheduler was up is caught up once at the next Start.
	Store *Store
	// Holder names this scheduler in leases (default: host name, process
	// id and a random suffix).
	Holder string
	// LeaseTTL is how long a lease lasts without renewal (default
	// DefaultLeaseTTL); a running job renews it every LeaseTTL/3, so a
	// runner that dies frees its jobs within LeaseTTL.
	LeaseTTL time.Duration
}

// Validate checks the schedules and the timeout.
func (c Config) Validate() error {
	for _, s := range []struct{ name, spec string }{
		{"destroy", c.DestroySchedule}, {"rotate", c.RotateSchedule}, {"orphan", c.OrphanSchedule},
	} {
		if s.spec == "" {
			continue
		}
		if _, err := parseSchedule(s.spec); err != nil {
			return fmt.Errorf("%s schedule: %w", s.name, err)
		}
	}
	if c.Timeout < 0 || c.LeaseTTL < 0 {
		return fmt.Errorf("%w: negative timeout or lease", ErrInvalidJob)
	}
	return nil
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseSchedule parses a standard cron spec or descriptor. Time-zone
// prefixes are refused: schedules run in UTC.
func parseSchedule(spec string) (_ cron.Schedule, err error) {
	s := strings.TrimSpace(spec)
	if s == "" || strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return nil, fmt.Errorf("%w: %q (time zones are not allowed; schedules run in UTC)", ErrInvalidSchedule, spec)
	}
	defer func() {
		if r := recover(); r != nil { // defensive: never let a bad spec crash kmsd
			err = fmt.Errorf("%w: %q", ErrInvalidSchedule, spec)
		}
	}()
	if d, ok := strings.CutPrefix(s, "@every "); ok {
		if every, err := time.ParseDuration(strings.TrimSpace(d)); err == nil && every <= 0 {
			return nil, fmt.Errorf("%w: %q: the interval must be positive", ErrInvalidSchedule, spec)
		}
	}
	sch, err := parser.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidSchedule, spec, err)
	}
	return sch, nil
}

// Scheduler runs jobs on their schedules. Create it with New, then Start
// and Stop it once.
type Scheduler struct {
	cfg     Config
	log     *slog.Logger
	cron    *cron.Cron
	jobs    map[string]*job
	order   []*job
	metrics *metrics

	mu      sync.Mutex
	state   int // 0 new, 1 started, 2 stopped
	ctx     context.Context
	cancel  context.CancelFunc
	catchUp sync.WaitGroup
}

type job struct {
	Job
	sched   cron.Schedule
	mu      sync.Mutex // serializes RunNow with scheduled runs
	running atomic.Bool
	wrapped cron.Job // SkipIfStillRunning(Recover(scheduled run))
}

// New builds a scheduler for m's three maintenance jobs (when m is not nil)
// plus extra jobs. It does not start anything.
func New(cfg Config, m Maintainer, extra ...Job) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Holder == "" {
		cfg.Holder = defaultHolder()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var all []Job
	if m != nil {
		all = append(all,
			Job{Name: JobDestroyDueKeys, Schedule: or(cfg.DestroySchedule, DefaultDestroySchedule), Run: m.DestroyDueKeys},
			Job{Name: JobRotateDueKeys, Schedule: or(cfg.RotateSchedule, DefaultRotateSchedule), Run: m.RotateDueKeys},
			Job{Name: JobCleanupOrphans, Schedule: or(cfg.OrphanSchedule, DefaultOrphanSchedule), Run: m.CleanupOrphans},
		)
	}
	all = append(all, extra...)

	ctx, cancel := context.WithCancel(context.Background())
	s := &Scheduler{
		cfg: cfg, log: log, jobs: map[string]*job{}, ctx: ctx, cancel: cancel,
		cron: cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cronLogger{log: log})),
	}
	var names []string
	for _, j := range all {
		if j.Name == "" || j.Run == nil {
			cancel()
			return nil, fmt.Errorf("%w: a job needs a name and a Run function", ErrInvalidJob)
		}
		if _, dup := s.jobs[j.Name]; dup {
			cancel()
			return nil, fmt.Errorf("%w: duplicate job %q", ErrInvalidJob, j.Name)
		}
		sch, err := parseSchedule(j.Schedule)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("job %s: %w", j.Name, err)
		}
		jj := &job{Job: j, sched: sch}
		l := cronLogger{log: log, job: j.Name, s: s}
		// First wrapper = outermost: Recover must be inside the skip guard.
		jj.wrapped = cron.NewChain(cron.SkipIfStillRunning(l), cron.Recover(l)).Then(cron.FuncJob(func() {
			if s.ctx.Err() != nil {
				return // stopping
			}
			s.run(s.ctx, jj, true)
		}))
		s.cron.Schedule(sch, jj.wrapped)
		s.jobs[j.Name] = jj
		s.order = append(s.order, jj)
		names = append(names, j.Name)
	}
	if cfg.Registry != nil {
		mt, err := newMetrics(cfg.Registry, names)
		if err != nil {
			cancel()
			return nil, err
		}
		s.metrics = mt
	}
	return s, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Jobs returns the job names in the order they were added.
func (s *Scheduler) Jobs() []string {
	out := make([]string, len(s.order))
	for i, j := range s.order {
		out[i] = j.Name
	}
	return out
}

// Start starts the schedules and runs every job once now in the
// background (catch-up: cron does not run ticks missed while kmsd was
// down). A second Start is a no-op; Start after Stop returns ErrStopped.
func (s *Scheduler) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case 1:
		return nil
	case 2:
		return ErrStopped
	}
	s.state = 1
	for _, j := range s.order {
		s.catchUp.Add(1)
		go func(j *job) {
			defer s.catchUp.Done()
			j.wrapped.Run()
		}(j)
	}
	s.cron.Start()
	s.log.Info("maintenance jobs started", "jobs", s.Jobs())
	return nil
}

// Stop stops the schedules, cancels the context of running jobs and waits
// for them to return, or for ctx to end (then it returns ctx's error). It
// is safe to call more than once and without Start.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	wasRunning := s.state == 1
	s.state = 2
	s.mu.Unlock()

	stopped := s.cron.Stop() // no new ticks; done when cron's runs return
	s.cancel()
	done := make(chan struct{})
	go func() {
		<-stopped.Done()
		s.catchUp.Wait()
		close(done)
	}()
	select {
	case <-done:
		if wasRunning {
			s.log.Info("maintenance jobs stopped")
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jobs: stop: %w", ctx.Err())
	}
}

// RunNow runs the named job now, under ctx, and returns its result; it
// waits for a scheduled run of the same job to finish first. A panic is
// recovered and returned as ErrPanic. The returned error is ErrUnknownJob
// or Result.Err.
func (s *Scheduler) RunNow(ctx context.Context, name string) (res Result, err error) {
	j, ok := s.jobs[name]
	if !ok {
		return Result{}, fmt.Errorf("%w: %q", ErrUnknownJob, name)
	}
	defer func() {
		if r := recover(); r != nil {
			res = Result{Job: name, Err: fmt.Errorf("%w: %v", ErrPanic, r)}
			err = res.Err
		}
	}()
	res = s.run(ctx, j, false)
	if res.Skipped {
		return res, fmt.Errorf("%w: %q", ErrLeaseHeld, name)
	}
	return res, res.Err
}

// TryRunNow is RunNow for callers that must not wait: when this scheduler
// is running the job it returns ErrRunning at once, and when another
// runner holds the job's lease ErrLeaseHeld (both with Result.Skipped).
func (s *Scheduler) TryRunNow(ctx context.Context, name string) (res Result, err error) {
	j, ok := s.jobs[name]
	if !ok {
		return Result{}, fmt.Errorf("%w: %q", ErrUnknownJob, name)
	}
	if !j.mu.TryLock() {
		return Result{Job: name, Skipped: true}, fmt.Errorf("%w: %q", ErrRunning, name)
	}
	defer func() {
		if r := recover(); r != nil {
			res = Result{Job: name, Err: fmt.Errorf("%w: %v", ErrPanic, r)}
			err = res.Err
		}
	}()
	res = s.runLocked(ctx, j, false)
	if res.Skipped {
		return res, fmt.Errorf("%w: %q", ErrLeaseHeld, name)
	}
	return res, res.Err
}

// run executes one run of j: bounded by the timeout, under the job's
// lease when a Store is set, logged, counted, audited and persisted.
// scheduled runs claim the period; on-demand runs only the lease. A panic in
// j.Run is recorded here and then propagates (to cron.Recover, or to
// RunNow).
func (s *Scheduler) run(ctx context.Context, j *job, scheduled bool) Result {
	j.mu.Lock()
	return s.runLocked(ctx, j, scheduled)
}

// runLocked is run with j.mu held; it unlocks it.
func (s *Scheduler) runLocked(ctx context.Context, j *job, scheduled bool) Result {
	defer j.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	res := Result{Job: j.Name, Started: start.UTC()}

	var lease *runLease
	if st := s.cfg.Store; st != nil {
		row, ok, err := st.claim(ctx, j.Name, s.cfg.Holder, start, s.cfg.LeaseTTL, scheduled, j.sched.Next(start))
		if err != nil {
			res.Err, res.Duration = err, time.Since(start)
			s.record(res)
			return res
		}
		if !ok {
			res.Skipped = true
			s.log.Debug("job not run: not due or running elsewhere", "job", j.Name, "holder", row.Holder)
			return res
		}
		lease = &runLease{store: st, job: j.Name, holder: s.cfg.Holder, state: row, sched: scheduled}
		ctx = context.WithValue(ctx, leaseKey{}, lease)
		stopRenew := s.renewLease(ctx, cancel, lease)
		defer stopRenew()
	}

	rs := &runState{s: s, job: j.Name}
	ctx = context.WithValue(ctx, runKey{}, rs)
	j.running.Store(true)
	defer j.running.Store(false)
	if s.metrics != nil {
		s.metrics.running.WithLabelValues(j.Name).Set(1)
		defer s.metrics.running.WithLabelValues(j.Name).Set(0)
	}
	finished := false
	defer func() {
		if !finished { // panicking: record, then let the panic go on
			res.Duration = time.Since(start)
			res.Err = ErrPanic
			rs.collect(&res)
			s.finish(lease, res)
			s.record(res)
		}
	}()
	n, err := j.Run(ctx)
	finished = true
	if lease != nil && lease.lost.Load() {
		err = errors.Join(err, fmt.Errorf("%w: %s", ErrLeaseLost, j.Name))
	}
	res.Items, res.Err, res.Duration = n, err, time.Since(start)
	rs.collect(&res)
	if n > 0 && s.cfg.Audit != nil {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
		if aerr := s.cfg.Audit(actx, res); aerr != nil {
			res.Err = errors.Join(res.Err, fmt.Errorf("%w: %w", ErrAudit, aerr))
		}
		acancel()
	}
	s.finish(lease, res)
	s.record(res)
	return res
}

// finish persists the outcome of a leased run and frees the lease.
func (s *Scheduler) finish(l *runLease, r Result) {
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	if err := l.store.finish(ctx, l.job, l.holder, r, time.Now()); err != nil {
		s.log.Error("job outcome not recorded", "job", l.job, "err", err)
	}
}

// renewLease extends l every LeaseTTL/3 until the returned stop is called;
// when the lease is lost it cancels the run.
func (s *Scheduler) renewLease(ctx context.Context, cancel context.CancelFunc, l *runLease) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.LeaseTTL/3)
				ok, err := l.store.renew(rctx, l.job, l.holder, time.Now().Add(s.cfg.LeaseTTL))
				rcancel()
				if err == nil && !ok {
					l.lost.Store(true)
					s.log.Error("job lease lost; cancelling the run", "job", l.job)
					cancel()
					return
				}
				if err != nil {
					s.log.Warn("job lease not renewed", "job", l.job, "err", err)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// States returns the persisted state of this scheduler's jobs, in order,
// with each job's schedule; ErrNoStore without a Store.
func (s *Scheduler) States(ctx context.Context) ([]JobState, error) {
	if s.cfg.Store == nil {
		return nil, ErrNoStore
	}
	out := make([]JobState, 0, len(s.order))
	for _, j := range s.order {
		st, err := s.cfg.Store.Get(ctx, j.Name)
		if errors.Is(err, ErrUnknownJob) {
			st = State{Job: j.Name}
		} else if err != nil {
			return nil, err
		}
		now := time.Now().UnixMilli()
		running := j.running.Load() || (st.Holder != "" && st.LeaseUntilMS >= now)
		out = append(out, JobState{State: st, Schedule: j.Schedule, Running: running})
	}
	return out, nil
}

// JobState is a job's persisted state with its schedule.
type JobState struct {
	State
	Schedule string
	// Running is set while this scheduler runs the job or another runner
	// holds its unexpired lease.
	Running bool
}

// record logs r and updates the metrics.
func (s *Scheduler) record(r Result) {
	attrs := []any{"job", r.Job, "items", r.Items, "duration", r.Duration}
	switch {
	case r.Err != nil:
		s.log.Error("maintenance job failed", append(attrs, "err", r.Err)...)
	case r.Items > 0:
		s.log.Info("maintenance job done", attrs...)
	default:
		s.log.Debug("maintenance job done", attrs...)
	}
	if s.metrics != nil {
		s.metrics.observe(r)
	}
}

// cronLogger adapts slog to cron.Logger. cron's routine messages go to
// Debug; a skip (previous run still going) is counted and logged at Info;
// a recovered panic is logged at Error with its stack.
type cronLogger struct {
	log *slog.Logger
	job string
	s   *Scheduler
}

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" && l.s != nil {
		l.log.Info("maintenance job skipped: previous run still running", "job", l.job)
		if l.s.metrics != nil {
			l.s.metrics.skipped.WithLabelValues(l.job).Inc()
		}
		return
	}
	l.log.Debug("cron "+msg, kv...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	if msg == "panic" {
		l.log.Error("maintenance job panicked (recovered)", append([]any{"job", l.job, "err", err}, kv...)...)
		return
	}
	l.log.Error("cron "+msg, append([]any{"job", l.job, "err", err}, kv...)...)
}
