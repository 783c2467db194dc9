// Package examples_test runs examples/cli.sh with a freshly built kmsctl
// against a real in-process kmsd, so that the commands the README shows stay
// true. The Go examples are tested next to their code (main_test.go).
package examples_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// buildKmsctl builds cmd/kmsctl into a temp dir.
func buildKmsctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kmsctl")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/kmsgo/kmsgo/cmd/kmsctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go build kmsctl: %v\n%s", err, out)
	}
	return bin
}

// runScript runs cli.sh with a clean environment: a private HOME (for the
// kmsctl profile) and no inherited KMS_* variables.
func runScript(t *testing.T, home string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "cli.sh")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCLIScript(t *testing.T) {
	srv := kmstest.Start(t)
	kmsctl := buildKmsctl(t)
	dir := t.TempDir()
	creds := filepath.Join(dir, "admin-credentials.json")
	b, _ := json.Marshal(map[string]string{"access_key_id": srv.AccessKeyID, "secret_access_key": srv.SecretAccessKey, "region": srv.Region})
	if err := os.WriteFile(creds, b, 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	env := []string{"KMSCTL=" + kmsctl, "CREDENTIALS=" + creds, "KMS_ENDPOINT=" + srv.URL}

	admin, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID,
		SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	encRe := regexp.MustCompile(`(?m)^ENC\(([A-Za-z0-9+/=]+)\)$`)
	akRe := regexp.MustCompile(`(?m)^Access key ID:\s+(\S+)$`)
	skRe := regexp.MustCompile(`(?m)^Secret access key:\s+(\S+)$`)

	var keyID string
	for run := 1; run <= 2; run++ { // the second run must reuse the key
		out, err := runScript(t, home, env...)
		if err != nil {
			t.Fatalf("run %d: cli.sh: %v\n%s", run, err, out)
		}
		if strings.Contains(out, srv.SecretAccessKey) {
			t.Fatalf("run %d: the admin secret was printed:\n%s", run, out)
		}
		// The profile was saved with mode 0600.
		fi, err := os.Stat(filepath.Join(home, ".config", "kmsgo", "credentials"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("run %d: profile file: %v, %v", run, fi, err)
		}
		a, err := admin.GetAlias(ctx, "alias/orders-config")
		if err != nil {
			t.Fatalf("run %d: alias not created: %v\n%s", run, err, out)
		}
		if keyID == "" {
			keyID = a.KeyID
		} else if a.KeyID != keyID {
			t.Fatalf("run %d created another key (%s, first %s)", run, a.KeyID, keyID)
		}
		if !regexp.MustCompile(`(?m)^Key ID:\s+` + regexp.QuoteMeta(keyID) + `$`).MatchString(out) {
			t.Errorf("run %d: key id not shown:\n%s", run, out)
		}
		if reused := strings.Contains(out, "(already there: reused)"); reused != (run == 2) {
			t.Errorf("run %d: reused = %v:\n%s", run, reused, out)
		}

		// The ENC value decrypts to the secret.
		m := encRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("run %d: no ENC(...) line:\n%s", run, out)
		}
		blob, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			t.Fatal(err)
		}
		dec, err := admin.Decrypt(ctx, blob, nil)
		if err != nil || string(dec.Plaintext) != "s3cret-db-password" || dec.KeyID != keyID {
			t.Fatalf("run %d: ENC value: %+v, %v", run, dec, err)
		}

		// The app access key can use orders-* keys and nothing else.
		ak, sk := akRe.FindStringSubmatch(out), skRe.FindStringSubmatch(out)
		if ak == nil || sk == nil {
			t.Fatalf("run %d: no access key in the output:\n%s", run, out)
		}
		app, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: ak[1], SecretAccessKey: sk[1], Region: srv.Region})
		if err != nil {
			t.Fatal(err)
		}
		if dec, err := app.Decrypt(ctx, blob, nil); err != nil || string(dec.Plaintext) != "s3cret-db-password" {
			t.Fatalf("run %d: app key cannot decrypt its config: %v", run, err)
		}
		if _, err := app.GenerateDataKey(ctx, "alias/orders-config", nil); err != nil {
			t.Fatalf("run %d: app key GenerateDataKey: %v", run, err)
		}
		if _, err := app.CreateKey(ctx, kmsclient.CreateKeyInput{}); !errors.Is(err, kmsclient.ErrAccessDenied) {
			t.Fatalf("run %d: app key CreateKey: err = %v, want AccessDenied", run, err)
		}
		if !regexp.MustCompile(`(?m)^== audit\nOK: \d+ records verified, chains intact \(\d+ anchors checked\)$`).MatchString(out) {
			t.Errorf("run %d: audit verify output:\n%s", run, out)
		}
	}
}

func TestCLIScriptFailsFast(t *testing.T) {
	srv := kmstest.Start(t)
	kmsctl := buildKmsctl(t)
	dir := t.TempDir()
	tests := []struct {
		name  string
		creds string // file content; "" means the file is missing
		want  string
	}{
		{"missing credentials file", "", "no such file"},
		{"wrong secret", `{"access_key_id":"` + srv.AccessKeyID + `","secret_access_key":"wrong","region":"local"}`, "nauthenticated"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			creds := filepath.Join(dir, "creds"+string(rune('a'+i))+".json")
			if tc.creds != "" {
				if err := os.WriteFile(creds, []byte(tc.creds), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out, err := runScript(t, filepath.Join(dir, "home"+string(rune('a'+i))),
				"KMSCTL="+kmsctl, "CREDENTIALS="+creds, "KMS_ENDPOINT="+srv.URL)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("cli.sh: err = %v, want failure mentioning %q:\n%s", err, tc.want, out)
			}
			if strings.Contains(out, "ENC(") || strings.Contains(out, "== app access key") {
				t.Fatalf("script went on after the failure:\n%s", out)
			}
		})
	}
}
