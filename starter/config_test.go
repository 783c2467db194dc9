package starter_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kmsgo/kmsgo/starter"
)

var creds = []string{"KMSGO_KMS_ACCESS_KEY_ID=AK1", "KMSGO_KMS_SECRET_ACCESS_KEY=s3cr3t-value"}

func TestLoadSettings(t *testing.T) {
	dir := t.TempDir()
	credFile := func(mode os.FileMode) string {
		p := filepath.Join(dir, "creds-"+mode.String()+".json")
		if err := os.WriteFile(p, []byte(`{"access_key_id":"AKF","secret_access_key":"file-secret","region":"r1","endpoint":"http://kms:1"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secretFile := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("etcd-pw\n"), mode); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(p, mode)
		return p
	}
	tests := []struct {
		name    string
		yaml    string
		env     []string
		wantErr error
		check   func(t *testing.T, s starter.Settings)
	}{
		{name: "defaults and env", yaml: "kms:\n  endpoint: http://127.0.0.1:8400\n", env: creds, check: func(t *testing.T, s starter.Settings) {
			if s.KMS.Endpoint != "http://127.0.0.1:8400" || s.KMS.AccessKeyID != "AK1" || s.KMS.SecretAccessKey != "s3cr3t-value" {
				t.Fatalf("kms = %+v", s.KMS)
			}
			if s.KMS.Timeout != 10*time.Second || s.Database.DrainTimeout != 30*time.Second || s.Log.Level != "info" {
				t.Fatalf("defaults lost: %+v", s)
			}
		}},
		{name: "env beats file, typed values", yaml: `
kms: {endpoint: "http://a:1", timeout: 3s}
config:
  sources: [file]
  file: {path: /x.yaml}
database: {driver: sqlite, dsn: "file:a.db", max_open_conns: 3}
`, env: append(slices.Clone(creds), "KMSGO_KMS_ENDPOINT=http://b:2", "KMSGO_KMS_TIMEOUT=7s",
			"KMSGO_DATABASE_MAX_OPEN_CONNS=9", "KMSGO_CONFIG_SOURCES=file,etcd", "KMSGO_CONFIG_ETCD_ENDPOINTS=e1:2379,e2:2379",
			"KMSGO_CONFIG_ETCD_PREFIX=/app/", "KMSGO_CONFIG_ENCRYPTION_CONTEXT=app=orders,env=prod", "KMSGO_KMS_SEND_NONCE=true"),
			check: func(t *testing.T, s starter.Settings) {
				if s.KMS.Endpoint != "http://b:2" || s.KMS.Timeout != 7*time.Second || !s.KMS.SendNonce {
					t.Fatalf("kms = %+v", s.KMS)
				}
				if s.Database.MaxOpenConns != 9 || s.Database.Driver != "sqlite" {
					t.Fatalf("database = %+v", s.Database)
				}
				if !slices.Equal(s.Config.Sources, []string{"file", "etcd"}) || !slices.Equal(s.Config.Etcd.Endpoints, []string{"e1:2379", "e2:2379"}) {
					t.Fatalf("config = %+v", s.Config)
				}
				if s.Config.EncryptionContext["env"] != "prod" || s.Config.EncryptionContext["app"] != "orders" {
					t.Fatalf("context = %v", s.Config.EncryptionContext)
				}
			}},
		{name: "unknown key", yaml: "kms: {endpoint: http://a:1, endpiont: x}\n", env: creds, wantErr: starter.ErrConfig},
		{name: "unknown variable", yaml: "kms: {endpoint: http://a:1}\n", env: append(slices.Clone(creds), "KMSGO_KMS_ENDPIONT=x"), wantErr: starter.ErrConfig},
		{name: "bad duration", yaml: "kms: {endpoint: http://a:1, timeout: soon}\n", env: creds, wantErr: starter.ErrConfig},
		{name: "secret in file refused", yaml: "kms: {endpoint: http://a:1, access_key_id: AK, secret_access_key: x}\n", wantErr: starter.ErrCredentials},
		{name: "etcd password in file refused", yaml: "kms: {endpoint: http://a:1}\nconfig: {etcd: {password: x}}\n", env: creds, wantErr: starter.ErrCredentials},
		{name: "nacos secret key in file refused", yaml: "kms: {endpoint: http://a:1}\nconfig: {nacos: {secret_key: x}}\n", env: creds, wantErr: starter.ErrCredentials},
		{name: "missing credentials", yaml: "kms: {endpoint: http://a:1}\n", wantErr: starter.ErrCredentials},
		{name: "credentials file 0600", yaml: "kms: {credentials_file: " + credFile(0o600) + "}\n", check: func(t *testing.T, s starter.Settings) {
			if s.KMS.AccessKeyID != "AKF" || s.KMS.SecretAccessKey != "file-secret" || s.KMS.Endpoint != "http://kms:1" || s.KMS.Region != "r1" {
				t.Fatalf("kms = %+v", s.KMS)
			}
		}},
		{name: "credentials file 0400", yaml: "kms: {credentials_file: " + credFile(0o400) + "}\n"},
		{name: "credentials file 0644 refused", yaml: "kms: {credentials_file: " + credFile(0o644) + "}\n", wantErr: starter.ErrCredentials},
		{name: "credentials file 0640 refused", yaml: "kms: {credentials_file: " + credFile(0o640) + "}\n", wantErr: starter.ErrCredentials},
		{name: "password file", yaml: "kms: {endpoint: http://a:1}\nconfig: {etcd: {password_file: " + secretFile("pw", 0o600) + "}}\n", env: creds,
			check: func(t *testing.T, s starter.Settings) {
				if s.Config.Etcd.Password != "etcd-pw" {
					t.Fatalf("password not read from file")
				}
			}},
		{name: "password file 0604 refused", yaml: "kms: {endpoint: http://a:1}\nconfig: {etcd: {password_file: " + secretFile("pw2", 0o604) + "}}\n", env: creds, wantErr: starter.ErrCredentials},
		{name: "source without settings", yaml: "kms: {endpoint: http://a:1}\nconfig: {sources: [etcd]}\n", env: creds, wantErr: starter.ErrConfig},
		{name: "dsn_path without sources", yaml: "kms: {endpoint: http://a:1}\ndatabase: {driver: sqlite, dsn_path: db.dsn}\n", env: creds, wantErr: starter.ErrConfig},
		{name: "driver without dsn", yaml: "kms: {endpoint: http://a:1}\ndatabase: {driver: sqlite}\n", env: creds, wantErr: starter.ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := starter.LoadSettings("test.yaml", []byte(tc.yaml), tc.env)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				for _, secret := range []string{"s3cr3t-value", "file-secret", "etcd-pw"} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error leaks a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

// The example file documents every key: it loads as is (with credentials
// from the environment), every settable key is in it, and every secret is
// named in it by its variable.
func TestExampleFileDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("kmsgo.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := starter.LoadSettings("kmsgo.example.yaml", data, creds); err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	var flatten func(prefix string, m map[string]any)
	flatten = func(prefix string, m map[string]any) {
		for k, v := range m {
			p := prefix + "_" + strings.ToUpper(k)
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && k != "encryption_context" {
				flatten(p, sub)
				continue
			}
			have[p] = true
		}
	}
	flatten("KMSGO", doc)
	for _, n := range starter.EnvNames() {
		if !have[n] && !strings.Contains(string(data), n) {
			t.Errorf("%s is not documented in kmsgo.example.yaml", n)
		}
	}
}
