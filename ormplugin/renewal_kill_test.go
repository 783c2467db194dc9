package ormplugin

// The kill test: a renewal running as a jobs job (lease and cursor in the
// kmsgo_jobs table of the application's database) in a real child process
// (this test binary re-executed, see TestMain) is killed with SIGKILL
// halfway; a second process takes the expired lease over, resumes from the
// persisted cursor and finishes. The child reaches the parent's in-process
// kmsd over HTTP with credentials from the environment.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// Environment of the child process.
const (
	envRenewChild   = "KMSGO_TEST_RENEW_CHILD" // "1": run as the renewal child
	envRenewDialect = "KMSGO_TEST_RENEW_DIALECT"
	envRenewDSN     = "KMSGO_TEST_RENEW_DSN"
	envRenewURL     = "KMSGO_TEST_RENEW_KMS_URL"
	envRenewAK      = "KMSGO_TEST_RENEW_KMS_AK"
	envRenewSK      = "KMSGO_TEST_RENEW_KMS_SK"
	envRenewRegion  = "KMSGO_TEST_RENEW_KMS_REGION"
	envRenewDelay   = "KMSGO_TEST_RENEW_DELAY" // pause after each batch
)

const (
	renewJobName    = RenewalJob
	renewChildBatch = 10
	renewLeaseTTL   = 1500 * time.Millisecond
)

func TestMain(m *testing.M) {
	if os.Getenv(envRenewChild) == "1" {
		os.Exit(renewChild())
	}
	os.Exit(m.Run())
}

// renewChild runs one renewal job under a jobs.Store lease and prints its
// report as JSON on stdout. It waits for a dead runner's lease to expire.
func renewChild() int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "renew child:", err); return 2 }
	db, err := dbtest.Connect(os.Getenv(envRenewDialect), os.Getenv(envRenewDSN))
	if err != nil {
		return fail(err)
	}
	client, err := kmsclient.New(kmsclient.Config{
		Endpoint: os.Getenv(envRenewURL), AccessKeyID: os.Getenv(envRenewAK),
		SecretAccessKey: os.Getenv(envRenewSK), Region: os.Getenv(envRenewRegion),
	})
	if err != nil {
		return fail(err)
	}
	p := New(client, Config{KeyID: testKeyID})
	if err := db.Use(p); err != nil {
		return fail(err)
	}
	store, err := jobs.NewStore(db)
	if err != nil {
		return fail(err)
	}
	delay, _ := time.ParseDuration(os.Getenv(envRenewDelay))
	var rep RenewalReport
	sched, err := jobs.New(jobs.Config{Store: store, LeaseTTL: renewLeaseTTL}, nil, jobs.Job{
		Name: renewJobName, Schedule: "@every 1h",
		Run: func(ctx context.Context) (int, error) {
			var err error
			rep, err = p.Renew(ctx, db, client, RenewalOptions{
				Mode: RenewReencrypt, Models: []any{&Customer{}}, BatchSize: renewChildBatch,
				Cursor: jobs.Cursor(ctx), SaveCursor: jobs.SaveCursor,
				Progress: func(RenewalReport) { time.Sleep(delay) },
			})
			return int(rep.Values.Renewed), err
		},
	})
	if err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = sched.RunNow(context.Background(), renewJobName)
		if !errors.Is(err, jobs.ErrLeaseHeld) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fail(err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return fail(err)
	}
	return 0
}

