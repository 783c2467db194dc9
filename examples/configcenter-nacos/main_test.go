package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter/nacos/nacostest"
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

// sdkDir is a directory for the Nacos SDK's files. The SDK may still be
// closing files when the test ends, so removal is retried.
func sdkDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "example-nacos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
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
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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

	ns := nacostest.StartT(t, nacostest.Options{})
	dir := filepath.Join(sdkDir(t), "nacos")
	appYAML := filepath.Join(t.TempDir(), "app.yaml")
	// Canaries: plaintexts that must never appear in the output or on disk.
	const secret1, secret2 = "canary-s3cret-db-password-1", "canary-rotated-password-2"
	enc1 := enc(secret1)
	if err := os.WriteFile(appYAML, []byte("db:\n  user: orders\n  password: "+enc1+"  # kmsctl enc\n  pool: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--server", ns.Addr(), "--namespace", "dev", "--group", "ORDERS",
			"--dataid", "orders.yaml", "--dir", dir, "--put", appYAML, "--follow", "2", "--resync", "2s"}, &out)
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(out.String(), s) {
			select {
			case err := <-done:
				t.Fatalf("run returned early (%v); output lacks %q:\n%s", err, s, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("output lacks %q:\n%s", s, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("published " + appYAML + " to Nacos as orders.yaml (group ORDERS)")
	waitFor("db.user=orders db.pool=5 db.password: " + describeWant(secret1))
	if got, ok := ns.Get("dev", "ORDERS", "orders.yaml"); !ok || !strings.Contains(got, enc1) {
		t.Fatalf("--put did not publish the file: %q %v", got, ok)
	}

	// A value kmsd will not decrypt is rejected; the last good config stays.
	ns.Publish("dev", "ORDERS", "orders.yaml", "db:\n  user: orders\n  password: ENC(AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)\n  pool: 5\n")
	waitFor(`change rejected, keeping the last good config: configcenter: reload: config path "db.password": configcenter: cannot decrypt value`)
	// A new ENC value (a rotated password) is decrypted and delivered.
	ns.Publish("dev", "ORDERS", "orders.yaml", "db:\n  user: orders\n  password: "+enc(secret2)+"\n  pool: 9\n")
	waitFor("changed: db.user=orders db.pool=9 db.password: " + describeWant(secret2))
	ns.Publish("dev", "ORDERS", "orders.yaml", "db:\n  user: orders2\n  password: "+enc(secret2)+"\n  pool: 9\n")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("run did not return:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "changed: db.user=orders2") {
		t.Fatalf("output:\n%s", out.String())
	}
	for _, s := range []string{secret1, secret2} {
		if strings.Contains(out.String(), s) {
			t.Fatalf("the output shows a secret:\n%s", out.String())
		}
	}

	// The SDK's cache and log dir: private, and ciphertext only.
	if info, err := os.Stat(filepath.Join(dir, "cache")); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v", info, err)
	}
	files, sawCiphertext := 0, false
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, s := range []string{secret1, secret2} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a plaintext secret", p)
			}
		}
		if bytes.Contains(b, []byte("ENC(")) {
			sawCiphertext = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 || !sawCiphertext {
		t.Fatalf("the SDK cache was not written (%d files, ciphertext seen: %v): the check above proves nothing", files, sawCiphertext)
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
	t.Setenv("KMS_ACCESS_KEY_ID", "AK")
	t.Setenv("KMS_SECRET_ACCESS_KEY", "SK")
	dir := sdkDir(t)
	// A bad server address is refused before anything is sent.
	if err := run(context.Background(), []string{"--server", "no-port", "--dir", dir, "--put", "main.go"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no-port") {
		t.Fatalf("err = %v", err)
	}
	if err := run(context.Background(), []string{"--server", "127.0.0.1:8848", "--dir", dir, "--put", filepath.Join(dir, "missing.yaml")}, &bytes.Buffer{}); err == nil || !os.IsNotExist(err) {
		t.Fatalf("err = %v", err)
	}
}
