package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/kmsd"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// TestKill9KeepsEveryAnsweredRequestsAuditRecord starts a real kmsd
// process, loads it with Encrypt requests from several workers, kills it
// with SIGKILL in the middle of the load and then checks the database it
// left: the audit chain verifies, and there are at least as many successful
// Encrypt records as requests that were answered with success (a request
// is answered only after its record's group commit). Both audit.sync
// modes are checked.
func TestKill9KeepsEveryAnsweredRequestsAuditRecord(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kmsd")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, mode := range []string{config.AuditSyncGroup, config.AuditSyncStrict} {
		t.Run(mode, func(t *testing.T) { kill9Run(t, bin, mode) })
	}
}

var listenRE = regexp.MustCompile(`^kmsd: listening on (http://127\.0\.0\.1:[0-9]+)$`)

func kill9Run(t *testing.T, bin, mode string) {
	dir := t.TempDir()
	cmd := exec.Command(bin, "--data-dir", dir, "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "KMSD_LOG_LEVEL=warn", "KMSD_AUDIT_SYNC="+mode, "KMSD_JOBS_ENABLED=false")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	endpoint := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				endpoint <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-endpoint:
	case <-time.After(60 * time.Second):
		t.Fatal("kmsd did not start")
	}
	credFile := filepath.Join(dir, "admin-credentials.json")
	var prof kmsclient.Profile
	for deadline := time.Now().Add(30 * time.Second); ; {
		if prof, err = kmsclient.LoadCredentialsFile(credFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no admin credentials: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cfg := prof.Config()
	cfg.Endpoint = url
	cfg.MaxRetries = -1 // count answers, never hide a failure behind a retry
	cfg.Timeout = 10 * time.Second
	c, err := kmsclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	md, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{Description: "kill -9"})
	if err != nil {
		t.Fatal(err)
	}

	// Load until enough requests were answered, then SIGKILL mid-load.
	var answered atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Encrypt(ctx, md.KeyID, []byte("0123456789abcdef0123456789abcdef"), nil); err == nil {
					answered.Add(1)
				}
			}
		})
	}
	for deadline := time.Now().Add(60 * time.Second); answered.Load() < 300 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	killed = true
	_ = cmd.Wait()
	close(stop)
	wg.Wait()
	got := answered.Load()
	if got < 300 {
		t.Fatalf("only %d requests answered before the deadline", got)
	}

	// What the killed process left on disk.
	db, err := gorm.Open(sqlite.Open("file:"+filepath.Join(dir, "kms.db")+"?_busy_timeout=10000"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	key, err := kmsd.LoadOrCreateChainKey(filepath.Join(dir, "audit-chain.key"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, db, key)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("audit chain broken after kill -9: %+v", rep.FirstBroken)
	}
	var records int64
	if err := db.Table("kms_audit_records").Where("action = ? AND result = ?", "kms:Encrypt", audit.ResultOK).Count(&records).Error; err != nil {
		t.Fatal(err)
	}
	if records < got {
		t.Fatalf("%s: %d Encrypt requests answered with success but only %d success records survived kill -9", mode, got, records)
	}
	t.Logf("%s: %d answered, %d records, chain of %d verified", mode, got, records, rep.Checked)
}
