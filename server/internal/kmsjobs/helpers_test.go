package kmsjobs_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/jobs/jobstest"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

// newKMS opens a real kms.Service on db (migrated here) with the dev
// software key backend and a fake clock.
func newKMS(t *testing.T, db *gorm.DB) (*kms.Service, *fakeClock, *devhsm.Backend) {
	t.Helper()
	if err := migrate.Apply(db, store.Migrations()...); err != nil {
		t.Fatal(err)
	}
	backend, err := devhsm.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = backend.Close() })
	clock := newClock()
	svc, err := kms.New(kms.Config{DB: db, HSM: backend, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc, clock, backend
}

// Shared helpers (package jobstest), under the names these tests use.
type fakeClock = jobstest.Clock

func newClock() *fakeClock { return jobstest.NewClock() }

var (
	metric  = jobstest.Metric
	waitFor = jobstest.WaitFor
	stop    = jobstest.Stop
)
