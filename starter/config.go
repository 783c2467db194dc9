package starter

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts every environment override: KMSGO_ followed by the YAML
// path in upper case joined by "_" (kms.endpoint is KMSGO_KMS_ENDPOINT).
const EnvPrefix = "KMSGO_"

// Settings is the content of the starter's YAML file (see
// kmsgo.example.yaml, which documents every key). Secrets (fields marked
// "secret" below) are never read from the YAML file: only from a KMSGO_*
// variable or from the 0600 file named by the matching *_file key.
type Settings struct {
	KMS      KMSSettings      `koanf:"kms"`
	Config   ConfigSettings   `koanf:"config"`
	Database DatabaseSettings `koanf:"database"`
	Log      LogSettings      `koanf:"log"`
}

// KMSSettings configure the kmsd client.
type KMSSettings struct {
	Endpoint    string `koanf:"endpoint"`
	Region      string `koanf:"region"`
	AccessKeyID string `koanf:"access_key_id"`
	// SecretAccessKey is secret: KMSGO_KMS_SECRET_ACCESS_KEY or
	// CredentialsFile only.
	SecretAccessKey string `koanf:"secret_access_key" secret:"credentials_file"`
	// CredentialsFile is a JSON file {"access_key_id", "secret_access_key"
	// [, "region", "endpoint"]} with mode 0600 or 0400, such as the
	// admin-credentials.json kmsd writes on first start.
	CredentialsFile string        `koanf:"credentials_file"`
	Timeout         time.Duration `koanf:"timeout"`
	MaxRetries      int           `koanf:"max_retries"`
	SendNonce       bool          `koanf:"send_nonce"`
	TLS             TLSSettings   `koanf:"tls"`
}

// TLSSettings configure a TLS client.
type TLSSettings struct {
	CAFile             string `koanf:"ca_file"`
	CertFile           string `koanf:"cert_file"`
	KeyFile            string `koanf:"key_file"`
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"`
}

func (t TLSSettings) enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify
}

// ConfigSettings configure the config center (package configcenter).
type ConfigSettings struct {
	// Sources lists the sources to read, in merge order (a later one wins):
	// any of "file", "etcd", "nacos". Empty: no config center.
	Sources           []string          `koanf:"sources"`
	File              FileSettings      `koanf:"file"`
	Etcd              EtcdSettings      `koanf:"etcd"`
	Nacos             NacosSettings     `koanf:"nacos"`
	MarkerPrefix      string            `koanf:"marker_prefix"`
	MarkerSuffix      string            `koanf:"marker_suffix"`
	EmbeddedMarkers   bool              `koanf:"embedded_markers"`
	EncryptionContext map[string]string `koanf:"encryption_context"`
	DecryptTimeout    time.Duration     `koanf:"decrypt_timeout"`
	// StartTimeout bounds reading and decrypting the first snapshot.
	StartTimeout time.Duration `koanf:"start_timeout"`
}

// FileSettings configure the "file" source.
type FileSettings struct {
	Path         string        `koanf:"path"`
	Format       string        `koanf:"format"`
	PollInterval time.Duration `koanf:"poll_interval"`
}

// EtcdSettings configure the "etcd" source (import
// github.com/kmsgo/kmsgo/starter/etcd).
type EtcdSettings struct {
	Endpoints []string `koanf:"endpoints"`
	// Keys each hold a whole document (format from the key's suffix or
	// Format), merged in order.
	Keys []string `koanf:"keys"`
	// Prefix: every key under it is one config path (prefix + "db/dsn" is
	// "db.dsn"). Applied after Keys.
	Prefix   string `koanf:"prefix"`
	Format   string `koanf:"format"`
	Username string `koanf:"username"`
	// Password is secret: KMSGO_CONFIG_ETCD_PASSWORD or PasswordFile only.
	Password     string        `koanf:"password" secret:"password_file"`
	PasswordFile string        `koanf:"password_file"`
	DialTimeout  time.Duration `koanf:"dial_timeout"`
	TLS          TLSSettings   `koanf:"tls"`
}

// NacosSettings configure the "nacos" source (import
// github.com/kmsgo/kmsgo/starter/nacos).
type NacosSettings struct {
	Servers   []string `koanf:"servers"`
	Namespace string   `koanf:"namespace"`
	Group     string   `koanf:"group"`
	DataIDs   []string `koanf:"data_ids"`
	Username  string   `koanf:"username"`
	// Password is secret: KMSGO_CONFIG_NACOS_PASSWORD or PasswordFile only.
	Password     string `koanf:"password" secret:"password_file"`
	PasswordFile string `koanf:"password_file"`
	AccessKey    string `koanf:"access_key"`
	// SecretKey is secret: KMSGO_CONFIG_NACOS_SECRET_KEY or SecretKeyFile.
	SecretKey     string        `koanf:"secret_key" secret:"secret_key_file"`
	SecretKeyFile string        `koanf:"secret_key_file"`
	Dir           string        `koanf:"dir"`
	Timeout       time.Duration `koanf:"timeout"`
	TLS           TLSSettings   `koanf:"tls"`
}

