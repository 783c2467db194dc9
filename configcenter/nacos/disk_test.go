package nacos_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kmsgo/kmsgo/configcenter/nacos"
	"github.com/kmsgo/kmsgo/configcenter/nacos/nacostest"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// encValue encrypts plaintext with a real kmsd and formats it as
// `kmsctl enc` prints it: ENC(<base64 ciphertext blob>).
func encValue(t *testing.T, c *kmsclient.Client, keyID, plaintext string) string {
	t.Helper()
	out, err := c.Encrypt(context.Background(), keyID, []byte(plaintext), nil)
	if err != nil {
		t.Fatal(err)
	}
	return "ENC(" + base64.StdEncoding.EncodeToString(out.CiphertextBlob) + ")"
}

// lockedBuffer is a concurrency-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoPlaintextOnDiskOrInLogs stores ENC(...) values made by a real kmsd
// in the test Nacos, reads and watches them through the real SDK, and then
// checks every file the SDK wrote: ciphertext only, the canary plaintext
// never, private modes. SDK logs at debug level go through the redacting
// logger and must not carry the content of a plaintext config either
// (logger_test.go feeds it the SDK's content-bearing messages directly).
func TestNoPlaintextOnDiskOrInLogs(t *testing.T) {
	const canary = "CANARY-db-password-7f3a9c"
	const plainCanary = "PLAINCANARY-feature-flag-91b2"

	kms := kmstest.Start(t)
	kc, err := kmsclient.New(kmsclient.Config{Endpoint: kms.URL, AccessKeyID: kms.AccessKeyID, SecretAccessKey: kms.SecretAccessKey, Region: kms.Region})
	if err != nil {
		t.Fatal(err)
	}
	key, err := kc.CreateKey(context.Background(), kmsclient.CreateKeyInput{Alias: "alias/app-config"})
	if err != nil {
		t.Fatal(err)
	}
	enc1 := encValue(t, kc, key.KeyID, canary)
	enc2 := encValue(t, kc, key.KeyID, canary+"-v2")
	if strings.Contains(enc1, canary) {
		t.Fatal("ciphertext contains the plaintext")
	}
	// The ciphertext round-trips through kmsd (so it is the real thing).
	blob, _ := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(enc1, "ENC("), ")"))
	if dec, err := kc.Decrypt(context.Background(), blob, nil); err != nil || string(dec.Plaintext) != canary {
		t.Fatalf("decrypt: %v", err)
	}

	srv := nacostest.StartT(t, nacostest.Options{})
	srv.Publish(ns(t), grp, "secrets.yaml", "db:\n  password: "+enc1+"\n")
	srv.Publish(ns(t), grp, "plain.yaml", "flag: "+plainCanary+"\n")

	var logs lockedBuffer
	debug := slog.LevelDebug
	cfg := baseConfig(t, srv, "secrets.yaml", "plain.yaml")
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.LogLevel = &debug
	src := newSource(t, cfg)
	st, err := src.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st.Docs[0].Data), enc1) {
		t.Fatal("Load did not return the ciphertext as stored")
	}
	w := startWatch(t, src)
	subscribed(t, srv, "secrets.yaml", "plain.yaml")
	srv.Publish(ns(t), grp, "secrets.yaml", "db:\n  password: "+enc2+"\n")
	srv.Publish(ns(t), grp, "plain.yaml", "flag: "+plainCanary+"-v2\n")
	w.waitState(t, "[secrets.yaml||db:\n  password: "+enc2+"\n][plain.yaml||flag: "+plainCanary+"-v2\n]")
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	cacheDir, logDir := filepath.Join(cfg.Dir, "cache"), filepath.Join(cfg.Dir, "log")
	sawCipher := false
	for _, root := range []string{cacheDir, logDir} {
		for p, mode := range walkFiles(t, root) {
			if mode.IsDir() {
				if mode.Perm() != 0o700 {
					t.Errorf("dir %s has mode %v, want 0700", p, mode.Perm())
				}
				continue
			}
			if mode.Perm()&0o077 != 0 {
				t.Errorf("file %s has mode %v: readable beyond its owner", p, mode.Perm())
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(canary)) {
				t.Errorf("canary plaintext found in %s", p)
			}
			if bytes.Contains(data, []byte(enc2)) {
				sawCipher = true
			}
		}
	}
	if !sawCipher {
		t.Error("the SDK's snapshot should hold the ciphertext as stored; none found under " + cacheDir)
	}
	if info, err := os.Stat(cfg.Dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("Dir mode = %v, %v; want 0700", info.Mode().Perm(), err)
	}

	out := logs.String()
	if !strings.Contains(out, "nacos-sdk: ") {
		t.Fatalf("expected SDK log lines at debug level; logs:\n%s", out)
	}
	for _, c := range []string{canary, plainCanary, "ENC("} {
		if strings.Contains(out, c) {
			t.Errorf("SDK log carries config content %q:\n%s", c, out)
		}
	}
}

func TestNewRejectsFailoverOfEncryptedDataKey(t *testing.T) {
	srv := nacostest.StartT(t, nacostest.Options{})
	cfg := baseConfig(t, srv, "app.yaml")
	dir := filepath.Join(cfg.Dir, "cache", "config", "encrypted-data-key")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.yaml@@"+grp+"@@"+ns(t)+"_failover"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := nacos.New(cfg); err == nil {
		t.Fatal("New accepted a failover data key file")
	}
}
