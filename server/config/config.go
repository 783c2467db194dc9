package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/internal/awsapi"
	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// Config is kmsd's configuration. Every field can be set in the YAML file
// and overridden by an environment variable named KMSD_ followed by the
// field's YAML path in upper case joined by underscores, for example
// KMSD_LISTEN, KMSD_DATABASE_DSN, KMSD_HSM_TOKEN_LABEL.
type Config struct {
	// Listen is the TCP address to serve on.
	Listen string `yaml:"listen"`
	// DataDir holds the SQLite database, the dev HSM store, the audit
	// chain key, the replica id and the bootstrap admin credentials.
	DataDir string `yaml:"data_dir"`
	// Region is the SigV4 region clients sign for.
	Region string `yaml:"region"`
	// ReplicaID names this process's audit chain; unique among replicas
	// sharing a database, stable across restarts. Default: generated once
	// and kept in <data_dir>/replica-id.
	ReplicaID string `yaml:"replica_id"`

	// TrustedProxies lists reverse proxies (IPs or CIDRs) whose
	// X-Forwarded-For header is believed for the client address in logs
	// and audit records (comma-separated in KMSD_TRUSTED_PROXIES).
	TrustedProxies []string `yaml:"trusted_proxies"`

	TLS      TLSConfig      `yaml:"tls"`
	Database DatabaseConfig `yaml:"database"`
	HSM      HSMConfig      `yaml:"hsm"`
	Auth     AuthConfig     `yaml:"auth"`
	Audit    AuditConfig    `yaml:"audit"`
	KMS      KMSConfig      `yaml:"kms"`
	Limits   LimitsConfig   `yaml:"limits"`
	Jobs     JobsConfig     `yaml:"jobs"`
	AWS      AWSConfig      `yaml:"aws"`
	Log      LogConfig      `yaml:"log"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// TLSConfig enables HTTPS when both files are set.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// DatabaseConfig selects the metadata store.
type DatabaseConfig struct {
	// Driver is sqlite, mysql or postgres.
	Driver string `yaml:"driver"`
	// DSN of the database. For sqlite, empty means <data_dir>/kms.db.
	DSN string `yaml:"dsn"`
	// MaxOpenConns bounds the connection pool (0: driver default).
	MaxOpenConns int `yaml:"max_open_conns"`
	// SQLiteSynchronous is SQLite's commit durability, "full" (every
	// acknowledged commit survives power loss) or "normal" (survives a
	// process crash only; see SQLiteSyncNormal). Empty (the default) follows
	// audit.sync: normal for group, full for strict. A _synchronous
	// parameter in DSN takes precedence. Ignored for other drivers.
	SQLiteSynchronous string `yaml:"sqlite_synchronous"`
}

// HSMConfig selects the key backend.
type HSMConfig struct {
	// Backend is "dev" (software, NOT for production) or "pkcs11".
	Backend string `yaml:"backend"`
	// DevDir is the dev backend's directory (default <data_dir>/devhsm).
	DevDir string `yaml:"dev_dir"`
	// Module is the PKCS#11 library path.
	Module string `yaml:"module"`
	// TokenLabel selects the PKCS#11 token.
	TokenLabel string `yaml:"token_label"`
	// PINEnv names the environment variable holding the user PIN
	// (default KMSD_HSM_PIN); PINFile is read when it is unset.
	PINEnv  string `yaml:"pin_env"`
	PINFile string `yaml:"pin_file"`
	// PoolSize bounds PKCS#11 sessions in flight (0: number of CPUs).
	PoolSize int `yaml:"pool_size"`
	// CreateRootKey generates the root key on an empty token.
	CreateRootKey bool `yaml:"create_root_key"`
	// RootKeyID is the id (CKA_ID/CKA_LABEL) of this deployment's root key
	// (default kmsgo-root). Deployments sharing a token need distinct ids.
	RootKeyID string `yaml:"root_key_id"`
	// AllowForeignRootKey starts kmsd even when the root key is recorded
	// as another deployment's (another database's). Off by default: two
	// deployments on one root key can read each other's wrapped material.
	AllowForeignRootKey bool `yaml:"allow_foreign_root_key"`
}

// AuthConfig tunes request authentication.
type AuthConfig struct {
	// RequireNonce rejects requests without a signed X-Kms-Nonce.
	RequireNonce bool `yaml:"require_nonce"`
	// ClockSkew is the accepted X-Amz-Date window (default 5m).
	ClockSkew time.Duration `yaml:"clock_skew"`
	// CacheTTL bounds how long access-key state is cached (default 5s):
	// a disabled access key is refused by every replica within it.
	CacheTTL time.Duration `yaml:"cache_ttl"`
}

// AuditConfig configures the audit log.
type AuditConfig struct {
	// ChainKeyFile holds the base64 HMAC key of the audit chain (at least
	// 32 bytes). Every replica must use the same key. Default
	// <data_dir>/audit-chain.key, created on first start.
	ChainKeyFile string `yaml:"chain_key_file"`
	// MaxBatch is the most records per group-commit transaction (default 256).
	MaxBatch int `yaml:"max_batch"`
	// Sync is the audit guarantee (AuditSyncGroup, the default, or
	// AuditSyncStrict); see AuditSyncGroup.
	Sync string `yaml:"sync"`
	// Spool puts a local append-only file in front of the audit table:
	// AuditSpoolAuto (the default: on with SQLite, whose database is a
	// local file too, off with MySQL and PostgreSQL, whose records should
	// leave the machine before the answer), AuditSpoolOn or AuditSpoolOff.
	// See AuditSyncGroup for what each combination guarantees.
	Spool string `yaml:"spool"`
	// SpoolDir holds the spool files (default <data_dir>/audit-spool).
	SpoolDir string `yaml:"spool_dir"`

	// AnchorFile receives this replica's signed chain heads (JSON lines,
	// 0600), which the database cannot rewrite. Default
	// <data_dir>/audit-anchors.jsonl. Each anchor is also logged.
	AnchorFile string `yaml:"anchor_file"`
	// AnchorInterval is how often a grown chain head is anchored (default
	// 10s): the most recent records that can be deleted from the database
	// without verification noticing are those of the last interval.
	AnchorInterval time.Duration `yaml:"anchor_interval"`
	// AllowBelowAnchor starts kmsd even when this replica's chain in the
	// database ends below its last anchor (a restored backup). Off by
	// default: records were removed, and resuming would reuse their seqs.
	AllowBelowAnchor bool `yaml:"allow_below_anchor"`
	// Retention deletes audit records from the database once they were
	// exported (kmsctl audit export) at least this long ago; 0 keeps every
	// record. Runs with the maintenance jobs (jobs.enabled).
	Retention time.Duration `yaml:"retention"`
	// RetentionSchedule is when retention runs (default @every 1h).
	RetentionSchedule string `yaml:"retention_schedule"`
}

// Audit durability modes (audit.sync).
//
// With AuditSyncGroup every request is answered only after its audit
// record is durable against a kill -9 of kmsd, and fsyncs are batched:
//   - with the spool (audit.spool, on by default with SQLite) the record is
//     written to the spool file in the data directory with one write per
//     group commit; a background writer moves spooled records into the
//     database in large transactions, and the next start moves what a
//     killed process left. Intent records of state changes are committed
//     to the database before the change. The spool is fsynced with the
//     database: SQLite runs WAL with synchronous=NORMAL and a checkpoint at
//     least every second, so an OS crash or power loss may lose up to
//     about a second of records;
//   - without the spool the record is committed to the database in a
//     group-commit transaction before the answer.
//
// With AuditSyncStrict the record is also fsynced before the answer (the
// spool file, or SQLite with synchronous=FULL): it survives power loss, at
// the cost of an fsync per group commit. MySQL and PostgreSQL commits
// follow the server's own durability settings in both modes.
const (
	AuditSyncGroup  = "group"
	AuditSyncStrict = "strict"
)

// Audit spool settings (audit.spool).
const (
	AuditSpoolAuto = "auto"
	AuditSpoolOn   = "on"
	AuditSpoolOff  = "off"
)

// AuditSpoolEnabled reports whether audit.spool turns the spool on for a
// database of the given GORM dialect ("sqlite", "mysql", "postgres").
func (c Config) AuditSpoolEnabled(dialect string) bool {
	switch c.Audit.Spool {
	case AuditSpoolOn:
		return true
	case AuditSpoolOff:
		return false
	default:
		return dialect == "sqlite"
	}
}

// KMSConfig tunes the key service.
type KMSConfig struct {
	// MetadataTTL bounds how long key state is cached per replica: a key
	// disabled on one replica is refused by every other within it
	// (default 2s).
	MetadataTTL time.Duration `yaml:"metadata_ttl"`
	// UsageFlushInterval is how often a replica adds the per-key-version
	// decryption counts it gathered in memory to the database (default
	// 10s; they are also flushed at shutdown).
	UsageFlushInterval time.Duration `yaml:"usage_flush_interval"`
	// RetirementQuietPeriod is how long a key version must have gone
	// without decryptions before it can be disabled without force
	// (default 24h). It must exceed UsageFlushInterval, which bounds how
	// late another replica's decryptions reach the database.
	RetirementQuietPeriod time.Duration `yaml:"retirement_quiet_period"`
}

// LimitsConfig bounds request bodies and concurrency.
type LimitsConfig struct {
	// MaxInFlight bounds concurrently served API requests, /v1 and the AWS
	// protocol together; more get 429 (AWS clients: ThrottlingException)
	// (0: unlimited).
	MaxInFlight       int   `yaml:"max_in_flight"`
	MaxBodyBytes      int64 `yaml:"max_body_bytes"`
	MaxBatchBodyBytes int64 `yaml:"max_batch_body_bytes"`
}

// JobsConfig schedules key maintenance (package jobs): destroying keys
// whose deletion window ended, rotating keys whose rotation is due,
// removing orphaned HSM objects. Schedules are cron specs in UTC ("@every
// 1m", "0 3 * * *"); a period missed while no replica was up runs once at
// start. Across replicas each job runs once per period: a lease row in the
// database (jobs.Store) is taken by compare-and-swap and renewed while the
// job runs, and a runner that dies loses it to the next. The operations
// are compare-and-swap and idempotent too. GET /v1/jobs lists the jobs and
// POST /v1/jobs/:name/run runs one now through the same lease.
type JobsConfig struct {
	// Enabled runs the maintenance jobs in this replica (default true).
	Enabled         bool   `yaml:"enabled"`
	DestroySchedule string `yaml:"destroy_schedule"` // default @every 1m
	RotateSchedule  string `yaml:"rotate_schedule"`  // default @every 5m
	OrphanSchedule  string `yaml:"orphan_schedule"`  // default @every 15m
	// Timeout bounds one run of a job (default 10m).
	Timeout time.Duration `yaml:"timeout"`
}

// AWSConfig configures the AWS-KMS-compatible endpoint (POST /, package
// awsapi).
type AWSConfig struct {
	// AccountID is the 12-digit account id in the ARNs kmsd shows and
	// accepts (arn:aws:kms:<region>:<account_id>:key/<id>); the region is
	// Region. Empty means awsapi.DefaultAccountID.
	AccountID string `yaml:"account_id"`
}

// LogConfig configures the structured log on stderr.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		Listen:          "127.0.0.1:8400",
		DataDir:         ".kmsgo-data",
		Region:          "local",
		Database:        DatabaseConfig{Driver: "sqlite"},
		HSM:             HSMConfig{Backend: "dev", PINEnv: "KMSD_HSM_PIN"},
		Jobs:            defaultJobs(),
		AWS:             AWSConfig{AccountID: awsapi.DefaultAccountID},
		Log:             LogConfig{Level: "info", Format: "json"},
		ShutdownTimeout: 15 * time.Second,
	}
}

func defaultJobs() JobsConfig {
	return JobsConfig{
		Enabled:         true,
		DestroySchedule: jobs.DefaultDestroySchedule,
		RotateSchedule:  jobs.DefaultRotateSchedule,
		OrphanSchedule:  jobs.DefaultOrphanSchedule,
		Timeout:         jobs.DefaultTimeout,
	}
}

// Load returns Defaults, overlaid by the YAML file at path (if path is not
// empty) and then by KMSD_* variables looked up with getenv (os.Getenv
// when nil). Unknown YAML fields are errors.
func Load(path string, getenv func(string) string) (Config, error) {
	c := Defaults()
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		if err := Parse(f, &c); err != nil {
			return Config{}, err
		}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), "KMSD", getenv); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// Parse decodes YAML from r into c (fields absent from the document keep
// their values). Unknown fields are errors.
func Parse(r io.Reader, c *Config) error {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: yaml: %v", ErrInvalid, err)
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// EnvNames lists every environment variable Load honours.
func EnvNames() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := prefix + "_" + strings.ToUpper(strings.Split(f.Tag.Get("yaml"), ",")[0])
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, name)
				continue
			}
			out = append(out, name)
		}
	}
	walk(reflect.TypeOf(Config{}), "KMSD")
	return out
}

func applyEnv(v reflect.Value, prefix string, getenv func(string) string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := prefix + "_" + strings.ToUpper(strings.Split(f.Tag.Get("yaml"), ",")[0])
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, getenv); err != nil {
				return err
			}
			continue
		}
		s := getenv(name)
		if s == "" {
			continue
		}
		switch {
		case f.Type == durationType:
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
			}
			fv.SetInt(int64(d))
		case f.Type.Kind() == reflect.String:
			fv.SetString(s)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			var list []string
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					list = append(list, p)
				}
			}
			fv.Set(reflect.ValueOf(list))
		case f.Type.Kind() == reflect.Bool:
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
			}
			fv.SetBool(b)
		case f.Type.Kind() == reflect.Int || f.Type.Kind() == reflect.Int64:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
			}
			fv.SetInt(n)
		}
	}
	return nil
}

// Validate checks the values that have a fixed set of choices.
func (c Config) Validate() error {
	switch c.Database.Driver {
	case "sqlite", "mysql", "postgres":
	default:
		return fmt.Errorf("%w: database.driver must be sqlite, mysql or postgres", ErrInvalid)
	}
	if c.Database.Driver != "sqlite" && c.Database.DSN == "" {
		return fmt.Errorf("%w: database.dsn is required for %s", ErrInvalid, c.Database.Driver)
	}
	switch c.Audit.Sync {
	case "", AuditSyncGroup, AuditSyncStrict:
	default:
		return fmt.Errorf("%w: audit.sync must be group or strict", ErrInvalid)
	}
	switch c.Audit.Spool {
	case "", AuditSpoolAuto, AuditSpoolOn, AuditSpoolOff:
	default:
		return fmt.Errorf("%w: audit.spool must be auto, on or off", ErrInvalid)
	}
	if !validSQLiteSync(c.Database.SQLiteSynchronous) {
		return fmt.Errorf("%w: database.sqlite_synchronous must be full or normal", ErrInvalid)
	}
	switch c.HSM.Backend {
	case "dev":
	case "pkcs11":
		if c.HSM.Module == "" || c.HSM.TokenLabel == "" {
			return fmt.Errorf("%w: hsm.module and hsm.token_label are required for pkcs11", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: hsm.backend must be dev or pkcs11", ErrInvalid)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("%w: tls needs both cert_file and key_file", ErrInvalid)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: data_dir is required", ErrInvalid)
	}
	if c.Listen == "" {
		return fmt.Errorf("%w: listen is required", ErrInvalid)
	}
	if err := c.Jobs.SchedulerConfig().Validate(); err != nil {
		return fmt.Errorf("%w: jobs: %w", ErrInvalid, err)
	}
	if c.KMS.UsageFlushInterval < 0 || c.KMS.RetirementQuietPeriod < 0 {
		return fmt.Errorf("%w: kms.usage_flush_interval and kms.retirement_quiet_period must not be negative", ErrInvalid)
	}
	if c.KMS.effectiveQuietPeriod() <= c.KMS.effectiveFlushInterval() {
		return fmt.Errorf("%w: kms.retirement_quiet_period (%s) must be longer than kms.usage_flush_interval (%s), "+
			"which bounds how late other replicas' decryptions are seen", ErrInvalid, c.KMS.effectiveQuietPeriod(), c.KMS.effectiveFlushInterval())
	}
	if c.AWS.AccountID != "" && !awsapi.ValidAccountID(c.AWS.AccountID) {
		return fmt.Errorf("%w: aws.account_id must be 12 digits", ErrInvalid)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return fmt.Errorf("%w: log.format must be json or text", ErrInvalid)
	}
	return nil
}

func (k KMSConfig) effectiveFlushInterval() time.Duration {
	if k.UsageFlushInterval == 0 {
		return kms.DefaultUsageFlushInterval
	}
	return k.UsageFlushInterval
}

func (k KMSConfig) effectiveQuietPeriod() time.Duration {
	if k.RetirementQuietPeriod == 0 {
		return kms.DefaultRetirementQuietPeriod
	}
	return k.RetirementQuietPeriod
}

// SchedulerConfig returns the jobs.Config of j (without logger, metrics or audit).
func (j JobsConfig) SchedulerConfig() jobs.Config {
	return jobs.Config{DestroySchedule: j.DestroySchedule, RotateSchedule: j.RotateSchedule,
		OrphanSchedule: j.OrphanSchedule, Timeout: j.Timeout}
}

// Path returns p, or <data_dir>/def when p is empty.
func (c Config) Path(p, def string) string {
	if p != "" {
		return p
	}
	return filepath.Join(c.DataDir, def)
}
