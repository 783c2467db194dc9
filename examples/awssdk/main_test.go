package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

func TestRun(t *testing.T) {
	srv := kmstest.Start(t)
	ctx := context.Background()
	creds := filepath.Join(t.TempDir(), "admin-credentials.json")
	b, _ := json.Marshal(map[string]string{"access_key_id": srv.AccessKeyID, "secret_access_key": srv.SecretAccessKey, "region": srv.Region})
	if err := os.WriteFile(creds, b, 0o600); err != nil {
		t.Fatal(err)
	}
	keyLine := regexp.MustCompile(`(?m)^master key alias/examples-awssdk -> (arn:aws:kms:local:000000000000:key/[0-9a-f-]{36}) \(created (true|false)\)$`)
	var arn string
	for i, tc := range []struct {
		name    string
		args    []string
		env     bool
		created string
	}{
		{"credentials file, first run creates the key", []string{"--credentials", creds, "--endpoint", srv.URL, "--text", "top secret"}, false, "true"},
		{"AWS environment, key reused", []string{"--endpoint", srv.URL, "--text", "top secret"}, true, "false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env {
				t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKeyID)
				t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretAccessKey)
				t.Setenv("AWS_REGION", srv.Region)
			}
			var out bytes.Buffer
			if err := run(ctx, tc.args, &out, srv.HTTP.Client()); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			m := keyLine.FindStringSubmatch(out.String())
			if m == nil || m[2] != tc.created {
				t.Fatalf("no master key line with created %s:\n%s", tc.created, out.String())
			}
			if i == 0 {
				arn = m[1]
			} else if m[1] != arn {
				t.Fatalf("alias names %s, first run created %s", m[1], arn)
			}
			for _, w := range []string{"data key from " + arn, "decrypted: top secret\n", "InvalidCiphertextException"} {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestRunWithoutCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	err := run(context.Background(), nil, &bytes.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Fatalf("err = %v", err)
	}
}
