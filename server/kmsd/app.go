package kmsd

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/internal/auth"
	"github.com/kmsgo/kmsgo/server/internal/awsapi"
	"github.com/kmsgo/kmsgo/server/internal/httpapi"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

// App is an assembled kmsd: its components and the HTTP handler (Handler),
// which serves the /v1 API and the AWS KMS JSON protocol (POST /).
type App struct {
	Config   config.Config
	DB       *gorm.DB
	HSM      hsm.Backend
	Audit    *audit.Logger
	Registry *prometheus.Registry
	Log      *slog.Logger
	// Jobs runs the scheduled key maintenance; nil when jobs.enabled is
	// false. Open starts it and Close stops it first.
	Jobs *jobs.Scheduler

	kms     *kms.Service
	auth    *auth.Service
	handler *httpapi.Server

	closers  []func() error
	chainKey []byte // for the audit retention job only
}

// Handler is kmsd's HTTP handler: the /v1 API, the AWS KMS JSON protocol
// at POST /, and /healthz, /readyz, /metrics and /openapi.json.
func (a *App) Handler() http.Handler { return a.handler }

func init() {
	// kmsd's own tests and the test helpers under server/ reach the
	// internal services through kmsdinternal; the public API does not
	// expose them.
	kmsdinternal.Of = func(app any) kmsdinternal.Services {
		a := app.(*App)
		return kmsdinternal.Services{KMS: a.kms, Auth: a.auth, Handler: a.handler}
	}
}

// Deps lets a caller supply components it already opened (tests share one
// database between two replicas). Nil fields are opened from the Config,
// and only what Open opened is closed by Close.
type Deps struct {
	DB  *gorm.DB
	HSM hsm.Backend
	// Registry receives metrics; nil creates one with Go and process collectors.
	Registry *prometheus.Registry
	// Extra mounts more authenticated routes on the HTTP handler (see
	// httpapi.Options.Extra), next to the AWS KMS JSON protocol, which
	// has POST /.
	Extra []httpapi.Route
	// Jobs are more jobs for kmsd's scheduler, next to the maintenance
	// jobs (same lease, state, metrics and /v1/jobs routes); ignored when
	// jobs.enabled is false.
	Jobs []jobs.Job
}

// Migrations returns every schema step kmsd applies at start.
func Migrations() []migrate.Step {
	var steps []migrate.Step
	steps = append(steps, store.Migrations()...)
	steps = append(steps, auth.Migrations()...)
	steps = append(steps, audit.Migrations()...)
	return steps
}

