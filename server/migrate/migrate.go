// Package migrate applies explicit, versioned schema migrations to a GORM
// database and records which ones ran, so every kmsd replica and every
// dialect (SQLite, MySQL/MariaDB, PostgreSQL) ends up with the same schema.
//
// Each package that owns tables exports its steps (for example
// store.Migrations()); kmsd applies them all at start. A step's ID never
// changes once released; new schema changes are new steps.
package migrate

import (
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Step is one schema change. ID is unique and stable ("store/0001_init").
type Step struct {
	ID string
	Up func(tx *gorm.DB) error
}

// record is the bookkeeping row of an applied step.
type record struct {
	ID        string `gorm:"primaryKey;size:191"`
	AppliedAt time.Time
}

func (record) TableName() string { return "kms_schema_migrations" }

// ErrDuplicateStep reports two steps with the same ID in one Apply call.
var ErrDuplicateStep = errors.New("migrate: duplicate step id")

// Apply runs, in order, every step whose ID is not yet recorded. Each step and
// its record are written in one transaction (on MySQL DDL commits implicitly,
// so steps must also be safe to re-run: use Migrator().HasTable checks or
// CREATE ... IF NOT EXISTS). Apply is safe to call on every start.
func Apply(db *gorm.DB, steps ...Step) error {
	seen := make(map[string]bool, len(steps))
	for _, s := range steps {
		if seen[s.ID] {
			return fmt.Errorf("%w: %s", ErrDuplicateStep, s.ID)
		}
		seen[s.ID] = true
	}
	if err := db.AutoMigrate(&record{}); err != nil {
		return fmt.Errorf("migrate: bookkeeping table: %w", err)
	}
	for _, s := range steps {
		var n int64
		if err := db.Model(&record{}).Where("id = ?", s.ID).Count(&n).Error; err != nil {
			return fmt.Errorf("migrate: %s: %w", s.ID, err)
		}
		if n > 0 {
			continue
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := s.Up(tx); err != nil {
				return err
			}
			return tx.Create(&record{ID: s.ID, AppliedAt: time.Now().UTC()}).Error
		})
		if err != nil {
			// Another replica may have applied the same step concurrently.
			var again int64
			if db.Model(&record{}).Where("id = ?", s.ID).Count(&again).Error == nil && again > 0 {
				continue
			}
			return fmt.Errorf("migrate: %s: %w", s.ID, err)
		}
	}
	return nil
}

// Applied returns the IDs of applied steps in application order.
func Applied(db *gorm.DB) ([]string, error) {
	var rows []record
	if err := db.Order("applied_at, id").Find(&rows).Error; err != nil {
		return nil, err
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids, nil
}