// DatabaseSettings configure the GORM database.
type DatabaseSettings struct {
	// Driver is "sqlite", "mysql" or "postgres" (import the matching
	// github.com/kmsgo/kmsgo/starter/<driver> package). Empty: no database.
	Driver string `koanf:"driver"`
	// DSN is the data source name; it may be an ENC(...) value.
	DSN string `koanf:"dsn"`
	// DSNPath names a config-center path holding the DSN (it wins over DSN).
	// A change there rotates the connection pool.
	DSNPath string `koanf:"dsn_path"`
	// PasswordPath names a config-center path holding the password, set
	// into the DSN. A change there rotates the connection pool.
	PasswordPath    string        `koanf:"password_path"`
	MaxOpenConns    int           `koanf:"max_open_conns"`
	MaxIdleConns    int           `koanf:"max_idle_conns"`
	ConnMaxLifetime time.Duration `koanf:"conn_max_lifetime"`
	ConnMaxIdleTime time.Duration `koanf:"conn_max_idle_time"`
	PingTimeout     time.Duration `koanf:"ping_timeout"`
	DrainTimeout    time.Duration `koanf:"drain_timeout"`
	ORM             ORMSettings   `koanf:"orm"`
	// Renewal is the database renewal job after master key rotations.
	Renewal RenewalSettings `koanf:"renewal"`
}

// ORMSettings configure ormplugin.
type ORMSettings struct {
	// KeyID is the master key (id or alias) wrapping the data keys. Empty:
	// the plugin is not registered.
	KeyID            string        `koanf:"key_id"`
	MaxKeyAge        time.Duration `koanf:"max_key_age"`
	MaxKeyUses       int64         `koanf:"max_key_uses"`
	MaxKeyBytes      int64         `koanf:"max_key_bytes"`
	DecryptCacheSize int           `koanf:"decrypt_cache_size"`
	DecryptCacheTTL  time.Duration `koanf:"decrypt_cache_ttl"`
}

// LogSettings configure the default logger (ignored with WithLogger).
type LogSettings struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // text or json
}

// Defaults returns the settings used where neither the file nor the
// environment says otherwise.
func Defaults() Settings {
	return Settings{
		KMS: KMSSettings{Region: "local", Timeout: 10 * time.Second},
		Config: ConfigSettings{
			File:           FileSettings{PollInterval: time.Second},
			Etcd:           EtcdSettings{DialTimeout: 5 * time.Second},
			Nacos:          NacosSettings{Group: "DEFAULT_GROUP", Timeout: 10 * time.Second},
			DecryptTimeout: 30 * time.Second,
			StartTimeout:   time.Minute,
		},
		Database: DatabaseSettings{
			MaxOpenConns: 10, MaxIdleConns: 5, ConnMaxLifetime: 30 * time.Minute,
			PingTimeout: 5 * time.Second, DrainTimeout: 30 * time.Second,
		},
		Log: LogSettings{Level: "info", Format: "text"},
	}
}

// envField is one settable leaf of Settings.
type envField struct {
	path   string // koanf path, e.g. kms.endpoint
	env    string // KMSGO_KMS_ENDPOINT
	secret bool
	file   string // for a secret: the path of the key naming its file
}

// fields lists every leaf of Settings with its path and variable name.
func fields() []envField {
	var out []envField
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("koanf")
			if tag == "" || tag == "-" {
				continue
			}
			p := tag
			if prefix != "" {
				p = prefix + "." + tag
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(f.Type, p)
				continue
			}
			ef := envField{path: p, env: EnvPrefix + strings.ToUpper(strings.ReplaceAll(p, ".", "_"))}
			if sib := f.Tag.Get("secret"); sib != "" {
				ef.secret, ef.file = true, sib
				if prefix != "" {
					ef.file = prefix + "." + sib
				}
			}
			out = append(out, ef)
		}
	}
	walk(reflect.TypeFor[Settings](), "")
	return out
}

// EnvNames lists every KMSGO_* variable LoadSettings honours, sorted.
func EnvNames() []string {
	var out []string
	for _, f := range fields() {
		out = append(out, f.env)
	}
	sort.Strings(out)
	return out
}

