package jobs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/kms"
	"github.com/kmsgo/kmsgo/server/migrate"
	"github.com/kmsgo/kmsgo/server/store"
)

// Example schedules the key service's maintenance and runs one job on
// demand. kmsd does the same from its jobs: configuration section.
func Example() {
	dir, err := os.MkdirTemp("", "jobs-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	backend, err := devhsm.Open(filepath.Join(dir, "hsm")) // NOT an HSM; production uses hsm/p11
	if err != nil {
		panic(err)
	}
	defer backend.Close()
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "kms.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := migrate.Apply(db, store.Migrations()...); err != nil {
		panic(err)
	}
	svc, err := kms.New(kms.Config{DB: db, HSM: backend})
	if err != nil {
		panic(err)
	}
	defer svc.Close()

	s, err := jobs.New(jobs.Config{DestroySchedule: "@every 1m", RotateSchedule: "@every 5m", OrphanSchedule: "@every 15m"}, svc)
	if err != nil {
		panic(err)
	}
	if err := s.Start(); err != nil { // also runs every job once now
		panic(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	}()

	res, err := s.RunNow(context.Background(), jobs.JobDestroyDueKeys)
	fmt.Println(s.Jobs())
	fmt.Println(res.Job, res.Items, err)
	// Output:
	// [destroy_due_keys rotate_due_keys cleanup_orphans]
	// destroy_due_keys 0 <nil>
}

// ExampleScheduler_RunNow adds a job of one's own next to the maintenance
// jobs and runs it on demand.
func ExampleScheduler_RunNow() {
	s, err := jobs.New(jobs.Config{}, nil, jobs.Job{
		Name:     "renew_ciphertexts",
		Schedule: "0 3 * * *", // 03:00 UTC daily
		Run: func(ctx context.Context) (int, error) {
			return 42, nil // items changed
		},
	})
	if err != nil {
		panic(err)
	}
	res, err := s.RunNow(context.Background(), "renew_ciphertexts")
	fmt.Println(res.Items, err)
	// Output: 42 <nil>
}

// ExampleReportChange: a job reports each item it changed; with
// Config.AuditChange every change is audited as it happens, and a failed
// audit stops the job.
func ExampleReportChange() {
	audit := func(_ context.Context, job string, c jobs.Change) error {
		fmt.Printf("audit %s: %s %s %s -> %s\n", job, c.Key, c.Field, c.Old, c.New)
		return nil
	}
	s, err := jobs.New(jobs.Config{AuditChange: audit}, nil, jobs.Job{
		Name:     "retire",
		Schedule: "@daily",
		Run: func(ctx context.Context) (int, error) {
			// ... change key k1, then report it:
			if err := jobs.ReportChange(ctx, jobs.Change{Key: "k1", Field: jobs.FieldState, Old: "Enabled", New: "Disabled"}); err != nil {
				return 1, err // not audited: stop changing things
			}
			return 1, nil
		},
	})
	if err != nil {
		panic(err)
	}
	res, err := s.RunNow(context.Background(), "retire")
	fmt.Println(res.Items, len(res.Changes), err)
	// Output:
	// audit retire: k1 state Enabled -> Disabled
	// 1 1 <nil>
}
