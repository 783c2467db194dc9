package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

func TestRun(t *testing.T) {
	srv := kmstest.Start(t)
	t.Setenv("KMS_ENDPOINT", srv.URL)
	t.Setenv("KMS_ACCESS_KEY_ID", srv.AccessKeyID)
	t.Setenv("KMS_SECRET_ACCESS_KEY", srv.SecretAccessKey)
	t.Setenv("KMS_REGION", srv.Region)
	in := filepath.Join(t.TempDir(), "report.csv")
	if err := os.WriteFile(in, bytes.Repeat([]byte("id,email\n1,alice@example.com\n"), 10_000), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, args := range [][]string{{"--size", "3"}, {"--in", in}} { // the second run reuses the keys
		var out bytes.Buffer
		if err := run(context.Background(), args, &out); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out.String())
		}
		for _, want := range []string{"encrypted ", "2 recipients, chunk size 65536", "sha256 matches", "refused (ErrAuthentication)", "still decrypts"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("run %d: output lacks %q:\n%s", i, want, out.String())
			}
		}
		if i == 1 && !strings.Contains(out.String(), "encrypted 290000 bytes of report.csv") {
			t.Fatalf("output:\n%s", out.String())
		}
	}
	t.Setenv("KMS_SECRET_ACCESS_KEY", "wrong")
	if err := run(context.Background(), nil, new(bytes.Buffer)); err == nil {
		t.Fatal("wrong credentials: no error")
	}
}
