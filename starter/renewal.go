package starter

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/ormplugin"
)

// RenewalJob is the name of the database renewal job in the kmsgo_jobs
// table and in the scheduler's logs.
const RenewalJob = ormplugin.RenewalJob

// Defaults of the renewal settings.
const (
	DefaultRenewalTimeout  = time.Hour
	DefaultRenewalLeaseTTL = jobs.DefaultLeaseTTL
	// renewalIdle is the schedule of a renewal job that only runs on
	// demand (RunRenewal): the scheduler is never started.
	renewalIdle = "@every 8760h"
	// renewalLogEvery bounds how often a running renewal logs progress.
	renewalLogEvery = 10 * time.Second
)

// RenewalSettings configure the database renewal job (ormplugin.Renew):
// after a master key rotation it re-wraps the stored data keys under the
// primary version and, in mode reencrypt, re-encrypts the values of the
// models registered with WithRenewalModels.
type RenewalSettings struct {
	// Schedule is a cron spec in UTC ("@every 24h", "0 3 * * *"). Empty:
	// no scheduled run (App.RunRenewal still runs it on demand).
	Schedule string `koanf:"schedule"`
	// Mode is "rewrap" (default: only keys change) or "reencrypt".
	Mode string `koanf:"mode"`
	// BatchSize is the number of rows per batch and transaction (0: 500).
	BatchSize int `koanf:"batch_size"`
	// Tables restricts re-encryption to the models with these table
	// names; empty: every model given to WithRenewalModels.
	Tables []string `koanf:"tables"`
	// OlderThanVersion re-encrypts only values whose data key was
	// generated under a master key version below it (0: all values).
	OlderThanVersion int `koanf:"older_than_version"`
	// KeepKeys keeps data key rows no value references any more.
	KeepKeys bool `koanf:"keep_keys"`
	// Timeout bounds one run; LeaseTTL is how long a dead runner holds the
	// job before another instance takes it over and resumes.
	Timeout  time.Duration `koanf:"timeout"`
	LeaseTTL time.Duration `koanf:"lease_ttl"`
}

// WithRenewalModels registers the GORM models whose encrypted columns the
// renewal job re-encrypts (mode reencrypt), e.g.
// starter.WithRenewalModels(&User{}, &Order{}). database.renewal.tables
// may restrict them by table name.
func WithRenewalModels(models ...any) Option {
	return func(o *options) { o.renewModels = append(o.renewModels, models...) }
}

func (r RenewalSettings) validate(d DatabaseSettings) error {
	bad := func(path, why string) error { return fmt.Errorf("%w: database.renewal.%s: %s", ErrConfig, path, why) }
	if r.Schedule != "" {
		if d.Driver == "" || d.ORM.KeyID == "" {
			return bad("schedule", "needs database.driver and database.orm.key_id")
		}
		if _, err := jobs.New(jobs.Config{}, nil, jobs.Job{Name: "x", Schedule: r.Schedule, Run: func(context.Context) (int, error) { return 0, nil }}); err != nil {
			return bad("schedule", err.Error())
		}
	}
	switch r.Mode {
	case "", ormplugin.RenewRewrap, ormplugin.RenewReencrypt:
	default:
		return bad("mode", "rewrap or reencrypt")
	}
	if r.BatchSize < 0 || r.OlderThanVersion < 0 || r.Timeout < 0 || r.LeaseTTL < 0 {
		return bad("batch_size", "batch_size, older_than_version, timeout and lease_ttl must not be negative")
	}
	return nil
}

// renewal is the App's database renewal job.
type renewal struct {
	app    *App
	set    RenewalSettings
	models []any
	sched  *jobs.Scheduler

	mu   sync.Mutex
	last ormplugin.RenewalReport
}

// newRenewal checks the models against the settings and builds the job
// on a jobs.Store lease in the app's database. It does not start it.
func newRenewal(a *App, models []any) (*renewal, error) {
	set := a.set.Database.Renewal
	if set.Mode == "" {
		set.Mode = ormplugin.RenewRewrap
	}
	if set.Timeout == 0 {
		set.Timeout = DefaultRenewalTimeout
	}
	if set.LeaseTTL == 0 {
		set.LeaseTTL = DefaultRenewalLeaseTTL
	}
	if a.db == nil || a.db.plugin == nil {
		return nil, fmt.Errorf("%w: database.renewal needs database.driver and database.orm.key_id", ErrConfig)
	}
	r := &renewal{app: a, set: set}
	if set.Mode == ormplugin.RenewReencrypt {
		byTable := map[string]any{}
		var order []string
		for _, m := range models {
			stmt := &gorm.Statement{DB: a.db.gdb}
			if err := stmt.Parse(m); err != nil {
				return nil, fmt.Errorf("%w: WithRenewalModels: %T: %v", ErrConfig, m, err)
			}
			byTable[stmt.Schema.Table] = m
			order = append(order, stmt.Schema.Table)
		}
		tables := set.Tables
		if len(tables) == 0 {
			tables = order
		}
		for _, t := range tables {
			m, ok := byTable[t]
			if !ok {
				return nil, fmt.Errorf("%w: database.renewal.tables: %q is not a model given to starter.WithRenewalModels", ErrConfig, t)
			}
			r.models = append(r.models, m)
		}
		if len(r.models) == 0 {
			return nil, fmt.Errorf("%w: database.renewal.mode reencrypt needs models (starter.WithRenewalModels)", ErrConfig)
		}
		if err := a.db.plugin.Validate(r.models...); err != nil {
			return nil, err
		}
	}
	store, err := jobs.NewStore(a.db.gdb)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDatabase, err)
	}
	schedule := set.Schedule
	if schedule == "" {
		schedule = renewalIdle
	}
	r.sched, err = jobs.New(jobs.Config{
		Store: store, LeaseTTL: set.LeaseTTL, Timeout: set.Timeout,
		Logger: a.log.With("component", "renewal"),
	}, nil, jobs.Job{Name: RenewalJob, Schedule: schedule, Run: r.run})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return r, nil
}

