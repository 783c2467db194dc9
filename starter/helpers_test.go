package starter_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// env is a running kmsd with a master key alias/app, and helpers to write
// the starter's files.
type env struct {
	t     *testing.T
	srv   *kmstest.Server
	admin *kmsclient.Client
	dir   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := kmstest.Start(t)
	admin, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID,
		SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.CreateKey(ctx, kmsclient.CreateKeyInput{Description: "starter test", Alias: "alias/app"}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, admin: admin, dir: t.TempDir()}
}

// enc returns ENC(...) of plaintext under alias/app.
func (e *env) enc(plaintext string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := e.admin.Encrypt(ctx, "alias/app", []byte(plaintext), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return "ENC(" + base64.StdEncoding.EncodeToString(r.CiphertextBlob) + ")"
}

// environ holds the KMS credentials as KMSGO_* variables.
func (e *env) environ(extra ...string) []string {
	return append([]string{
		"KMSGO_KMS_ACCESS_KEY_ID=" + e.srv.AccessKeyID,
		"KMSGO_KMS_SECRET_ACCESS_KEY=" + e.srv.SecretAccessKey,
		"KMSGO_KMS_REGION=" + e.srv.Region,
	}, extra...)
}

// write writes name under the env's directory and returns its path.
func (e *env) write(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// waitFor polls cond for up to 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type gormDB = gorm.DB

// isSQLClosed reports database/sql's "database is closed" (not exported).
func isSQLClosed(err error) bool { return err != nil && err.Error() == "sql: database is closed" }
