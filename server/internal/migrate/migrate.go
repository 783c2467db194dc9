package migrate

import (
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

// Apply runs, in order, every step whose ID is not yet recorded. Each step and
// its record are written in one transaction (on MySQL DDL commits implicitly,
// so steps must also be safe to re-run: use Migrator().HasTable checks or
// CREATE ... IF NOT EXISTS). Apply is safe to call on every start, also by
// several replicas at once: on MySQL/MariaDB and PostgreSQL it holds a
// database-wide lock (GET_LOCK, pg_advisory_lock) while it works; on other
// dialects (SQLite) a run that fails because another process raced it is
// retried a few times.
func Apply(db *gorm.DB, steps ...Step) error {
	seen := make(map[string]bool, len(steps))
	for _, s := range steps {
		if seen[s.ID] {
			return fmt.Errorf("%w: %s", ErrDuplicateStep, s.ID)
		}
		seen[s.ID] = true
	}
	switch db.Dialector.Name() {
	case "postgres", "mysql":
		return withLock(db, func(conn *gorm.DB) error { return apply(conn, steps) })
	}
	// No lock on this dialect: a run that lost a race with another replica
	// (table created meanwhile) is retried; steps are re-runnable.
	var err error
	for attempt := 1; ; attempt++ {
		if err = apply(db, steps); err == nil || attempt == applyAttempts {
			return err
		}
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
}

// applyAttempts bounds how often Apply runs the steps on a dialect without
// a migration lock.
const applyAttempts = 3

func apply(db *gorm.DB, steps []Step) error {
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

// lockTimeoutSeconds bounds how long Apply waits for another replica's
// migration run on MySQL/MariaDB.
const lockTimeoutSeconds = 120

// withLock runs fn on one pinned connection that holds the dialect's
// session-level migration lock (PostgreSQL and MySQL/MariaDB only).
func withLock(db *gorm.DB, fn func(conn *gorm.DB) error) error {
	switch db.Dialector.Name() {
	case "postgres":
		return db.Connection(func(conn *gorm.DB) error {
			conn = conn.Session(&gorm.Session{}) // fresh statement per chain, same connection
			const key = "hashtext('kmsgo/migrate/' || current_schema())"
			if err := conn.Exec("SELECT pg_advisory_lock(" + key + ")").Error; err != nil {
				return fmt.Errorf("migrate: lock: %w", err)
			}
			defer conn.Exec("SELECT pg_advisory_unlock(" + key + ")")
			return fn(conn)
		})
	case "mysql":
		return db.Connection(func(conn *gorm.DB) error {
			conn = conn.Session(&gorm.Session{}) // fresh statement per chain, same connection
			const name = "CONCAT('kmsgo_migrate_', DATABASE())"
			var got *int64
			if err := conn.Raw("SELECT GET_LOCK("+name+", ?)", lockTimeoutSeconds).Scan(&got).Error; err != nil {
				return fmt.Errorf("migrate: lock: %w", err)
			}
			if got == nil || *got != 1 {
				return fmt.Errorf("migrate: lock: another replica held the migration lock for %ds", lockTimeoutSeconds)
			}
			defer conn.Exec("SELECT RELEASE_LOCK(" + name + ")")
			return fn(conn)
		})
	}
	return fmt.Errorf("migrate: no migration lock for dialect %q", db.Dialector.Name())
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
