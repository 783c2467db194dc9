package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
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
// left, after a restart (which moves what the killed process left in the
// audit spool into the database) and a clean stop: the audit chain
// verifies, and there are at least as many successful Encrypt records as
// requests that were answered with success (a request is answered only
// after its record is in the spool file or the database). Both audit.sync
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
	cmd, url := startKmsd(t, bin, dir, mode)
	credFile := filepath.Join(dir, "admin-credentials.json")
	var prof kmsclient.Profile
	var err error
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
	_ = cmd.Wait()
	close(stop)
	wg.Wait()
	got := answered.Load()
	if got < 300 {
		t.Fatalf("only %d requests answered before the deadline", got)
	}

	// What the killed process left: records still in the audit spool are
	// moved into the database by the next start, which must succeed; a
	// clean stop then leaves everything in the table.
	spooled := spoolBytes(t, filepath.Join(dir, "audit-spool"))
	cmd2, url2 := startKmsd(t, bin, dir, mode)
	waitReady(t, url2)
	if err := cmd2.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd2.Wait(); err != nil {
		t.Fatalf("restarted kmsd did not stop cleanly: %v", err)
	}
	if left := spoolBytes(t, filepath.Join(dir, "audit-spool")); left != 0 {
		t.Fatalf("%d bytes left in the audit spool after a clean stop", left)
	}
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
	t.Logf("%s: %d answered, %d records, chain of %d verified (%d bytes were in the spool at the kill)", mode, got, records, rep.Checked, spooled)
}

// startKmsd starts kmsd on dir and returns it with its endpoint; the test's
// cleanup kills it if it still runs.
func startKmsd(t *testing.T, bin, dir, mode string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "--data-dir", dir, "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "KMSD_LOG_LEVEL=warn", "KMSD_AUDIT_SYNC="+mode, "KMSD_JOBS_ENABLED=false")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
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
	select {
	case url := <-endpoint:
		return cmd, url
	case <-time.After(60 * time.Second):
		t.Fatal("kmsd did not start")
	}
	return nil, ""
}

// waitReady waits until url's /readyz answers 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kmsd at %s not ready: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spoolBytes is the size of the audit spool files in dir.
func spoolBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("spool file %s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
		n += fi.Size()
	}
	return n
}
