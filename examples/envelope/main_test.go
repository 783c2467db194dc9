package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// startKMS starts a real in-process kmsd and points the KMS_* environment
// at it, as a user would after `make run`.
func startKMS(t *testing.T) *kmstest.Server {
	t.Helper()
	srv := kmstest.Start(t)
	t.Setenv("KMS_ENDPOINT", srv.URL)
	t.Setenv("KMS_ACCESS_KEY_ID", srv.AccessKeyID)
	t.Setenv("KMS_SECRET_ACCESS_KEY", srv.SecretAccessKey)
	t.Setenv("KMS_REGION", srv.Region)
	return srv
}

func TestRun(t *testing.T) {
	srv := startKMS(t)
	ctx := context.Background()
	dir := t.TempDir()
	input := filepath.Join(dir, "report.csv")
	secretData := strings.Repeat("id,email\n1,alice@example.com\n", 50)
	if err := os.WriteFile(input, []byte(secretData), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file kmsd writes on first start has this shape (no endpoint).
	creds := filepath.Join(dir, "admin-credentials.json")
	b, _ := json.Marshal(map[string]string{"access_key_id": srv.AccessKeyID, "secret_access_key": srv.SecretAccessKey, "region": srv.Region})
	if err := os.WriteFile(creds, b, 0o600); err != nil {
		t.Fatal(err)
	}

	keyLine := regexp.MustCompile(`(?m)^master key alias/examples-envelope -> (\S+) \((created|reused)\)$`)
	var keyID string
	tests := []struct {
		name    string
		args    []string
		env     bool // keep KMS_ACCESS_KEY_ID/SECRET in the environment
		created string
		want    []string
		envOut  string // --out path whose content is checked
		secret  string // must not appear in the envelope
	}{
		{name: "text, first run creates the key", env: true, created: "created",
			args: []string{"--text", "top secret text", "--out", filepath.Join(dir, "t.json")},
			want: []string{"decrypted: top secret text\n", "refused (InvalidCiphertext)"}, envOut: filepath.Join(dir, "t.json"), secret: "top secret text"},
		{name: "file via credentials file, key reused", created: "reused",
			args: []string{"--credentials", creds, "--endpoint", srv.URL, "--in", input, "--out", filepath.Join(dir, "f.json")},
			want: []string{"decrypted 1450 bytes, sha256 "}, envOut: filepath.Join(dir, "f.json"), secret: "alice@example.com"},
		{name: "default text, temp envelope", env: true, created: "reused",
			want: []string{"decrypted: hello, envelope encryption\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.env {
				t.Setenv("KMS_ACCESS_KEY_ID", "")
				t.Setenv("KMS_SECRET_ACCESS_KEY", "")
			}
			var out bytes.Buffer
			if err := run(ctx, tc.args, &out); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			m := keyLine.FindStringSubmatch(out.String())
			if m == nil || m[2] != tc.created {
				t.Fatalf("output has no %q master key line:\n%s", tc.created, out.String())
			}
			if keyID == "" {
				keyID = m[1]
			} else if m[1] != keyID {
				t.Fatalf("alias resolved to %s, first run created %s", m[1], keyID)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tc.envOut == "" {
				return
			}
			raw, err := os.ReadFile(tc.envOut)
			if err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(tc.envOut); fi.Mode().Perm() != 0o600 {
				t.Errorf("envelope mode %v, want 0600", fi.Mode().Perm())
			}
			var env Envelope
			if err := json.Unmarshal(raw, &env); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(raw, []byte(tc.secret)) || bytes.Contains(env.Ciphertext, []byte(tc.secret)) {
				t.Fatal("the envelope holds the plaintext")
			}
			if env.KeyID != keyID || len(env.EncryptedDataKey) == 0 || len(env.Nonce) != 12 {
				t.Fatalf("envelope = %+v", env)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	ctx := context.Background()
	t.Setenv("KMS_ACCESS_KEY_ID", "")
	t.Setenv("KMS_SECRET_ACCESS_KEY", "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no credentials", nil, "no credentials"},
		{"missing credentials file", []string{"--credentials", filepath.Join(t.TempDir(), "nope.json")}, "no such file"},
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(ctx, tc.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// An application runs with a limited access key on a key its admin created:
// it may not look the alias up, and it may not touch other keys.
func TestRunWithAppKey(t *testing.T) {
	srv := startKMS(t)
	ctx := context.Background()
	for _, alias := range []string{"alias/orders-files", "alias/billing-files"} {
		if st, body := srv.Do(t, "POST", "/v1/keys", map[string]string{"alias": alias}); st != 201 {
			t.Fatalf("create %s: %d %s", alias, st, body)
		}
	}
	id, secret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow",
		"actions":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"resources":["alias/orders-*"]}]}`)
	t.Setenv("KMS_ACCESS_KEY_ID", id)
	t.Setenv("KMS_SECRET_ACCESS_KEY", secret)

	tests := []struct {
		key     string
		denied  bool
		wantOut string
	}{
		{"alias/orders-files", false, "master key alias/orders-files (these credentials may not look it up: using it as is)\n"},
		{"alias/billing-files", true, ""},
		{"alias/orders-missing", true, ""}, // creating keys is not allowed either
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			var out bytes.Buffer
			err := run(ctx, []string{"--key", tc.key, "--text", "app data"}, &out)
			if tc.denied {
				if !errors.Is(err, kmsclient.ErrAccessDenied) {
					t.Fatalf("err = %v, want AccessDenied\n%s", err, out.String())
				}
				if strings.Contains(out.String(), "wrote") {
					t.Fatalf("wrote an envelope without a data key:\n%s", out.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			for _, w := range []string{tc.wantOut, "decrypted: app data\n"} {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