// Open assembles a kmsd from c. It creates the data directory, opens the
// database and the HSM backend, applies all migrations and builds the
// services and the HTTP handler. log may be nil.
func Open(ctx context.Context, c config.Config, deps Deps, log *slog.Logger) (_ *App, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &App{Config: c, Log: log}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("config: data dir: %w", err)
	}

	a.DB = deps.DB
	if a.DB == nil {
		if a.DB, err = openDB(c); err != nil {
			return nil, err
		}
		if sqlDB, err := a.DB.DB(); err == nil {
			a.closers = append(a.closers, sqlDB.Close)
		}
		if c.Database.Driver == "sqlite" && c.EffectiveSQLiteSync() == config.SQLiteSyncNormal {
			a.closers = append(a.closers, checkpointEvery(a.DB, time.Second, log))
		}
	}
	if err := migrate.Apply(a.DB, Migrations()...); err != nil {
		return nil, err
	}
	a.HSM = deps.HSM
	if a.HSM == nil {
		open := func() error {
			var err error
			a.HSM, err = openHSM(c, log)
			return err
		}
		if c.HSM.Backend == "pkcs11" && c.HSM.CreateRootKey {
			// Replicas starting at once with create_root_key: one at a
			// time finds or creates the root key, so there is only one.
			open = withRootKeyLock(ctx, store.New(a.DB), open)
		}
		if err := open(); err != nil {
			return nil, err
		}
		a.closers = append(a.closers, a.HSM.Close)
	}

	replica := c.ReplicaID
	if replica == "" {
		if replica, err = loadOrCreateText(filepath.Join(c.DataDir, "replica-id"), func() (string, error) {
			var b [6]byte
			if _, err := rand.Read(b[:]); err != nil {
				return "", err
			}
			return "kmsd-" + hex.EncodeToString(b[:]), nil
		}); err != nil {
			return nil, err
		}
	}
	chainKey, err := LoadOrCreateChainKey(c.Path(c.Audit.ChainKeyFile, "audit-chain.key"))
	if err != nil {
		return nil, err
	}
	defer hsm.Zero(chainKey)

	if a.kms, err = kms.New(kms.Config{DB: a.DB, HSM: a.HSM, MetadataTTL: c.KMS.MetadataTTL,
		UsageFlushInterval: c.KMS.UsageFlushInterval, RetirementQuietPeriod: c.KMS.RetirementQuietPeriod}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.kms.Close)
	if b, ok := a.HSM.(hsm.DeploymentBinder); ok {
		if err := b.BindDeployment(ctx, a.kms.DeploymentID(), c.HSM.AllowForeignRootKey); err != nil {
			return nil, err
		}
	}
	log.Info("deployment", "deployment_id", a.kms.DeploymentID())
	if a.auth, err = auth.New(a.DB, a.HSM, auth.Config{
		Region: c.Region, RequireNonce: c.Auth.RequireNonce, ClockSkew: c.Auth.ClockSkew, CacheTTL: c.Auth.CacheTTL,
	}); err != nil {
		return nil, err
	}
	anchors, err := audit.OpenAnchorFile(c.Path(c.Audit.AnchorFile, "audit-anchors.jsonl"))
	if err != nil {
		return nil, err
	}
	if a.Audit, err = audit.NewLogger(a.DB, audit.Config{ReplicaID: replica, ChainKey: append([]byte(nil), chainKey...), MaxBatch: c.Audit.MaxBatch,
		Anchors: anchors, AnchorInterval: c.Audit.AnchorInterval, AnchorLog: log.With("component", "audit"), AllowBelowAnchor: c.Audit.AllowBelowAnchor,
		SpoolDir: spoolDir(c, a.DB.Dialector.Name()), SpoolSync: c.Audit.Sync == config.AuditSyncStrict}); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.Audit.Close)

	a.Registry = deps.Registry
	if a.Registry == nil {
		a.Registry = prometheus.NewRegistry()
		a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	db := a.DB
	backend := a.HSM
	if err := a.Registry.Register(hsmCollector{backend.Stats}); err != nil {
		return nil, err
	}
	awsh, err := awsapi.New(awsapi.Options{KMS: a.kms, Region: a.auth.Region(), AccountID: c.AWS.AccountID,
		Logger: log, Registry: a.Registry, MetadataTTL: c.KMS.MetadataTTL})
	if err != nil {
		return nil, err
	}
	a.handler, err = httpapi.New(httpapi.Options{
		KMS:               a.kms,
		Auth:              a.auth,
		Audit:             a.Audit,
		Ready:             readiness(db, backend, a.Audit),
		Logger:            log,
		Registry:          a.Registry,
		TrustedProxies:    c.TrustedProxies,
		MaxInFlight:       c.Limits.MaxInFlight,
		MaxBodyBytes:      c.Limits.MaxBodyBytes,
		MaxBatchBodyBytes: c.Limits.MaxBatchBodyBytes,
		Extra:             append([]httpapi.Route{awsh.Route()}, deps.Extra...),
		Jobs:              jobsAPI{a},
	})
	if err != nil {
		return nil, err
	}
	if c.Jobs.Enabled {
		a.chainKey = append([]byte(nil), chainKey...)
		a.closers = append(a.closers, func() error { hsm.Zero(a.chainKey); return nil })
		if err := a.startJobs(c, log, replica, deps.Jobs); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// rootKeyLockTTL bounds how long a crashed replica blocks the others'
// start while it held the root-key lock.
const rootKeyLockTTL = 2 * time.Minute

func withRootKeyLock(ctx context.Context, st *store.Store, fn func() error) func() error {
	return func() error {
		lctx, cancel := context.WithTimeout(ctx, rootKeyLockTTL+30*time.Second)
		defer cancel()
		release, err := st.AcquireLock(lctx, "hsm-root-key", rootKeyLockTTL)
		if err != nil {
			return err
		}
		defer release()
		return fn()
	}
}

// spoolDir is the audit spool directory, or "" when audit.spool is off.
func spoolDir(c config.Config, dialect string) string {
	if !c.AuditSpoolEnabled(dialect) {
		return ""
	}
	return c.Path(c.Audit.SpoolDir, "audit-spool")
}

// readyCacheTTL is how long a readiness result is reused: the probes are
// real operations (an HSM wrap under the root key, an audit insert rolled
// back), so a busy /readyz must not turn into load.
const readyCacheTTL = time.Second

// readiness returns the /readyz check: the HSM token and root key answer a
// real wrap, and an audit record could be written now (audit.Probe). The
// result is cached for readyCacheTTL.
func readiness(db *gorm.DB, backend hsm.Backend, al *audit.Logger) func(context.Context) error {
	var mu sync.Mutex
	var at time.Time
	var last error
	return func(ctx context.Context) error {
		// The cheap checks run every time; the real operations are cached.
		sqlDB, err := db.DB()
		if err != nil {
			return err
		}
		if err := sqlDB.PingContext(ctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
		if err := backend.Health(ctx); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if !at.IsZero() && time.Since(at) < readyCacheTTL {
			return last
		}
		last = func() error {
			w, err := backend.WrapKey(ctx, make([]byte, 16), []byte("kmsgo/readyz"))
			if err != nil {
				return fmt.Errorf("hsm: %w", err)
			}
			if k, err := backend.UnwrapKey(ctx, w, []byte("kmsgo/readyz")); err != nil {
				return fmt.Errorf("hsm: %w", err)
			} else {
				hsm.Zero(k)
			}
			if err := al.Probe(ctx); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			return nil
		}()
		at = time.Now()
		return last
	}
}

// startJobs starts the maintenance scheduler on this replica. Every
// replica may run it: a lease row in the shared database lets one replica
// run each job per period.
func (a *App) startJobs(c config.Config, log *slog.Logger, replica string, more []jobs.Job) error {
	jc := c.Jobs.SchedulerConfig()
	// Leases name the replica (GET /v1/jobs shows who runs a job), with a
	// random suffix so that two processes never share a holder.
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	jc.Holder = clip(replica, 100) + "/" + hex.EncodeToString(suffix[:])
	jc.Logger = log.With("component", "jobs")
	jc.Registry = a.Registry
	jc.Audit = auditJob(a.Audit)
	jc.AuditChange = auditChange(a.Audit)
	store, err := jobs.NewStore(a.DB) // one run per period across replicas
	if err != nil {
		return err
	}
	jc.Store = store
	var extra []jobs.Job
	if c.Audit.Retention > 0 {
		extra = append(extra, auditRetentionJob(a.DB, c, a.chainKey))
	}
	extra = append(extra, more...)
	s, err := jobs.New(jc, reportingKMS{a.kms}, extra...)
	if err != nil {
		return fmt.Errorf("%w: jobs: %w", config.ErrInvalid, err)
	}
	if err := s.Start(); err != nil {
		return err
	}
	a.Jobs = s
	timeout := c.ShutdownTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	a.closers = append(a.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return s.Stop(ctx)
	})
	return nil
}

// JobAuditRetention is the name of the audit retention job.
const JobAuditRetention = "audit_retention"

// auditRetentionJob deletes audit records exported longer than
// audit.retention ago (audit.DeleteExported).
func auditRetentionJob(db *gorm.DB, c config.Config, key []byte) jobs.Job {
	sched := c.Audit.RetentionSchedule
	if sched == "" {
		sched = "@every 1h"
	}
	return jobs.Job{Name: JobAuditRetention, Schedule: sched, Run: func(ctx context.Context) (int, error) {
		n, err := audit.DeleteExported(ctx, db, key, time.Now().Add(-c.Audit.Retention))
		return int(n), err
	}}
}

// auditJob records one audit record per maintenance run that changed
// something but reported no key changes (orphaned HSM objects removed,
// audit records deleted by retention): action jobs.AuditAction, reason
// code the job name, the count in the details. A run that changed keys was
// audited key by key as it went (auditChange).
func auditJob(l *audit.Logger) func(context.Context, jobs.Result) error {
	return func(ctx context.Context, r jobs.Result) error {
		if len(r.Changes) > 0 {
			return nil
		}
		rec := audit.Record{
			Action:     jobs.AuditAction,
			Result:     audit.ResultOK,
			ReasonCode: r.Job,
			Details: map[string]string{
				"job":         r.Job,
				"count":       strconv.Itoa(r.Items),
				"duration_ms": strconv.FormatInt(r.Duration.Milliseconds(), 10),
			},
		}
		if r.Err != nil {
			rec.Result = audit.ResultError
			rec.Details["error"] = clip(r.Err.Error(), 256)
		}
		return l.Append(ctx, rec)
	}
}

// clip returns s as valid UTF-8 without NUL, cut to at most n bytes on a
// rune boundary.
func clip(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "?"), "\x00", "")
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// EnsureBootstrapAdmin creates the first admin access key when the
// database has none and writes it to BootstrapPath (0600). It returns the
// path when it created one, "" otherwise.
func (a *App) EnsureBootstrapAdmin(ctx context.Context) (string, error) {
	p := a.Config.BootstrapPath()
	created, err := a.auth.EnsureBootstrapAdminFor(ctx, p, a.Config.Endpoint())
	if err != nil || !created {
		return "", err
	}
	return p, nil
}

// Close releases what Open opened, in reverse order.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	a.closers = nil
	return errors.Join(errs...)
}

