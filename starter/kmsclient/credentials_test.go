package kmsclient_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    kmsclient.Config
		wantErr error
	}{
		{"all", map[string]string{"KMS_ENDPOINT": "http://k:1", "KMS_ACCESS_KEY_ID": "AK", "KMS_SECRET_ACCESS_KEY": "SK", "KMS_REGION": "eu"},
			kmsclient.Config{Endpoint: "http://k:1", AccessKeyID: "AK", SecretAccessKey: "SK", Region: "eu"}, nil},
		{"default endpoint", map[string]string{"KMS_ACCESS_KEY_ID": "AK", "KMS_SECRET_ACCESS_KEY": "SK"},
			kmsclient.Config{Endpoint: kmsclient.DefaultEndpoint, AccessKeyID: "AK", SecretAccessKey: "SK"}, nil},
		{"no secret", map[string]string{"KMS_ACCESS_KEY_ID": "AK"}, kmsclient.Config{}, kmsclient.ErrNoCredentials},
		{"nothing", nil, kmsclient.Config{}, kmsclient.ErrNoCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kmsclient.ConfigFromEnv(env(tc.env))
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestLoadCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.json", `{"access_key_id":"AK","secret_access_key":"s3cret","region":"eu"}`, 0o600)
	open := writeFile(t, dir, "open.json", `{"access_key_id":"AK","secret_access_key":"s3cret"}`, 0o644)
	bad := writeFile(t, dir, "bad.json", `{"access_key_id":"AK","secret_access_key":"s3cret"`, 0o600)
	noSecret := writeFile(t, dir, "nosecret.json", `{"access_key_id":"AK"}`, 0o600)
	big := writeFile(t, dir, "big.json", `{"access_key_id":"AK","secret_access_key":"s3cret","region":"`+strings.Repeat("x", 70<<10)+`"}`, 0o600)
	for _, tc := range []struct {
		name    string
		path    string
		want    kmsclient.Profile
		wantErr error
	}{
		{"good", good, kmsclient.Profile{AccessKeyID: "AK", SecretAccessKey: "s3cret", Region: "eu"}, nil},
		{"readable by others", open, kmsclient.Profile{}, kmsclient.ErrInsecureCredentials},
		{"not JSON", bad, kmsclient.Profile{}, kmsclient.ErrInvalidConfig},
		{"no secret", noSecret, kmsclient.Profile{}, kmsclient.ErrInvalidConfig},
		{"too big", big, kmsclient.Profile{}, kmsclient.ErrInvalidConfig},
		{"missing", filepath.Join(dir, "none.json"), kmsclient.Profile{}, fs.ErrNotExist},
		{"directory", dir, kmsclient.Profile{}, kmsclient.ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "directory" {
				_ = os.Chmod(dir, 0o700)
			}
			got, err := kmsclient.LoadCredentialsFile(tc.path)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error quotes the secret: %v", err)
			}
		})
	}
}

func TestLoadProfile(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "credentials", `{"profiles":{
		"default":{"endpoint":"http://d:1","access_key_id":"AKD","secret_access_key":"SKD"},
		"prod":{"endpoint":"https://p:2","access_key_id":"AKP","secret_access_key":"SKP","region":"eu"}}}`, 0o600)
	for _, tc := range []struct {
		name    string
		path    string
		profile string
		env     map[string]string
		want    kmsclient.Profile
		wantErr error
	}{
		{"default", path, "", nil, kmsclient.Profile{Endpoint: "http://d:1", AccessKeyID: "AKD", SecretAccessKey: "SKD"}, nil},
		{"named", path, "prod", nil, kmsclient.Profile{Endpoint: "https://p:2", AccessKeyID: "AKP", SecretAccessKey: "SKP", Region: "eu"}, nil},
		{"KMS_PROFILE", path, "", map[string]string{"KMS_PROFILE": "prod"}, kmsclient.Profile{Endpoint: "https://p:2", AccessKeyID: "AKP", SecretAccessKey: "SKP", Region: "eu"}, nil},
		{"env overlays", path, "prod", map[string]string{"KMS_REGION": "us", "KMS_SECRET_ACCESS_KEY": "SKE"},
			kmsclient.Profile{Endpoint: "https://p:2", AccessKeyID: "AKP", SecretAccessKey: "SKE", Region: "us"}, nil},
		{"missing named profile", path, "nope", nil, kmsclient.Profile{}, kmsclient.ErrInvalidConfig},
		{"path from env", "", "", map[string]string{"KMS_CREDENTIALS_FILE": path},
			kmsclient.Profile{Endpoint: "http://d:1", AccessKeyID: "AKD", SecretAccessKey: "SKD"}, nil},
		{"no file, env only", filepath.Join(dir, "none"), "", map[string]string{"KMS_ACCESS_KEY_ID": "A", "KMS_SECRET_ACCESS_KEY": "S"},
			kmsclient.Profile{AccessKeyID: "A", SecretAccessKey: "S"}, nil},
		{"no file, nothing", filepath.Join(dir, "none"), "", nil, kmsclient.Profile{}, kmsclient.ErrNoCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kmsclient.LoadProfile(tc.path, tc.profile, env(tc.env))
			if !errors.Is(err, tc.wantErr) || (err == nil && got != tc.want) {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestProfileStringHidesSecret(t *testing.T) {
	p := kmsclient.Profile{AccessKeyID: "AK", SecretAccessKey: "s3cret"}
	if s := fmt.Sprint(p); strings.Contains(s, "s3cret") {
		t.Fatalf("String shows the secret: %s", s)
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte(`{"access_key_id":"AK","secret_access_key":"SK","region":"r","endpoint":"http://x"}`))
	f.Add([]byte(`{"access_key_id":"AK"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := kmsclient.ParseCredentials(raw)
		if err != nil {
			if !errors.Is(err, kmsclient.ErrInvalidConfig) {
				t.Fatalf("error %v does not match ErrInvalidConfig", err)
			}
			return
		}
		if p.AccessKeyID == "" || p.SecretAccessKey == "" {
			t.Fatalf("accepted %+v without a key", p)
		}
	})
}

func ExampleConfigFromEnv() {
	env := map[string]string{"KMS_ACCESS_KEY_ID": "AKEXAMPLE", "KMS_SECRET_ACCESS_KEY": "secret"}
	cfg, err := kmsclient.ConfigFromEnv(func(k string) string { return env[k] })
	fmt.Println(cfg.Endpoint, cfg.AccessKeyID, err)
	// Output: http://127.0.0.1:8400 AKEXAMPLE <nil>
}