func TestRenewKilledProcessResumes(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			dsn, db := dbtest.OpenDSN(t, dialect)
			p, kms, _ := setup(t, db, Config{})
			srv := kms.(*realKMS).srv
			const n = 300
			want := expectedCustomers(seedNamed(t, db, n))
			kms.Rotate()
			store, err := jobs.NewStore(db)
			if err != nil {
				t.Fatal(err)
			}
			child := func(delay time.Duration) *exec.Cmd {
				cmd := exec.Command(exe, "-test.run=^$")
				cmd.Env = append(os.Environ(),
					envRenewChild+"=1", envRenewDialect+"="+dialect, envRenewDSN+"="+dsn,
					envRenewURL+"="+srv.URL, envRenewAK+"="+srv.AccessKeyID, envRenewSK+"="+srv.SecretAccessKey,
					envRenewRegion+"="+srv.Region, envRenewDelay+"="+delay.String())
				return cmd
			}
			appUpdate := func(id uint) {
				t.Helper()
				email := fmt.Sprintf("app-%d@example.com", id)
				if err := db.Model(&Customer{ID: id}).Update("email", email).Error; err != nil {
					t.Fatal(err)
				}
				want[id] = email
			}

			// First process: slow, killed once its cursor is past a few
			// batches of rows.
			first := child(150 * time.Millisecond)
			var stderr bytes.Buffer
			first.Stderr = &stderr
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { _ = first.Wait(); close(exited) }()
			killedAt := waitCursor(t, store, 3*renewChildBatch, first, exited, &stderr)
			// The application writes while the renewal runs; then SIGKILL.
			appUpdate(n - 1)
			if err := first.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-exited
			if ws, ok := first.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
				t.Fatalf("first child was not killed but exited: %v\n%s", first.ProcessState, stderr.String())
			}
			st, err := store.Get(context.Background(), renewJobName)
			if err != nil || st.Holder == "" || st.Cursor == "" {
				t.Fatalf("after the kill the dead runner still holds the job with a cursor: %+v %v", st, err)
			}
			cursorAt := cursorRow(t, st.Cursor)
			if cursorAt < killedAt || cursorAt >= n {
				t.Fatalf("cursor %q: row %d (killed after %d)", st.Cursor, cursorAt, killedAt)
			}
			appUpdate(1) // before the cursor: not visited again
			appUpdate(n) // after it

			// Second process: takes the expired lease over and finishes.
			second := child(0)
			var out bytes.Buffer
			second.Stdout, second.Stderr = &out, &stderr
			if err := second.Run(); err != nil {
				t.Fatalf("second run: %v\n%s", err, stderr.String())
			}
			var rep RenewalReport
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("report %q: %v", out.String(), err)
			}
			if !rep.Resumed || rep.Rows != int64(n-cursorAt) || rep.Phase != RenewPhaseDone || rep.Values.Failed != 0 || rep.Values.Renewed == 0 {
				t.Fatalf("second run from row %d: %+v", cursorAt, rep)
			}
			st, err = store.Get(context.Background(), renewJobName)
			if err != nil || st.Holder != "" || st.Cursor != "" || st.LastOutcome != "ok" {
				t.Fatalf("job state after the second run: %+v %v", st, err)
			}
			checkCustomers(t, db, kms, want)
			// Every value the renewal rewrote is under a key of the new
			// version: only rows the application wrote with its cached
			// old key (before the cursor) are not.
			dry, err := p.Renew(context.Background(), db, kms, RenewalOptions{Mode: RenewReencrypt, Models: []any{&Customer{}}, OlderThanVersion: 2, DryRun: true})
			if err != nil || dry.Values.Renewed != 1 {
				t.Fatalf("values under old keys after the renewal: %+v %v", dry, err)
			}
		})
	}
}

// waitCursor waits until the running job's cursor is past row min and
// returns that row.
func waitCursor(t *testing.T, store *jobs.Store, min int, cmd *exec.Cmd, exited <-chan struct{}, stderr *bytes.Buffer) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		st, err := store.Get(context.Background(), renewJobName)
		if err == nil && strings.Contains(st.Cursor, `"phase":"rows"`) {
			if r := cursorRow(t, st.Cursor); r >= min {
				return r
			}
		}
		select {
		case <-exited:
			t.Fatalf("child exited before it was killed: %s", stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	_ = cmd.Process.Kill()
	t.Fatalf("the child's cursor never reached row %d: %s", min, stderr.String())
	return 0
}

func cursorRow(t *testing.T, cursor string) int {
	t.Helper()
	var c renewCursor
	if err := json.Unmarshal([]byte(cursor), &c); err != nil {
		t.Fatalf("cursor %q: %v", cursor, err)
	}
	if c.After == "" {
		return 0
	}
	n, err := strconv.Atoi(c.After)
	if err != nil {
		t.Fatalf("cursor %q: %v", cursor, err)
	}
	return n
}
