package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// listJobs returns GET /v1/jobs by name.
func listJobs(t *testing.T, srv *kmstest.Server) map[string]kmsapi.JobInfo {
	t.Helper()
	var out kmsapi.ListJobsResponse
	call(t, srv, "GET", "/v1/jobs", nil, 200, &out)
	m := map[string]kmsapi.JobInfo{}
	for _, j := range out.Jobs {
		m[j.Name] = j
	}
	return m
}

// waitJobsIdle waits until every named job ran at least once (the catch-up
// run at start) and none is running.
func waitJobsIdle(t *testing.T, srv *kmstest.Server, names ...string) map[string]kmsapi.JobInfo {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		js := listJobs(t, srv)
		idle := true
		for _, n := range names {
			j, ok := js[n]
			idle = idle && ok && j.Runs >= 1 && !j.Running
		}
		if idle {
			return js
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs %v not idle after their start-up run: %+v", names, js)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestJobsListAndRunRotation: GET /v1/jobs lists kmsd's maintenance jobs
// with their state; POST /v1/jobs/rotate_due_keys/run rotates the keys
// whose rotation is due, answers with each key's old and new primary
// version, writes one audit record per key rotated (and one for the
// request), and updates the metrics.
func TestJobsListAndRunRotation(t *testing.T) {
	srv := kmstest.Start(t)
	maint := []string{jobs.JobDestroyDueKeys, jobs.JobRotateDueKeys, jobs.JobCleanupOrphans}
	js := waitJobsIdle(t, srv, maint...)
	if len(js) != 3 {
		t.Fatalf("jobs %+v, want the 3 maintenance jobs", js)
	}
	for name, sched := range map[string]string{jobs.JobDestroyDueKeys: "@every 1m", jobs.JobRotateDueKeys: "@every 5m", jobs.JobCleanupOrphans: "@every 15m"} {
		j := js[name]
		if j.Schedule != sched || j.LastOutcome != kmsapi.JobOutcomeOK || j.LastError != "" || j.LeaseHolder != "" || j.LeaseUntil != nil ||
			j.LastStart == nil || j.LastEnd == nil || j.NextRun == nil || !j.NextRun.After(*j.LastStart) || j.LastRunHolder == "" {
			t.Errorf("%s: %+v", name, j)
		}
	}

	due1, due2, later := createKey(t, srv, nil), createKey(t, srv, nil), createKey(t, srv, nil)
	for _, id := range []string{due1, due2, later} {
		call(t, srv, "PUT", "/v1/keys/"+id+"/rotation-policy", map[string]any{"enabled": true, "period_days": 90}, 200, nil)
	}
	if err := srv.App.DB.Model(&store.Key{}).Where("id IN ?", []string{due1, due2}).
		Update("next_rotation_at", time.Now().UTC().Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}

	var run kmsapi.JobRun
	call(t, srv, "POST", "/v1/jobs/"+jobs.JobRotateDueKeys+"/run", nil, 200, &run)
	if run.Job != jobs.JobRotateDueKeys || run.Outcome != kmsapi.JobOutcomeOK || run.Error != "" || run.Items != 2 ||
		run.Started.IsZero() || len(run.Changes) != 2 {
		t.Fatalf("run %+v", run)
	}
	changed := map[string]kmsapi.JobChange{}
	for _, c := range run.Changes {
		changed[c.KeyID] = c
	}
	for _, id := range []string{due1, due2} {
		if c := changed[id]; c != (kmsapi.JobChange{KeyID: id, Field: "primary_version", Old: "1", New: "2"}) {
			t.Errorf("change of %s: %+v", id, c)
		}
	}
	for id, want := range map[string]int{due1: 2, due2: 2, later: 1} {
		var md kmsapi.KeyMetadata
		call(t, srv, "GET", "/v1/keys/"+id, nil, 200, &md)
		if md.PrimaryVersion != want {
			t.Errorf("key %s: primary version %d, want %d", id, md.PrimaryVersion, want)
		}
	}

	var perKey, requests, intents []map[string]any
	for _, r := range auditRecords(t, srv) {
		switch {
		case r["action"] == jobs.AuditAction:
			perKey = append(perKey, r)
		case r["action"] == "kms:RunJob" && r["result"] == "intent":
			intents = append(intents, r) // a run changes state: intent first
		case r["action"] == "kms:RunJob":
			requests = append(requests, r)
		}
	}
	if len(intents) != 1 || len(requests) != 1 || intents[0]["request_id"] != requests[0]["request_id"] ||
		requests[0]["details"].(map[string]any)["intent_seq"] != fmt.Sprint(intents[0]["seq"]) {
		t.Fatalf("RunJob intent %v and outcome %v", intents, requests)
	}
	if len(perKey) != 2 {
		t.Fatalf("maintenance audit records %v, want one per key rotated", perKey)
	}
	for _, r := range perKey {
		d, _ := r["details"].(map[string]any)
		id, _ := r["key_id"].(string)
		if (id != due1 && id != due2) || r["key_version"] != float64(2) || r["reason_code"] != jobs.JobRotateDueKeys ||
			r["result"] != "ok" || d["field"] != "primary_version" || d["old"] != "1" || d["new"] != "2" {
			t.Errorf("per-key record %v", r)
		}
	}
	if perKey[0]["key_id"] == perKey[1]["key_id"] {
		t.Fatalf("two records for one key: %v", perKey)
	}
	if len(requests) != 1 || requests[0]["result"] != "ok" || requests[0]["access_key_id"] != srv.AccessKeyID ||
		!strings.Contains(requests[0]["details"].(map[string]any)["resources"].(string), "job/"+jobs.JobRotateDueKeys) {
		t.Fatalf("request records %v", requests)
	}

	j := listJobs(t, srv)[jobs.JobRotateDueKeys]
	if j.LastItems != 2 || j.LastOutcome != kmsapi.JobOutcomeOK || j.Runs < 2 || j.Running {
		t.Fatalf("rotate job after the run: %+v", j)
	}
	st, body := srv.Do(t, "POST", "/v1/jobs/no_such_job/run", nil)
	if st != http.StatusNotFound || !strings.Contains(string(body), kmsapi.CodeNotFound) {
		t.Fatalf("unknown job: %d %s", st, body)
	}

	// Metrics: runs by outcome, duration, items, last success.
	mfs, err := srv.App.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["job"] != jobs.JobRotateDueKeys || (labels["outcome"] != "" && labels["outcome"] != "ok") {
				continue
			}
			switch {
			case m.GetHistogram() != nil:
				got[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
			case m.GetCounter() != nil:
				got[mf.GetName()] = m.GetCounter().GetValue()
			default:
				got[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	if got["kms_jobs_runs_total"] < 2 || got["kms_jobs_duration_seconds"] < 2 || got["kms_jobs_items_total"] != 2 ||
		got["kms_jobs_last_run_items"] != 2 || got["kms_jobs_last_success_timestamp_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("job metrics %v", got)
	}
}

// TestRunJobNeedsPermission: kms:ListJobs lets a caller list but not run;
// running needs kms:RunJob, and the refused run is audited.
func TestRunJobNeedsPermission(t *testing.T) {
	srv := kmstest.Start(t)
	waitJobsIdle(t, srv, jobs.JobCleanupOrphans)
	tests := []struct {
		name              string
		actions           string
		wantList, wantRun int
	}{
		{"list only", `"kms:ListJobs"`, 200, 403},
		{"run only", `"kms:RunJob"`, 403, 200},
		{"wildcard", `"kms:*Job*"`, 200, 200},
		{"other actions", `"kms:Encrypt","kms:ReadAudit"`, 403, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, secret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":[`+tc.actions+`],"resources":["*"]}]}`)
			if st, body := srv.DoAs(t, id, secret, "GET", "/v1/jobs", nil); st != tc.wantList {
				t.Fatalf("list: %d %s, want %d", st, body, tc.wantList)
			}
			st, body := srv.DoAs(t, id, secret, "POST", "/v1/jobs/"+jobs.JobCleanupOrphans+"/run", nil)
			if st != tc.wantRun {
				t.Fatalf("run: %d %s, want %d", st, body, tc.wantRun)
			}
			if st == http.StatusForbidden && !strings.Contains(string(body), kmsapi.CodeAccessDenied) {
				t.Fatalf("run refused without AccessDenied: %s", body)
			}
			var last map[string]any
			for _, r := range auditRecords(t, srv) {
				if r["access_key_id"] == id && r["action"] == "kms:RunJob" {
					last = r
				}
			}
			wantResult := "ok"
			if tc.wantRun != 200 {
				wantResult = "error"
			}
			if last == nil || last["result"] != wantResult {
				t.Fatalf("run request audit record %v, want result %s", last, wantResult)
			}
		})
	}
	// A key policy that is not "*" does not grant job actions.
	id, secret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["*"],"resources":["key/*"]}]}`)
	if st, _ := srv.DoAs(t, id, secret, "POST", "/v1/jobs/"+jobs.JobCleanupOrphans+"/run", nil); st != http.StatusForbidden {
		t.Fatalf("run with a key-scoped policy: %d, want 403", st)
	}
}

// TestRunJobWhileRunningIs409: while a run of a job is in progress on
// replica A, a run request on A (same scheduler) or on replica B (A holds
// the job's lease in the shared database) answers 409 JobRunning, and the
// list shows the job running with A's lease on both replicas. Once the run
// ended the job can run again anywhere.
func TestRunJobWhileRunningIs409(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		var armed atomic.Bool
		started, release := make(chan struct{}, 1), make(chan struct{})
		hold := jobs.Job{Name: "hold", Schedule: "@daily", Run: func(ctx context.Context) (int, error) {
			if !armed.Load() {
				return 0, nil
			}
			started <- struct{}{}
			select {
			case <-release:
				return 1, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}}
		dir := t.TempDir()
		backend, err := devhsm.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { backend.Close() })
		replica := func(name string) *kmstest.Server {
			return kmstest.Start(t, kmstest.WithDB(db), kmstest.WithHSM(backend), kmstest.WithDataDir(dir), kmstest.WithJobs(hold),
				kmstest.WithConfig(func(c *config.Config) { c.ReplicaID = name }))
		}
		a, b := replica("replica-a"), replica("replica-b")
		waitJobsIdle(t, a, "hold")
		waitJobsIdle(t, b, "hold")

		armed.Store(true)
		ca, err := kmsclient.New(kmsclient.Config{Endpoint: a.URL, AccessKeyID: a.AccessKeyID, SecretAccessKey: a.SecretAccessKey, Region: a.Region})
		if err != nil {
			t.Fatal(err)
		}
		type answer struct {
			run *kmsclient.JobRun
			err error
		}
		first := make(chan answer, 1)
		go func() {
			r, err := ca.RunJob(context.Background(), "hold")
			first <- answer{r, err}
		}()
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			t.Fatal("the first run did not start")
		}
		for name, srv := range map[string]*kmstest.Server{"same replica": a, "other replica": b} {
			st, body := srv.Do(t, "POST", "/v1/jobs/hold/run", nil)
			if st != http.StatusConflict || !strings.Contains(string(body), kmsapi.CodeJobRunning) {
				t.Fatalf("%s: second run %d %s, want 409 JobRunning", name, st, body)
			}
			j := listJobs(t, srv)["hold"]
			if !j.Running || !strings.HasPrefix(j.LeaseHolder, "replica-a/") || j.LeaseUntil == nil || !j.LeaseUntil.After(time.Now()) {
				t.Fatalf("%s: list while running: %+v", name, j)
			}
		}
		armed.Store(false)
		close(release)
		select {
		case ans := <-first:
			if ans.err != nil || ans.run.Outcome != kmsapi.JobOutcomeOK || ans.run.Items != 1 {
				t.Fatalf("first run: %+v, %v", ans.run, ans.err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the first run did not answer")
		}
		// B's own scheduler may be running the job just now (its catch-up
		// run, blocked while A held the lease): 409 until it is done.
		var run kmsapi.JobRun
		for deadline := time.Now().Add(10 * time.Second); ; {
			st, raw := b.Do(t, "POST", "/v1/jobs/hold/run", nil)
			if st == http.StatusConflict && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if st != http.StatusOK || json.Unmarshal(raw, &run) != nil {
				t.Fatalf("run on B after A finished: %d %s", st, raw)
			}
			break
		}
		if run.Outcome != kmsapi.JobOutcomeOK {
			t.Fatalf("run on B after A finished: %+v", run)
		}
		j := listJobs(t, a)["hold"]
		if j.Running || j.LeaseHolder != "" || !strings.HasPrefix(j.LastRunHolder, "replica-b/") || j.LastItems != 0 {
			t.Fatalf("after both runs: %+v", j)
		}
		var ae *kmsclient.APIError
		_, err = ca.RunJob(context.Background(), "missing")
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown job through the client: %v", err)
		}
	})
}

// TestJobsDisabledReplica: a replica with jobs.enabled false lists no
// jobs and answers a run with 404.
func TestJobsDisabledReplica(t *testing.T) {
	srv := kmstest.Start(t, kmstest.WithConfig(func(c *config.Config) { c.Jobs.Enabled = false }))
	var out kmsapi.ListJobsResponse
	call(t, srv, "GET", "/v1/jobs", nil, 200, &out)
	if out.Jobs == nil || len(out.Jobs) != 0 {
		t.Fatalf("jobs of a replica without jobs: %+v", out)
	}
	st, body := srv.Do(t, "POST", "/v1/jobs/"+jobs.JobRotateDueKeys+"/run", nil)
	if st != http.StatusNotFound || !strings.Contains(string(body), "runs no jobs") {
		t.Fatalf("run on a replica without jobs: %d %s", st, body)
	}
	if st, body := srv.Do(t, "GET", "/v1/jobs?x=1", nil); st != http.StatusBadRequest {
		t.Fatalf("unknown query parameter: %d %s", st, body)
	}
}
