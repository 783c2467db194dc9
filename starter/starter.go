package starter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/file"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// Option configures Start.
type Option func(*options)

type options struct {
	file     string
	settings *Settings
	environ  []string
	log      *slog.Logger
	reg      prometheus.Registerer
	onError  func(error)

	renewModels []any
}

// File reads the settings from the YAML file at path, with KMSGO_*
// environment overrides.
func File(path string) Option { return func(o *options) { o.file = path } }

// WithSettings uses s as the settings (no file is read, no KMSGO_*
// variable applies). Secrets in s are used as they are.
func WithSettings(s Settings) Option { return func(o *options) { o.settings = &s } }

// WithEnviron replaces os.Environ() as the source of KMSGO_* overrides.
func WithEnviron(environ []string) Option { return func(o *options) { o.environ = environ } }

// WithLogger sends the starter's and the config center's log lines to l
// (default: a logger built from the log settings, on stderr).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the starter's metrics (config reloads and
// errors, database rotations and pool use) with r; Close unregisters them.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithOnError receives every problem after start-up: a config change that
// could not be applied, a source error, a failed pool rotation. It must
// not block and must not call Close.
func WithOnError(fn func(error)) Option { return func(o *options) { o.onError = fn } }

// App is a started service: its KMS client, its config and its database.
type App struct {
	set    Settings
	log    *slog.Logger
	hc     *http.Client
	kms    *kmsclient.Client
	cfg    *configcenter.Config
	srcs   []*trackedSource
	db     *database
	unsubs []func()
	unreg  func()

	renewModels []any
	renewMu     sync.Mutex
	renew       *renewal
	closed      bool

	cfgMu     sync.Mutex
	cfgErr    error
	cfgErrAt  time.Time
	closeOnce sync.Once
	closeErr  error
}

// Start builds the App in order: the KMS client (kmsd must answer
// /readyz), the config sources and the first decrypted snapshot, the
// database (decrypted DSN, ormplugin registered), then the watchers. Any
// failure stops start-up with a *StartError naming the component and the
// config path, after closing what was already opened. ctx bounds start-up
// only.
func Start(ctx context.Context, opts ...Option) (*App, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	var set Settings
	switch {
	case o.settings != nil:
		set = *o.settings
		if err := set.validate(); err != nil {
			return nil, &StartError{Component: "settings", Path: "WithSettings", Err: err}
		}
	case o.file != "":
		data, err := os.ReadFile(o.file)
		if err != nil {
			return nil, &StartError{Component: "settings", Path: o.file, Err: fmt.Errorf("%w: %v", ErrConfig, err)}
		}
		environ := o.environ
		if environ == nil {
			environ = os.Environ()
		}
		if set, err = LoadSettings(o.file, data, environ); err != nil {
			return nil, &StartError{Component: "settings", Path: o.file, Err: err}
		}
	default:
		return nil, &StartError{Component: "settings", Path: "", Err: fmt.Errorf("%w: give starter.File or starter.WithSettings", ErrConfig)}
	}
	a := &App{set: set, log: o.log, renewModels: o.renewModels}
	if a.log == nil {
		a.log = newLogger(set.Log)
	}
	report := func(err error) {
		if o.onError != nil {
			o.onError(err)
		}
	}
	ok := false
	defer func() {
		if !ok {
			_ = a.Close()
		}
	}()

	// 1. KMS client.
	if err := a.startKMS(ctx); err != nil {
		return nil, err
	}
	// 2. Config sources and the first decrypted snapshot.
	if len(set.Config.Sources) > 0 {
		if err := a.startConfig(ctx, report); err != nil {
			return nil, err
		}
	}
	// 3. Database.
	if set.Database.Driver != "" {
		dsn, err := a.effectiveDSN(ctx, a.snapshot())
		if err != nil {
			return nil, &StartError{Component: "database", Path: a.dsnPathName(), Err: err}
		}
		db, err := openDatabase(ctx, set.Database, dsn, a.kms, a.log, nil)
		if err != nil {
			return nil, err
		}
		db.report = report
		a.db = db
	}
	// 4. Watchers and the renewal job.
	if a.db != nil {
		a.db.start()
	}
	if set.Database.Renewal.Schedule != "" {
		r, err := a.renewalJob()
		if err != nil {
			return nil, &StartError{Component: "renewal", Path: "database.renewal", Err: err}
		}
		if err := r.sched.Start(); err != nil {
			return nil, &StartError{Component: "renewal", Path: "database.renewal", Err: err}
		}
	}
	if a.db != nil && a.cfg != nil {
		for _, p := range []string{set.Database.DSNPath, set.Database.PasswordPath} {
			if p == "" {
				continue
			}
			a.unsubs = append(a.unsubs, a.cfg.Watch(p, func(_, snap *configcenter.Snapshot) {
				dsn, err := a.effectiveDSN(context.Background(), snap)
				if err != nil {
					a.db.fail(fmt.Errorf("starter: %s: %w", a.dsnPathName(), err))
					return
				}
				a.db.request(dsn)
			}))
		}
		// A change that landed between the first snapshot and the watch.
		if dsn, err := a.effectiveDSN(ctx, a.cfg.Snapshot()); err == nil {
			a.db.request(dsn)
		}
	}
	if o.reg != nil {
		unreg, err := a.registerMetrics(o.reg)
		if err != nil {
			return nil, &StartError{Component: "metrics", Path: "WithRegisterer", Err: err}
		}
		a.unreg = unreg
	}
	ok = true
	a.log.Info("starter: started", "sources", strings.Join(set.Config.Sources, ","), "database", set.Database.Driver)
	return a, nil
}

