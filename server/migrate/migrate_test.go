package migrate_test

import (
	"errors"
	"testing"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/migrate"
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
