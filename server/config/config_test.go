package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "kmsd.yaml")
	yaml := `
listen: 0.0.0.0:9000
region: eu-1
database:
  driver: postgres
  dsn: postgres://x
hsm:
  backend: pkcs11
  module: /usr/lib/softhsm/libsofthsm2.so
  token_label: kms
kms:
  metadata_ttl: 5s
  usage_flush_interval: 30s
jobs:
  destroy_schedule: "@every 30s"
  timeout: 1m
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"KMSD_REGION":                      "us-2",
		"KMSD_AUTH_REQUIRE_NONCE":          "true",
		"KMSD_AUTH_CACHE_TTL":              "750ms",
		"KMSD_TRUSTED_PROXIES":             "10.0.0.1, 10.1.0.0/16",
		"KMSD_LIMITS_MAX_BODY_BYTES":       "1024",
		"KMSD_HSM_POOL_SIZE":               "8",
		"KMSD_JOBS_ENABLED":                "false",
		"KMSD_JOBS_ROTATE_SCHEDULE":        "0 3 * * *",
		"KMSD_KMS_RETIREMENT_QUIET_PERIOD": "72h",
	}
	c, err := Load(file, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Listen = "0.0.0.0:9000"
	want.Region = "us-2"
	want.Database = DatabaseConfig{Driver: "postgres", DSN: "postgres://x"}
	want.HSM.Backend, want.HSM.Module, want.HSM.TokenLabel, want.HSM.PoolSize = "pkcs11", "/usr/lib/softhsm/libsofthsm2.so", "kms", 8
	want.KMS.MetadataTTL = 5 * time.Second
	want.KMS.UsageFlushInterval, want.KMS.RetirementQuietPeriod = 30*time.Second, 72*time.Hour
	want.Auth.RequireNonce, want.Auth.CacheTTL = true, 750*time.Millisecond
	want.Limits.MaxBodyBytes = 1024
	want.TrustedProxies = []string{"10.0.0.1", "10.1.0.0/16"}
	want.Jobs.Enabled, want.Jobs.DestroySchedule, want.Jobs.RotateSchedule, want.Jobs.Timeout = false, "@every 30s", "0 3 * * *", time.Minute
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
}

func TestLoadDefaultsWithoutFile(t *testing.T) {
	c, err := Load("", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Defaults()) || c.Listen != "127.0.0.1:8400" || c.HSM.Backend != "dev" || c.Database.Driver != "sqlite" {
		t.Fatalf("defaults %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, yaml string
		env        map[string]string
	}{
		{"unknown field", "listn: x\n", nil},
		{"wrong type", "hsm:\n  pool_size: many\n", nil},
		{"bad driver", "database:\n  driver: oracle\n", nil},
		{"mysql without dsn", "database:\n  driver: mysql\n", nil},
		{"pkcs11 without token", "hsm:\n  backend: pkcs11\n  module: /x.so\n", nil},
		{"half tls", "tls:\n  key_file: k.pem\n", nil},
		{"bad log format", "log:\n  format: xml\n", nil},
		{"bad job schedule", "jobs:\n  rotate_schedule: every day\n", nil},
		{"job schedule with time zone", "jobs:\n  destroy_schedule: TZ=Europe/Berlin 0 3 * * *\n", nil},
		{"negative job timeout", "jobs:\n  timeout: -1s\n", nil},
		{"bad env job schedule", "", map[string]string{"KMSD_JOBS_ORPHAN_SCHEDULE": "61 * * * *"}},
		{"bad env jobs enabled", "", map[string]string{"KMSD_JOBS_ENABLED": "sometimes"}},
		{"bad env duration", "", map[string]string{"KMSD_KMS_METADATA_TTL": "soon"}},
		{"bad env bool", "", map[string]string{"KMSD_AUTH_REQUIRE_NONCE": "maybe"}},
		{"bad env int", "", map[string]string{"KMSD_HSM_POOL_SIZE": "x"}},
		{"negative usage flush interval", "kms:\n  usage_flush_interval: -1s\n", nil},
		{"quiet period not above flush interval", "kms:\n  usage_flush_interval: 1m\n  retirement_quiet_period: 1m\n", nil},
		{"quiet period below default flush interval", "kms:\n  retirement_quiet_period: 5s\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p, func(k string) string { return tc.env[k] })
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), nil); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestEnvNamesCoverEveryField(t *testing.T) {
	names := EnvNames()
	for _, want := range []string{"KMSD_LISTEN", "KMSD_DATA_DIR", "KMSD_DATABASE_DSN", "KMSD_HSM_TOKEN_LABEL",
		"KMSD_HSM_PIN_FILE", "KMSD_TLS_CERT_FILE", "KMSD_AUDIT_CHAIN_KEY_FILE", "KMSD_KMS_METADATA_TTL", "KMSD_SHUTDOWN_TIMEOUT",
		"KMSD_JOBS_ENABLED", "KMSD_JOBS_DESTROY_SCHEDULE", "KMSD_JOBS_ROTATE_SCHEDULE", "KMSD_JOBS_ORPHAN_SCHEDULE", "KMSD_JOBS_TIMEOUT"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("EnvNames lacks %s", want)
		}
	}
	// Every name really overrides something.
	for _, n := range names {
		c, err := Load("", func(k string) string {
			if k == n {
				switch {
				case strings.HasSuffix(n, "_TTL"), strings.HasSuffix(n, "_SKEW"), strings.HasSuffix(n, "_TIMEOUT"):
					return "7s"
				case strings.Contains(n, "BYTES"), strings.Contains(n, "SIZE"), strings.Contains(n, "CONNS"), strings.Contains(n, "BATCH"):
					return "7"
				case strings.Contains(n, "PROXIES"):
					return "10.0.0.7"
				case strings.Contains(n, "REQUIRE_NONCE"), strings.Contains(n, "CREATE_ROOT"):
					return "true"
				case strings.HasSuffix(n, "JOBS_ENABLED"):
					return "false"
				case strings.HasSuffix(n, "_SCHEDULE"):
					return "@every 7s"
				}
				return "v7"
			}
			return ""
		})
		if err != nil && (strings.Contains(n, "JOBS") || strings.HasSuffix(n, "_TIMEOUT")) {
			t.Errorf("%s: %v", n, err)
		}
		if err == nil && reflect.DeepEqual(c, Defaults()) {
			t.Errorf("%s changed nothing", n)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"listen: a\n", "hsm:\n  backend: pkcs11\n", "kms:\n  metadata_ttl: 2s\n", "[1]", "a: [", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Defaults()
		if err := Parse(bytes.NewReader(data), &c); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("parse error %v is not ErrInvalid", err)
			}
			return
		}
		_ = c.Validate()
	})
}