func openDB(c config.Config) (*gorm.DB, error) {
	gc := &gorm.Config{Logger: logger.Discard}
	var d gorm.Dialector
	switch c.Database.Driver {
	case "sqlite":
		dsn := c.Database.DSN
		if dsn == "" {
			path := filepath.Join(c.DataDir, "kms.db")
			if err := config.EnsurePrivateFile(path); err != nil {
				return nil, err
			}
			dsn = "file:" + path + "?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on"
		}
		d = sqlite.Open(config.SQLiteDSN(dsn, c.EffectiveSQLiteSync()))
	case "mysql":
		d = mysql.Open(c.Database.DSN)
	case "postgres":
		d = postgres.Open(c.Database.DSN)
	}
	db, err := gorm.Open(d, gc)
	if err != nil {
		return nil, fmt.Errorf("config: open %s database: %w", c.Database.Driver, err)
	}
	if c.Database.MaxOpenConns > 0 {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.SetMaxOpenConns(c.Database.MaxOpenConns)
		}
	}
	return db, nil
}

func openHSM(c config.Config, log *slog.Logger) (hsm.Backend, error) {
	switch c.HSM.Backend {
	case "pkcs11":
		pin, err := p11.PINFromEnvOrFile(c.HSM.PINEnv, c.HSM.PINFile)
		if err != nil {
			return nil, err
		}
		return p11.Open(p11.Config{ModulePath: c.HSM.Module, TokenLabel: c.HSM.TokenLabel, PIN: pin,
			PoolSize: c.HSM.PoolSize, CreateRootKey: c.HSM.CreateRootKey, RootKeyID: c.HSM.RootKeyID, Logger: log})
	default:
		log.Warn("USING THE DEVELOPMENT SOFTWARE KEY BACKEND (devhsm): keys are protected by a local file, " +
			"NOT by an HSM. Do not use in production; configure hsm.backend: pkcs11.")
		return devhsm.Open(c.Path(c.HSM.DevDir, "devhsm"))
	}
}

