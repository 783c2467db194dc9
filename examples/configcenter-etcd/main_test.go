package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func describeWant(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return fmt.Sprintf("%d characters, sha256 %s…", len(secret), hex.EncodeToString(sum[:4]))
}

func TestRun(t *testing.T) {
	srv := kmstest.Start(t)
	t.Setenv("KMS_ENDPOINT", srv.URL)
	t.Setenv("KMS_ACCESS_KEY_ID", srv.AccessKeyID)
	t.Setenv("KMS_SECRET_ACCESS_KEY", srv.SecretAccessKey)
	t.Setenv("KMS_REGION", srv.Region)
	admin, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := admin.CreateKey(ctx, kmsclient.CreateKeyInput{Alias: "alias/orders-config"}); err != nil {
		t.Fatal(err)
	}
	enc := func(s string) string { // what `kmsctl enc` prints
		out, err := admin.Encrypt(ctx, "alias/orders-config", []byte(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		return "ENC(" + base64.StdEncoding.EncodeToString(out.CiphertextBlob) + ")"
	}
	et := etcdtest.Start(t)
	cli := et.Client(t)
	appYAML := filepath.Join(t.TempDir(), "app.yaml")
	const secret1, secret2 = "s3cret-db-password", "rotated-password!"
	if err := os.WriteFile(appYAML, []byte("db:\n  user: orders\n  password: "+enc(secret1)+"  # kmsctl enc\n  pool: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--etcd", et.Endpoint, "--key", "/orders/app.yaml", "--put", appYAML, "--follow", "2"}, &out)
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("output lacks %q:\n%s", s, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("db.user=orders db.pool=5 db.password: " + describeWant(secret1))
	if _, err := cli.Put(ctx, "/orders/app.yaml", "db:\n  user: orders\n  password: ENC(AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)\n  pool: 5\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(`change rejected, keeping the last good config: configcenter: reload: config path "db.password": configcenter: cannot decrypt value`)
	if _, err := cli.Put(ctx, "/orders/app.yaml", "db:\n  user: orders\n  password: "+enc(secret2)+"\n  pool: 9\n"); err != nil {
		t.Fatal(err)
	}
	waitFor("changed: db.user=orders db.pool=9 db.password: " + describeWant(secret2))
	if _, err := cli.Put(ctx, "/orders/app.yaml", "db:\n  user: orders2\n  password: "+enc(secret2)+"\n  pool: 9\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("run did not return:\n%s", out.String())
	}
	for _, s := range []string{secret1, secret2} {
		if strings.Contains(out.String(), s) {
			t.Fatalf("the output shows a secret:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "changed: db.user=orders2") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestRunErrors(t *testing.T) {
	t.Setenv("KMS_ACCESS_KEY_ID", "")
	t.Setenv("KMS_SECRET_ACCESS_KEY", "")
	if err := run(context.Background(), nil, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Fatalf("err = %v", err)
	}
	if err := run(context.Background(), []string{"--bogus"}, &bytes.Buffer{}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}
