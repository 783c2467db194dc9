package starter

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kmsgo/kmsgo/ormplugin"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// database is the GORM database with its rotating connection pool.
type database struct {
	set    DatabaseSettings
	drv    Driver
	log    *slog.Logger
	pool   *swapPool
	gdb    *gorm.DB
	plugin *ormplugin.Plugin
	report func(error)

	mu        sync.Mutex
	dsn       string // effective DSN of the current pool (secret: never logged)
	pending   string // newest DSN asked for by the config center
	hasNext   bool
	lastErr   error
	lastErrAt time.Time
	swappedAt time.Time

	rotations, rotationErrors atomic.Uint64

	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// openDatabase opens the pool for dsn, checks it with a ping, opens GORM on
// it and registers ormplugin. Errors name the config path.
func openDatabase(ctx context.Context, set DatabaseSettings, dsn string, kms ormplugin.KMS, log *slog.Logger, gormLog logger.Interface) (*database, error) {
	drv, err := driver(set.Driver)
	if err != nil {
		return nil, &StartError{Component: "database", Path: "database.driver", Err: err}
	}
	d := &database{set: set, drv: drv, log: log, dsn: dsn, kick: make(chan struct{}, 1)}
	sqlDB, err := d.openPool(ctx, dsn)
	if err != nil {
		return nil, &StartError{Component: "database", Path: d.dsnPath(), Err: err}
	}
	d.pool = newSwapPool(sqlDB)
	if gormLog == nil {
		gormLog = logger.Discard
	}
	gdb, err := gorm.Open(drv.Dialector(dsn, d.pool), &gorm.Config{Logger: gormLog})
	if err != nil {
		_ = sqlDB.Close()
		return nil, &StartError{Component: "database", Path: d.dsnPath(), Err: fmt.Errorf("%w: open gorm: %s", ErrDatabase, redact(err, dsn))}
	}
	d.gdb = gdb
	if o := set.ORM; o.KeyID != "" {
		d.plugin = ormplugin.New(kms, ormplugin.Config{
			KeyID: o.KeyID, MaxKeyAge: o.MaxKeyAge, MaxKeyUses: o.MaxKeyUses, MaxKeyBytes: o.MaxKeyBytes,
			DecryptCacheSize: o.DecryptCacheSize, DecryptCacheTTL: o.DecryptCacheTTL,
		})
		if err := gdb.Use(d.plugin); err != nil {
			_ = sqlDB.Close()
			return nil, &StartError{Component: "database", Path: "database.orm", Err: err}
		}
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

func (d *database) dsnPath() string {
	switch {
	case d.set.PasswordPath != "":
		return "database.password_path (" + d.set.PasswordPath + ")"
	case d.set.DSNPath != "":
		return "database.dsn_path (" + d.set.DSNPath + ")"
	}
	return "database.dsn"
}

// openPool opens and pings a pool with the configured limits.
func (d *database) openPool(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := d.drv.Open(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: open: %s", ErrDatabase, redact(err, dsn))
	}
	db.SetMaxOpenConns(d.set.MaxOpenConns)
	db.SetMaxIdleConns(d.set.MaxIdleConns)
	db.SetConnMaxLifetime(d.set.ConnMaxLifetime)
	db.SetConnMaxIdleTime(d.set.ConnMaxIdleTime)
	pctx, cancel := context.WithTimeout(ctx, d.set.PingTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: ping: %s", ErrDatabase, redact(err, dsn))
	}
	return db, nil
}

// start runs the rotation loop.
func (d *database) start() {
	d.wg.Add(1)
	go d.loop()
}

// request asks for the pool to use dsn (from the config center). Only the
// newest request is kept; the rotation runs on the database's goroutine so
// that config callbacks never wait for a ping or a drain.
func (d *database) request(dsn string) {
	d.mu.Lock()
	d.pending, d.hasNext = dsn, true
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// fail records a rotation error (the previous pool stays in use).
func (d *database) fail(err error) {
	d.rotationErrors.Add(1)
	d.mu.Lock()
	d.lastErr, d.lastErrAt = err, time.Now()
	d.mu.Unlock()
	d.log.Error("starter: database rotation failed; keeping the current pool", "err", err.Error())
	if d.report != nil {
		d.report(err)
	}
}

func (d *database) loop() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.kick:
		}
		d.mu.Lock()
		dsn, ok := d.pending, d.hasNext
		d.hasNext = false
		same := dsn == d.dsn
		d.mu.Unlock()
		if !ok || same {
			continue
		}
		d.rotate(dsn)
	}
}

// rotate opens a pool for dsn, pings it, swaps it in and drains and
// closes the old pool in the background.
func (d *database) rotate(dsn string) {
	db, err := d.openPool(d.ctx, dsn)
	if err != nil {
		if d.ctx.Err() == nil {
			d.fail(fmt.Errorf("starter: %s: %w", d.dsnPath(), err))
		}
		return
	}
	old := d.pool.swap(db)
	d.mu.Lock()
	d.dsn, d.swappedAt = dsn, time.Now()
	d.mu.Unlock()
	d.rotations.Add(1)
	d.log.Info("starter: database pool rotated", "generation", old.n+1)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		// Draining is not cut short by Close (which waits for it, bounded by
		// drain_timeout): in-flight work on the old pool may finish.
		ctx, cancel := context.WithTimeout(context.Background(), d.set.DrainTimeout)
		defer cancel()
		if err := old.drain(ctx); err != nil {
			d.log.Warn("starter: closing the old database pool", "err", err.Error())
		}
	}()
}

