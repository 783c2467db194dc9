package kmsjobs_test

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
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"github.com/kmsgo/kmsgo/server/internal/store"
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
