package kmsd_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/jobs/jobstest"
	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"github.com/kmsgo/kmsgo/server/kmsd"
)

// TestAppRunsMaintenanceJobs: a kmsd App starts the scheduler, its
// scheduled destroy job destroys a key whose deletion date has passed and
// writes the key's audit record, and Close stops it leaving no goroutine behind.
func TestAppRunsMaintenanceJobs(t *testing.T) {
	base := runtime.NumGoroutine()
	c := config.Defaults()
	c.DataDir = t.TempDir()
	c.Jobs.DestroySchedule = "@every 1s"
	ctx := context.Background()
	app, err := kmsd.Open(ctx, c, kmsd.Deps{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = app.Close()
		}
	}()
	if app.Jobs == nil {
		t.Fatal("jobs enabled by default, but App.Jobs is nil")
	}
	if got := app.Jobs.Jobs(); len(got) != 3 || got[0] != jobs.JobDestroyDueKeys {
		t.Fatalf("jobs %v", got)
	}

	key, err := kmsdinternal.Of(app).KMS.CreateKey(ctx, kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kmsdinternal.Of(app).KMS.ScheduleKeyDeletion(ctx, kms.ScheduleKeyDeletionInput{KeyID: key.KeyID, PendingWindowDays: 7}); err != nil {
		t.Fatal(err)
	}
	// Move the deletion date into the past in the database (the App's
	// service runs on the real clock), then let the scheduled tick act.
	if err := app.DB.Model(&store.Key{}).Where("id = ?", key.KeyID).
		Update("deletion_date", time.Now().UTC().Add(-time.Hour)).Error; err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	deadline := time.Now().Add(10 * time.Second)
	for len(recs) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no scheduled destroy within 10s")
		}
		time.Sleep(50 * time.Millisecond)
		page, err := audit.List(ctx, app.DB, audit.ListOptions{Action: jobs.AuditAction})
		if err != nil {
			t.Fatal(err)
		}
		recs = page.Records
	}
	// One record for the key destroyed (not one per run): its id and its
	// old and new state.
	r := recs[0]
	if len(recs) != 1 || r.ReasonCode != jobs.JobDestroyDueKeys || r.Result != audit.ResultOK || r.KeyID != key.KeyID ||
		r.Details["field"] != "state" || r.Details["old"] != "PendingDeletion" || r.Details["new"] != "Destroyed" ||
		r.Details["job"] != jobs.JobDestroyDueKeys {
		t.Fatalf("audit records %+v", recs)
	}
	var k store.Key
	if err := app.DB.First(&k, "id = ?", key.KeyID).Error; err != nil || k.State != store.KeyStateDestroyed {
		t.Fatalf("key state %s (%v), want Destroyed", k.State, err)
	}
	mfs, err := app.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "kms_jobs_runs_total"
	}
	if !found {
		t.Fatal("kms_jobs_runs_total not exported on the App registry")
	}

	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	jobstest.SettleGoroutines(t, base)
}

// TestAppJobsDisabled: jobs.enabled false starts no scheduler.
func TestAppJobsDisabled(t *testing.T) {
	c, err := config.Load("", func(k string) string {
		return map[string]string{"KMSD_JOBS_ENABLED": "false", "KMSD_DATA_DIR": t.TempDir()}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	app, err := kmsd.Open(context.Background(), c, kmsd.Deps{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if app.Jobs != nil {
		t.Fatal("scheduler started although jobs.enabled is false")
	}
	mfs, err := app.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "kms_jobs_runs_total" {
			t.Fatal("job metrics registered without jobs")
		}
	}
}