// run is one renewal, resumed from the cursor of a run that did not
// finish; it returns the number of keys and values renewed.
func (r *renewal) run(ctx context.Context) (int, error) {
	log := r.app.log.With("job", RenewalJob)
	var lastLog time.Time
	opts := ormplugin.RenewalOptions{
		Mode: r.set.Mode, Models: r.models, BatchSize: r.set.BatchSize,
		OlderThanVersion: r.set.OlderThanVersion, KeepKeys: r.set.KeepKeys,
		Cursor: jobs.Cursor(ctx), SaveCursor: jobs.SaveCursor,
		Progress: func(p ormplugin.RenewalReport) {
			if time.Since(lastLog) < renewalLogEvery {
				return
			}
			lastLog = time.Now()
			log.Info("renewal progress", "phase", p.Phase, "table", p.Table, "keys_renewed", p.Keys.Renewed,
				"rows", p.Rows, "values_renewed", p.Values.Renewed, "failed", p.Values.Failed)
		},
	}
	if opts.Cursor != "" {
		log.Info("renewal resumes an interrupted run")
	}
	rep, err := r.app.db.plugin.Renew(ctx, r.app.db.gdb, r.app.kms, opts)
	r.mu.Lock()
	r.last = rep
	r.mu.Unlock()
	attrs := []any{"mode", rep.Mode, "resumed", rep.Resumed,
		"keys_scanned", rep.Keys.Scanned, "keys_renewed", rep.Keys.Renewed, "keys_skipped", rep.Keys.Skipped,
		"values_scanned", rep.Values.Scanned, "values_renewed", rep.Values.Renewed, "values_skipped", rep.Values.Skipped,
		"values_failed", rep.Values.Failed, "keys_deleted", rep.KeysDeleted, "kms_calls", rep.KMSCalls}
	if err != nil {
		log.Error("renewal stopped; the next run resumes it", append(attrs, "err", err)...)
	} else {
		log.Info("renewal report", attrs...)
	}
	return int(rep.Keys.Renewed + rep.Values.Renewed), err
}

// RunRenewal runs the database renewal now (database.renewal settings,
// models of WithRenewalModels) and returns its report. It takes the job's
// lease like a scheduled run: with another instance running it, the error
// is jobs.ErrLeaseHeld. An interrupted earlier run is resumed from its
// cursor.
func (a *App) RunRenewal(ctx context.Context) (ormplugin.RenewalReport, error) {
	r, err := a.renewalJob()
	if err != nil {
		return ormplugin.RenewalReport{}, err
	}
	res, err := r.sched.RunNow(ctx, RenewalJob)
	if res.Skipped {
		return ormplugin.RenewalReport{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, err
}

// RenewalState returns the persisted state of the renewal job (last run,
// outcome, next due time, holder of the lease and cursor of an
// unfinished run), shared by every instance on the database.
func (a *App) RenewalState(ctx context.Context) (jobs.JobState, error) {
	r, err := a.renewalJob()
	if err != nil {
		return jobs.JobState{}, err
	}
	st, err := r.sched.States(ctx)
	if err != nil {
		return jobs.JobState{}, err
	}
	return st[0], nil
}

// renewalJob returns the renewal job, building it on first use when it is
// not scheduled.
func (a *App) renewalJob() (*renewal, error) {
	a.renewMu.Lock()
	defer a.renewMu.Unlock()
	if a.closed {
		return nil, ErrClosed
	}
	if a.renew == nil {
		r, err := newRenewal(a, a.renewModels)
		if err != nil {
			return nil, err
		}
		a.renew = r
	}
	return a.renew, nil
}

// stopRenewal stops the scheduler, cancelling a running renewal (it
// resumes from its cursor at the next run).
func (a *App) stopRenewal() error {
	a.renewMu.Lock()
	a.closed = true
	r := a.renew
	a.renewMu.Unlock()
	if r == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.sched.Stop(ctx); err != nil {
		return fmt.Errorf("starter: stop renewal: %w", err)
	}
	return nil
}