// LoadSettings returns Defaults overlaid by the YAML document data (may be
// empty) and then by KMSGO_* variables from environ (os.Environ() form,
// "NAME=value"). name is used in errors. Unknown keys and unknown KMSGO_*
// variables are errors; a secret in the YAML document is an error; secret
// files are read and checked (mode 0600 or 0400).
func LoadSettings(name string, data []byte, environ []string) (Settings, error) {
	all := fields()
	k := koanf.New(".")
	if len(data) > 0 {
		if err := k.Load(rawbytes.Provider(data), yaml.Parser()); err != nil {
			return Settings{}, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
		}
	}
	for _, f := range all {
		if f.secret && k.Exists(f.path) {
			return Settings{}, fmt.Errorf("%w: %s: %s must not be in a config file; set %s or %s (a 0600 file)",
				ErrCredentials, name, f.path, f.env, f.file)
		}
	}
	byEnv := map[string]envField{}
	for _, f := range all {
		byEnv[f.env] = f
	}
	env := map[string]any{}
	for _, kv := range environ {
		n, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(n, EnvPrefix) {
			continue
		}
		f, known := byEnv[n]
		if !known {
			return Settings{}, fmt.Errorf("%w: unknown variable %s (see starter.EnvNames)", ErrConfig, n)
		}
		if strings.HasSuffix(f.path, "encryption_context") {
			m := map[string]any{}
			for _, pair := range strings.Split(v, ",") {
				if pair == "" {
					continue
				}
				a, b, ok := strings.Cut(pair, "=")
				if !ok {
					return Settings{}, fmt.Errorf("%w: %s: want k=v,k2=v2", ErrConfig, n)
				}
				m[strings.TrimSpace(a)] = strings.TrimSpace(b)
			}
			env[f.path] = m
			continue
		}
		env[f.path] = v
	}
	if err := k.Load(confmap.Provider(env, "."), nil); err != nil {
		return Settings{}, fmt.Errorf("%w: environment: %v", ErrConfig, err)
	}
	s := Defaults()
	err := k.UnmarshalWithConf("", &s, koanf.UnmarshalConf{Tag: "koanf", DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		Result:           &s,
		TagName:          "koanf",
	}})
	if err != nil {
		return Settings{}, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	if err := s.readSecrets(); err != nil {
		return Settings{}, err
	}
	if err := s.validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// LoadFile reads the YAML file at path (a missing file is an error) and
// applies os.Environ() overrides.
func LoadFile(path string) (Settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Settings{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return LoadSettings(path, data, os.Environ())
}

func (s *Settings) readSecrets() error {
	if s.KMS.CredentialsFile != "" {
		c, err := readCredentialsFile(s.KMS.CredentialsFile)
		if err != nil {
			return err
		}
		if s.KMS.AccessKeyID == "" {
			s.KMS.AccessKeyID = c.AccessKeyID
		}
		if s.KMS.SecretAccessKey == "" {
			s.KMS.SecretAccessKey = c.SecretAccessKey
		}
		if s.KMS.Endpoint == "" {
			s.KMS.Endpoint = c.Endpoint
		}
		if c.Region != "" && s.KMS.Region == "local" {
			s.KMS.Region = c.Region
		}
	}
	for _, p := range []struct {
		val  *string
		file string
		key  string
	}{
		{&s.Config.Etcd.Password, s.Config.Etcd.PasswordFile, "config.etcd.password_file"},
		{&s.Config.Nacos.Password, s.Config.Nacos.PasswordFile, "config.nacos.password_file"},
		{&s.Config.Nacos.SecretKey, s.Config.Nacos.SecretKeyFile, "config.nacos.secret_key_file"},
	} {
		if p.file == "" || *p.val != "" {
			continue
		}
		v, err := readSecretFile(p.file)
		if err != nil {
			return fmt.Errorf("%s: %w", p.key, err)
		}
		*p.val = v
	}
	return nil
}

func (s *Settings) validate() error {
	bad := func(path, why string) error { return fmt.Errorf("%w: %s: %s", ErrConfig, path, why) }
	if s.KMS.Endpoint == "" {
		return bad("kms.endpoint", "required")
	}
	if s.KMS.AccessKeyID == "" || s.KMS.SecretAccessKey == "" {
		return fmt.Errorf("%w: kms: access key id and secret are required (KMSGO_KMS_ACCESS_KEY_ID and KMSGO_KMS_SECRET_ACCESS_KEY, or kms.credentials_file)", ErrCredentials)
	}
	seen := map[string]bool{}
	for _, src := range s.Config.Sources {
		if seen[src] {
			return bad("config.sources", "lists "+src+" twice")
		}
		seen[src] = true
		switch src {
		case "file":
			if s.Config.File.Path == "" {
				return bad("config.file.path", "required by source file")
			}
		case "etcd":
			if len(s.Config.Etcd.Endpoints) == 0 || (len(s.Config.Etcd.Keys) == 0 && s.Config.Etcd.Prefix == "") {
				return bad("config.etcd", "endpoints and keys or prefix are required by source etcd")
			}
		case "nacos":
			if len(s.Config.Nacos.Servers) == 0 || len(s.Config.Nacos.DataIDs) == 0 || s.Config.Nacos.Dir == "" {
				return bad("config.nacos", "servers, data_ids and dir are required by source nacos")
			}
		default:
			if !slices.Contains(registeredSources(), src) {
				return bad("config.sources", "unknown source "+src)
			}
		}
	}
	d := s.Database
	if d.Driver != "" {
		if d.DSN == "" && d.DSNPath == "" {
			return bad("database.dsn", "dsn or dsn_path is required with a driver")
		}
		if (d.DSNPath != "" || d.PasswordPath != "") && len(s.Config.Sources) == 0 {
			return bad("database.dsn_path", "needs config.sources")
		}
	}
	if err := d.Renewal.validate(d); err != nil {
		return err
	}
	switch strings.ToLower(s.Log.Format) {
	case "", "text", "json":
	default:
		return bad("log.format", "text or json")
	}
	return nil
}