func (a *App) snapshot() *configcenter.Snapshot {
	if a.cfg == nil {
		return nil
	}
	return a.cfg.Snapshot()
}

func (a *App) dsnPathName() string {
	d := a.set.Database
	switch {
	case d.DSNPath != "":
		return "database.dsn_path (" + d.DSNPath + ")"
	default:
		return "database.dsn"
	}
}

// effectiveDSN builds the DSN from the settings and the snapshot.
func (a *App) effectiveDSN(ctx context.Context, snap *configcenter.Snapshot) (string, error) {
	d := a.set.Database
	var dsn string
	if d.DSNPath != "" {
		if snap == nil || !snap.Has(d.DSNPath) {
			return "", fmt.Errorf("%w: config path %s is not set", ErrConfig, d.DSNPath)
		}
		dsn = snap.String(d.DSNPath, "")
	} else {
		var err error
		if dsn, err = decryptLocal(ctx, a.kms, "database.dsn", d.DSN, a.set.marker(), a.set.Config.EncryptionContext); err != nil {
			return "", err
		}
	}
	if dsn == "" {
		return "", fmt.Errorf("%w: empty DSN", ErrConfig)
	}
	if d.PasswordPath != "" {
		if snap == nil || !snap.Has(d.PasswordPath) {
			return "", fmt.Errorf("%w: config path %s is not set", ErrConfig, d.PasswordPath)
		}
		drv, err := driver(d.Driver)
		if err != nil {
			return "", err
		}
		if drv.SetPassword == nil {
			return "", fmt.Errorf("%w: driver %s has no password", ErrConfig, d.Driver)
		}
		if dsn, err = drv.SetPassword(dsn, snap.String(d.PasswordPath, "")); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrConfig, d.PasswordPath, err)
		}
	}
	return dsn, nil
}

// startKMS builds the client and checks that kmsd answers.
func (a *App) startKMS(ctx context.Context) error {
	k := a.set.KMS
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if k.TLS.enabled() {
		tc, err := k.TLS.Config()
		if err != nil {
			return &StartError{Component: "kms", Path: "kms.tls", Err: err}
		}
		tr.TLSClientConfig = tc
	}
	a.hc = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c, err := kmsclient.New(kmsclient.Config{
		Endpoint: k.Endpoint, AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey,
		Region: k.Region, HTTPClient: a.hc, Timeout: k.Timeout, MaxRetries: k.MaxRetries, SendNonce: k.SendNonce,
	})
	if err != nil {
		return &StartError{Component: "kms", Path: "kms", Err: err}
	}
	a.kms = c
	if err := a.kmsReady(ctx); err != nil {
		return &StartError{Component: "kms", Path: "kms.endpoint", Err: err}
	}
	return nil
}

// kmsReady asks kmsd's /readyz (database and HSM usable).
func (a *App) kmsReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.set.KMS.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(a.set.KMS.Endpoint, "/")+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("kmsd unreachable: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kmsd not ready: HTTP %d", resp.StatusCode)
	}
	return nil
}

