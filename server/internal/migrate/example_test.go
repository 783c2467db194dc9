package migrate_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ExampleApply applies a package's steps twice, as every kmsd start does:
// the second run finds the step recorded and does nothing.
func ExampleApply() {
	dir, err := os.MkdirTemp("", "migrate-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "kms.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	type note struct {
		ID   uint
		Text string
	}
	runs := 0
	steps := []migrate.Step{{ID: "example/0001_notes", Up: func(tx *gorm.DB) error {
		runs++
		return tx.Migrator().CreateTable(&note{})
	}}}
	for range 2 {
		if err := migrate.Apply(db, steps...); err != nil {
			panic(err)
		}
	}
	applied, err := migrate.Applied(db)
	fmt.Println(runs, applied, err)
	// Output: 1 [example/0001_notes] <nil>
}
