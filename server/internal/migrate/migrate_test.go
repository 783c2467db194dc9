package migrate_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"gorm.io/gorm"
)

type widget struct {
	ID   uint
	Name string `gorm:"size:64"`
}

func TestApply(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		calls := 0
		steps := []migrate.Step{
			{ID: "test/0001", Up: func(tx *gorm.DB) error { calls++; return tx.Migrator().CreateTable(&widget{}) }},
		}
		for i := 0; i < 2; i++ {
			if err := migrate.Apply(db, steps...); err != nil {
				t.Fatal(err)
			}
		}
		if calls != 1 {
			t.Fatalf("step ran %d times, want 1", calls)
		}
		if !db.Migrator().HasTable(&widget{}) {
			t.Fatal("table missing")
		}
		boom := errors.New("boom")
		err := migrate.Apply(db, append(steps, migrate.Step{ID: "test/0002", Up: func(*gorm.DB) error { return boom }})...)
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		ids, err := migrate.Applied(db)
		if err != nil || len(ids) != 1 || ids[0] != "test/0001" {
			t.Fatalf("applied = %v, %v", ids, err)
		}
		if err := migrate.Apply(db, steps[0], steps[0]); !errors.Is(err, migrate.ErrDuplicateStep) {
			t.Fatalf("duplicate: err = %v", err)
		}
	})
}

// TestApplyConcurrentReplicas starts several "replicas" (own connection
// pools on one database) that apply the same steps at the same moment, as
// kmsd replicas do when they start together: all succeed, each step is
// recorded once and the schema is complete.
func TestApplyConcurrentReplicas(t *testing.T) {
	type gadget struct {
		ID   uint
		Name string `gorm:"size:64"`
	}
	guarded := func(m any) func(tx *gorm.DB) error {
		return func(tx *gorm.DB) error {
			if tx.Migrator().HasTable(m) {
				return nil
			}
			return tx.Migrator().CreateTable(m)
		}
	}
	steps := []migrate.Step{
		{ID: "race/0001_widgets", Up: guarded(&widget{})},
		{ID: "race/0002_gadgets", Up: guarded(&gadget{})},
	}
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			dsn, _ := dbtest.OpenDSN(t, d)
			const replicas = 4
			errs := make([]error, replicas)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range replicas {
				db, err := dbtest.Connect(d, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if s, err := db.DB(); err == nil {
						_ = s.Close()
					}
				})
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = migrate.Apply(db, steps...)
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica %d: %v", i, err)
				}
			}
			db, err := dbtest.Connect(d, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if s, err := db.DB(); err == nil {
					_ = s.Close()
				}
			}()
			ids, err := migrate.Applied(db)
			if err != nil || len(ids) != 2 {
				t.Fatalf("applied = %v, %v; want each step once", ids, err)
			}
			if !db.Migrator().HasTable(&widget{}) || !db.Migrator().HasTable(&gadget{}) {
				t.Fatal("tables missing")
			}
		})
	}
}