// LoadOrCreateChainKey reads the base64 audit chain key at path, creating
// a random 32-byte key (mode 0600) when the file does not exist. A file
// readable by group or others is refused.
func LoadOrCreateChainKey(path string) ([]byte, error) {
	s, err := loadOrCreateText(path, func() (string, error) {
		var k [32]byte
		if _, err := rand.Read(k[:]); err != nil {
			return "", err
		}
		defer hsm.Zero(k[:])
		return base64.StdEncoding.EncodeToString(k[:]), nil
	})
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s", config.ErrInsecureFile, path)
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) < 32 {
		return nil, fmt.Errorf("%w: %s must hold at least 32 base64-encoded bytes", config.ErrInvalid, path)
	}
	return k, nil
}

// loadOrCreateText returns the trimmed content of path, writing gen()'s
// value with mode 0600 first when the file does not exist.
func loadOrCreateText(path string, gen func() (string, error)) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("config: %w", err)
	}
	v, err := gen()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateText(path, gen)
	}
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("config: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	return v, nil
}

// checkpointEvery runs a passive WAL checkpoint every d: with
// synchronous=NORMAL this is where SQLite fsyncs, so committed records
// (audit.sync group) reach the disk within about d even when the WAL stays
// below its auto-checkpoint size. It returns the function that stops it.
func checkpointEvery(db *gorm.DB, d time.Duration, log *slog.Logger) func() error {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := db.Exec("PRAGMA wal_checkpoint(PASSIVE)").Error; err != nil {
					log.Warn("sqlite checkpoint failed", "error", err.Error())
				}
			}
		}
	}()
	return func() error {
		close(stop)
		<-done
		return nil
	}
}
