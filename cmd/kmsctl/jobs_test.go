package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

type jobJSON struct {
	Name        string `json:"name"`
	Schedule    string `json:"schedule"`
	Running     bool   `json:"running"`
	LeaseHolder string `json:"lease_holder"`
	LastOutcome string `json:"last_outcome"`
	LastItems   int    `json:"last_items"`
	Runs        int64  `json:"runs"`
}

type jobRunJSON struct {
	Job     string `json:"job"`
	Outcome string `json:"outcome"`
	Error   string `json:"error"`
	Items   int    `json:"items"`
	Changes []struct {
		KeyID string `json:"key_id"`
		Field string `json:"field"`
		Old   string `json:"old"`
		New   string `json:"new"`
	} `json:"changes"`
}

// TestJobsListAndRun: kmsctl jobs list (table and --json) shows kmsd's
// jobs; jobs run rotate_due_keys rotates the due key and prints it with
// its old and new version; a failing job exits 1 and a job running
// already exits 3.
func TestJobsListAndRun(t *testing.T) {
	var armed atomic.Bool
	started, release := make(chan struct{}, 1), make(chan struct{})
	hold := jobs.Job{Name: "hold", Schedule: "@daily", Run: func(ctx context.Context) (int, error) {
		if armed.Load() {
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return 0, nil
	}}
	failing := jobs.Job{Name: "failing", Schedule: "@daily", Run: func(context.Context) (int, error) {
		return 0, errors.New("the renewal source is unreachable\x1b[31m")
	}}
	srv, c := configured(t, kmstest.WithJobs(hold, failing))

	// Wait for the start-up runs, then check both outputs.
	var list []jobJSON
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.json(&list, "jobs", "list")
		done := len(list) == 5
		for _, j := range list {
			done = done && j.Runs >= 1 && !j.Running
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs not idle after start: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	byName := map[string]jobJSON{}
	for _, j := range list {
		byName[j.Name] = j
	}
	if byName["rotate_due_keys"].Schedule != "@every 5m" || byName["rotate_due_keys"].LastOutcome != "ok" ||
		byName["failing"].LastOutcome != "error" {
		t.Fatalf("jobs --json: %+v", byName)
	}
	var viaFlag []jobJSON
	if err := json.Unmarshal([]byte(c.ok("", "jobs", "list", "--json")), &viaFlag); err != nil || len(viaFlag) != 5 {
		t.Fatalf("jobs list --json: %+v %v", viaFlag, err)
	}
	table := c.ok("", "jobs", "list")
	for _, want := range []string{"NAME", "SCHEDULE", "NEXT RUN", "destroy_due_keys", "@every 1m", "cleanup_orphans", "failing", "error: the renewal source is unreachable"} {
		if !strings.Contains(table, want) {
			t.Fatalf("jobs list table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "\x1b") {
		t.Fatalf("a control character from a job error reached the terminal:\n%q", table)
	}

	// A key whose rotation is due, rotated by a run on demand.
	var k keyJSON
	c.json(&k, "keys", "create")
	c.ok("", "keys", "rotation-policy", k.KeyID, "--enable", "--period-days", "90")
	if err := srv.App.DB.Table("kms_keys").Where("id = ?", k.KeyID).Update("next_rotation_at", time.Now().UTC().Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	code, out, errs := c.run("", "jobs", "run", "rotate_due_keys")
	if code != 0 || !strings.Contains(out, "Outcome:") || !strings.Contains(out, k.KeyID) || !strings.Contains(out, "primary_version") ||
		!strings.Contains(errs, "running job rotate_due_keys") {
		t.Fatalf("jobs run: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	c.json(&k, "keys", "describe", k.KeyID)
	if k.PrimaryVersion != 2 {
		t.Fatalf("primary version after the run: %d", k.PrimaryVersion)
	}
	var r jobRunJSON
	c.json(&r, "jobs", "run", "rotate_due_keys") // nothing due any more
	if r.Outcome != "ok" || r.Items != 0 || len(r.Changes) != 0 {
		t.Fatalf("second run: %+v", r)
	}

	// A failed run exits 1 and says why.
	code, out, errs = c.run("", "jobs", "run", "failing", "--json")
	if code != 1 || !strings.Contains(errs, "job failing failed (error)") || json.Unmarshal([]byte(out), &r) != nil || r.Outcome != "error" ||
		!strings.Contains(r.Error, "unreachable") || strings.Contains(r.Error, "\x1b") {
		t.Fatalf("failing run: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	c.fail(1, "NotFound", "", "jobs", "run", "no_such_job")

	// A job running already: exit 3.
	armed.Store(true)
	first := make(chan int, 1)
	go func() {
		code, _, _ := c.run("", "jobs", "run", "hold")
		first <- code
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the first run did not start")
	}
	c.fail(3, "running already", "", "jobs", "run", "hold")
	if out := c.ok("", "jobs", "list"); !strings.Contains(out, "yes") || !strings.Contains(out, " until ") {
		t.Fatalf("list while hold runs:\n%s", out)
	}
	armed.Store(false)
	close(release)
	if code := <-first; code != 0 {
		t.Fatalf("the first run exited %d", code)
	}
}