// ping checks the current pool.
func (d *database) ping(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, d.set.PingTimeout)
	defer cancel()
	if err := d.pool.PingContext(pctx); err != nil {
		d.mu.Lock()
		dsn := d.dsn
		d.mu.Unlock()
		return fmt.Errorf("%w: ping: %s", ErrDatabase, redact(err, dsn))
	}
	return nil
}

// close stops rotating, waits for old pools to drain and closes the current
// pool.
func (d *database) close() error {
	d.cancel()
	d.wg.Wait()
	return d.pool.current().Close()
}

// redact returns err's text with the DSN and its password (if any) removed:
// driver errors may quote what they could not parse.
func redact(err error, dsn string) string {
	s := err.Error()
	if dsn != "" {
		s = strings.ReplaceAll(s, dsn, "[dsn]")
	}
	if pw := dsnPassword(dsn); len(pw) >= 3 {
		s = strings.ReplaceAll(s, pw, "[redacted]")
	}
	return s
}

// dsnPassword finds the password in a URL-style (user:pass@), MySQL-style
// (user:pass@tcp(...)) or key=value (password=...) DSN, best effort.
func dsnPassword(dsn string) string {
	if i := strings.Index(dsn, "password="); i >= 0 {
		v := dsn[i+len("password="):]
		if strings.HasPrefix(v, "'") {
			if j := strings.Index(v[1:], "'"); j >= 0 {
				return v[1 : j+1]
			}
		}
		if j := strings.IndexAny(v, " &"); j >= 0 {
			v = v[:j]
		}
		return v
	}
	rest := dsn
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
		return pw
	}
	return ""
}

// decryptLocal decrypts a value from the starter's own file or environment
// that is exactly ENC(base64) (the config center decrypts its own values).
func decryptLocal(ctx context.Context, kms *kmsclient.Client, path, v string, m markerSettings, encCtx map[string]string) (string, error) {
	if !strings.HasPrefix(v, m.prefix) || !strings.HasSuffix(v, m.suffix) || len(v) < len(m.prefix)+len(m.suffix) {
		return v, nil
	}
	blob, err := decodeStdB64(v[len(m.prefix) : len(v)-len(m.suffix)])
	if err != nil {
		return "", fmt.Errorf("%s: malformed %s...%s value", path, m.prefix, m.suffix)
	}
	res, err := kms.Decrypt(ctx, blob, encCtx)
	if err != nil {
		var apiErr *kmsclient.APIError
		if errors.As(err, &apiErr) {
			return "", fmt.Errorf("%s: cannot decrypt: %s", path, apiErr.Code)
		}
		return "", fmt.Errorf("%s: cannot decrypt: %w", path, err)
	}
	s := string(res.Plaintext)
	clear(res.Plaintext)
	return s, nil
}

type markerSettings struct{ prefix, suffix string }

func (s *Settings) marker() markerSettings {
	c := s.Config
	if c.MarkerPrefix == "" && c.MarkerSuffix == "" {
		return markerSettings{"ENC(", ")"}
	}
	return markerSettings{c.MarkerPrefix, c.MarkerSuffix}
}

func decodeStdB64(s string) ([]byte, error) { return base64.StdEncoding.Strict().DecodeString(s) }
