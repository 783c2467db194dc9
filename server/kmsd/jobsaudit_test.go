package kmsd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"github.com/kmsgo/kmsgo/server/kmsd"
)

// TestMaintenanceStopsWhenTheKeyAuditFails: in kmsd, a key change whose
// audit record cannot be written fails the maintenance run and stops it
// before the next key (fail closed); the outcome is persisted as error.
func TestMaintenanceStopsWhenTheKeyAuditFails(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		c := config.Defaults()
		c.DataDir = t.TempDir()
		c.Jobs.DestroySchedule = "@daily"
		app, err := kmsd.Open(ctx, c, kmsd.Deps{DB: db}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		deadline := time.Now().Add(20 * time.Second)
		for { // let the start-up runs finish
			sts, err := app.Jobs.States(ctx)
			idle := err == nil
			for _, st := range sts {
				idle = idle && st.Runs >= 1 && !st.Running
			}
			if idle {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("start-up runs: %+v, %v", sts, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		var ids []string
		for range 2 {
			k, err := kmsdinternal.Of(app).KMS.CreateKey(ctx, kms.CreateKeyInput{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kmsdinternal.Of(app).KMS.ScheduleKeyDeletion(ctx, kms.ScheduleKeyDeletionInput{KeyID: k.KeyID, PendingWindowDays: 7}); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, k.KeyID)
		}
		if err := app.DB.Model(&store.Key{}).Where("id IN ?", ids).Update("deletion_date", time.Now().UTC().Add(-time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		_ = app.Audit.Close() // the audit log is gone

		res, err := app.Jobs.RunNow(ctx, jobs.JobDestroyDueKeys)
		if !errors.Is(err, jobs.ErrAudit) || res.Items != 1 || len(res.Changes) != 1 {
			t.Fatalf("run: %+v, %v; want ErrAudit after one key", res, err)
		}
		destroyed := 0
		for _, id := range ids {
			var k store.Key
			if err := app.DB.First(&k, "id = ?", id).Error; err != nil {
				t.Fatal(err)
			}
			if k.State == store.KeyStateDestroyed {
				destroyed++
			}
		}
		if destroyed != 1 {
			t.Fatalf("%d keys destroyed, want 1 (the run stops at the unaudited change)", destroyed)
		}
		sts, err := app.Jobs.States(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range sts {
			if st.Job == jobs.JobDestroyDueKeys && (st.LastOutcome != jobs.OutcomeError || st.LastItems != 1) {
				t.Fatalf("persisted state %+v", st)
			}
		}
	})
}