// Config returns the TLS client configuration t describes.
func (t TLSSettings) Config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, tests only
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// startConfig builds the sources and the first snapshot.
func (a *App) startConfig(ctx context.Context, report func(error)) error {
	c := a.set.Config
	var srcs []configcenter.Source
	closeAll := func() {
		for _, s := range srcs {
			_ = s.Close()
		}
	}
	for _, name := range c.Sources {
		var made []configcenter.Source
		var err error
		if name == "file" {
			made = []configcenter.Source{file.New(c.File.Path, file.Options{Format: configcenter.Format(c.File.Format), PollInterval: c.File.PollInterval})}
		} else {
			var f SourceFactory
			if f, err = sourceFactory(name); err == nil {
				made, err = f(&a.set)
			}
		}
		if err != nil {
			closeAll()
			return &StartError{Component: "config", Path: "config." + name, Err: err}
		}
		for _, s := range made {
			t := &trackedSource{Source: s, kind: name}
			a.srcs = append(a.srcs, t)
			srcs = append(srcs, t)
		}
	}
	if c.StartTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.StartTimeout)
		defer cancel()
	}
	cfg, err := configcenter.New(ctx, configcenter.Options{
		Sources:           srcs,
		Decrypter:         a.kms,
		Marker:            configcenter.Marker{Prefix: c.MarkerPrefix, Suffix: c.MarkerSuffix},
		EmbeddedMarkers:   c.EmbeddedMarkers,
		EncryptionContext: c.EncryptionContext,
		DecryptTimeout:    c.DecryptTimeout,
		Logger:            a.log,
		OnError: func(err error) {
			a.cfgMu.Lock()
			a.cfgErr, a.cfgErrAt = err, time.Now()
			a.cfgMu.Unlock()
			report(err)
		},
	})
	if err != nil {
		// configcenter.New closed the sources.
		path := "config.sources"
		var pe *configcenter.PathError
		if errors.As(err, &pe) {
			path = "config value " + pe.Path
		} else {
			for _, t := range a.srcs {
				if strings.Contains(err.Error(), t.Name()) {
					path = "config." + t.kind
				}
			}
		}
		a.srcs = nil
		return &StartError{Component: "config", Path: path, Err: err}
	}
	a.cfg = cfg
	return nil
}

func newLogger(l LogSettings) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		lv = slog.LevelInfo
	}
	ho := &slog.HandlerOptions{Level: lv}
	if strings.EqualFold(l.Format, "json") {
		return slog.New(slog.NewJSONHandler(os.Stderr, ho))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, ho))
}

// DB returns the database with ormplugin registered (nil without
// database.driver). It is one *gorm.DB for the App's lifetime: a DSN
// rotation swaps the connection pool underneath it, so keeping it in a
// struct is fine. What is not fine is keeping the *sql.DB of DB().DB():
// that pool is closed after the next rotation.
func (a *App) DB() *gorm.DB {
	if a.db == nil {
		return nil
	}
	return a.db.gdb
}

// Config returns the live, decrypted configuration (nil without
// config.sources).
func (a *App) Config() *configcenter.Config { return a.cfg }

// KMS returns the kmsd client.
func (a *App) KMS() *kmsclient.Client { return a.kms }

// Settings returns the settings the App was started with, secrets removed.
func (a *App) Settings() Settings {
	s := a.set
	s.KMS.SecretAccessKey = ""
	s.Config.Etcd.Password = ""
	s.Config.Nacos.Password = ""
	s.Config.Nacos.SecretKey = ""
	return s
}

// Close stops everything in reverse start order: the watchers, the
// database (waiting for an old pool to drain, at most drain_timeout), the
// config center and its sources, and the KMS client's idle connections.
// Safe to call more than once.
func (a *App) Close() error {
	a.closeOnce.Do(func() {
		var errs []error
		if a.unreg != nil {
			a.unreg()
		}
		for _, u := range a.unsubs {
			u()
		}
		if err := a.stopRenewal(); err != nil {
			errs = append(errs, err)
		}
		if a.db != nil {
			if err := a.db.close(); err != nil {
				errs = append(errs, fmt.Errorf("starter: close database: %w", err))
			}
		}
		if a.cfg != nil {
			if err := a.cfg.Close(); err != nil {
				errs = append(errs, fmt.Errorf("starter: close config: %w", err))
			}
		}
		if a.hc != nil {
			a.hc.CloseIdleConnections()
		}
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}
