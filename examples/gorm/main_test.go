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

func TestRun(t *testing.T) {
	srv := kmstest.Start(t)
	ctx := context.Background()
	creds := filepath.Join(t.TempDir(), "admin-credentials.json")
	b, _ := json.Marshal(map[string]string{"access_key_id": srv.AccessKeyID, "secret_access_key": srv.SecretAccessKey, "region": srv.Region})
	if err := os.WriteFile(creds, b, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"environment", map[string]string{"KMS_ENDPOINT": srv.URL, "KMS_ACCESS_KEY_ID": srv.AccessKeyID,
			"KMS_SECRET_ACCESS_KEY": srv.SecretAccessKey, "KMS_REGION": srv.Region}, nil},
		{"credentials file, second run reuses the key", map[string]string{"KMS_ENDPOINT": srv.URL, "KMS_ACCESS_KEY_ID": "", "KMS_SECRET_ACCESS_KEY": ""},
			[]string{"--credentials", creds}},
	}
	var keyID string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var buf bytes.Buffer
			if err := run(ctx, tc.args, &buf); err != nil {
				t.Fatalf("run: %v\n%s", err, buf.String())
			}
			out := buf.String()
			m := regexp.MustCompile(`(?m)^master key alias/examples-users -> (\S+)$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no master key line:\n%s", out)
			}
			if keyID == "" {
				keyID = m[1]
			} else if keyID != m[1] {
				t.Fatalf("key %s, want the one from the first run %s", m[1], keyID)
			}
			struct_, row, ok := strings.Cut(out, "database row holds:\n")
			if !ok {
				t.Fatalf("no database row section:\n%s", out)
			}
			for _, want := range []string{"created 2 users\n", "found by email: id=1 name=Alice\n",
				"  email      = alice@example.com\n", "  phone      = +1 555 0100\n"} {
				if !strings.Contains(struct_, want) {
					t.Errorf("struct section lacks %q:\n%s", want, out)
				}
			}
			for _, re := range []string{`(?m)^  email      = kms1:[A-Za-z0-9_-]{70,}$`, `(?m)^  email_bidx = [0-9a-f]{64}$`,
				`(?m)^  phone      = kms1:[A-Za-z0-9_-]{40,}$`} {
				if !regexp.MustCompile(re).MatchString(row) {
					t.Errorf("row section does not match %s:\n%s", re, row)
				}
			}
			if strings.Contains(row, "alice@example.com") || strings.Contains(row, "555 0100") {
				t.Errorf("the database row holds plaintext:\n%s", row)
			}
			for _, want := range []string{"bob: email=bob@example.com phone=NULL\n", "users with carol@example.com: 0\n"} {
				if !strings.Contains(row, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestRunFailsClosed(t *testing.T) {
	ctx := context.Background()
	srv := kmstest.Start(t)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no credentials", map[string]string{"KMS_ACCESS_KEY_ID": "", "KMS_SECRET_ACCESS_KEY": ""}, "no credentials"},
		{"wrong secret", map[string]string{"KMS_ENDPOINT": srv.URL, "KMS_ACCESS_KEY_ID": srv.AccessKeyID, "KMS_SECRET_ACCESS_KEY": "wrong"}, "unauthenticated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var buf bytes.Buffer
			err := run(ctx, nil, &buf)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(buf.String(), "created") {
				t.Fatalf("wrote users without a working KMS:\n%s", buf.String())
			}
		})
	}
}

// The same program with an application's limited access key, on a key its
// admin created: allowed on alias/orders-*, refused elsewhere (and then
// nothing is written).
func TestRunWithAppKey(t *testing.T) {
	srv := kmstest.Start(t)
	ctx := context.Background()
	for _, alias := range []string{"alias/orders-users", "alias/billing-users"} {
		if st, body := srv.Do(t, "POST", "/v1/keys", map[string]string{"alias": alias}); st != 201 {
			t.Fatalf("create %s: %d %s", alias, st, body)
		}
	}
	id, secret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow",
		"actions":["kms:Decrypt","kms:GenerateDataKey*"],"resources":["alias/orders-*"]}]}`)
	t.Setenv("KMS_ENDPOINT", srv.URL)
	t.Setenv("KMS_ACCESS_KEY_ID", id)
	t.Setenv("KMS_SECRET_ACCESS_KEY", secret)
	tests := []struct {
		key    string
		denied bool
	}{
		{"alias/orders-users", false},
		{"alias/billing-users", true},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			var buf bytes.Buffer
			err := run(ctx, []string{"--key", tc.key}, &buf)
			if tc.denied {
				if !errors.Is(err, kmsclient.ErrAccessDenied) || strings.Contains(buf.String(), "created 2 users") {
					t.Fatalf("err = %v, want AccessDenied before any write:\n%s", err, buf.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v\n%s", err, buf.String())
			}
			for _, w := range []string{"(these credentials may not look it up: using it as is)\n", "found by email: id=1 name=Alice\n"} {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, buf.String())
				}
			}
		})
	}
}
