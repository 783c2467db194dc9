package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Deployment is the one row (ID 1) that names this database's deployment
// (table kms_deployment). Every HSM object a deployment creates carries its
// DeploymentID, so deployments that share a token can tell their objects
// apart; it never changes once written.
type Deployment struct {
	ID           int    `gorm:"primaryKey;autoIncrement:false"`
	DeploymentID string `gorm:"size:64;not null"`
	CreatedAt    time.Time
}

// TableName implements gorm's Tabler.
func (Deployment) TableName() string { return "kms_deployment" }

// HSMIntent records an HSM object this deployment is about to create (table
// kms_hsm_intents). It is written before the object is created and deleted
// in the transaction that commits the version referencing the object, so a
// row that outlives its grace period names an object that was (perhaps)
// created and never committed: the only kind of object CleanupOrphans may
// destroy.
type HSMIntent struct {
	ObjectID  string `gorm:"primaryKey;size:191"`
	KeyID     string `gorm:"size:64;not null"`
	Version   int64  `gorm:"not null"`
	CreatedAt time.Time
}

// TableName implements gorm's Tabler.
func (HSMIntent) TableName() string { return "kms_hsm_intents" }

// DeploymentIDLen is the length in hex characters of a deployment id.
const DeploymentIDLen = 16

// EnsureDeploymentID returns the database's deployment id, creating a
// random one on first use. Replicas starting at once agree: the first
// insert wins and every caller reads the stored row back.
func (s *Store) EnsureDeploymentID(ctx context.Context) (string, error) {
	var b [DeploymentIDLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	row := Deployment{ID: 1, DeploymentID: hex.EncodeToString(b[:]), CreatedAt: time.Now().UTC()}
	if err := s.with(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil && !isDuplicate(err) {
		return "", err
	}
	var got Deployment
	if err := s.with(ctx).Where("id = ?", 1).Take(&got).Error; err != nil {
		return "", wrapErr(err)
	}
	if got.DeploymentID == "" {
		return "", errors.New("store: empty deployment id")
	}
	return got.DeploymentID, nil
}

// RecordHSMIntent writes an intent row before the HSM object is created.
func (s *Store) RecordHSMIntent(ctx context.Context, in *HSMIntent) error {
	return wrapErr(s.with(ctx).Create(in).Error)
}

// HSMIntentsBefore returns the intent rows created before t, oldest first,
// at most limit of them.
func (s *Store) HSMIntentsBefore(ctx context.Context, t time.Time, limit int) ([]HSMIntent, error) {
	var out []HSMIntent
	err := s.with(ctx).Where("created_at < ?", t).Order("created_at, object_id").Limit(limit).Find(&out).Error
	return out, wrapErr(err)
}

// DeleteHSMIntent removes the intent row of objectID (no error if none).
func (s *Store) DeleteHSMIntent(ctx context.Context, objectID string) error {
	return wrapErr(s.with(ctx).Where("object_id = ?", objectID).Delete(&HSMIntent{}).Error)
}

// completeIntents deletes, inside a committing transaction, the intent rows
// of the HSM objects that versions now reference.
func completeIntents(tx *gorm.DB, versions ...KeyVersion) error {
	var ids []string
	for _, v := range versions {
		if v.HSMObjectID != "" {
			ids = append(ids, v.HSMObjectID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return tx.Where("object_id IN ?", ids).Delete(&HSMIntent{}).Error
}

// Lock is a named lease row (table kms_locks) that serialises a start-up
// step across replicas on every dialect: the first insert wins, an expired
// lease can be taken over.
type Lock struct {
	Name      string `gorm:"primaryKey;size:64"`
	Holder    string `gorm:"size:64;not null"`
	ExpiresAt time.Time
}

// TableName implements gorm's Tabler.
func (Lock) TableName() string { return "kms_locks" }

// AcquireLock takes the lease name for ttl, waiting (polling) while another
// holder has it, until ctx ends. Call the returned release when done.
func (s *Store) AcquireLock(ctx context.Context, name string, ttl time.Duration) (release func(), err error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	holder := hex.EncodeToString(b[:])
	for {
		now := time.Now().UTC()
		err := s.with(ctx).Create(&Lock{Name: name, Holder: holder, ExpiresAt: now.Add(ttl)}).Error
		if err == nil {
			return func() {
				_ = s.db.Where("name = ? AND holder = ?", name, holder).Delete(&Lock{}).Error
			}, nil
		}
		if !isDuplicate(err) {
			return nil, err
		}
		// Held: take it over only when expired (a crashed holder).
		_ = s.with(ctx).Where("name = ? AND expires_at < ?", name, now).Delete(&Lock{}).Error
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("store: lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}
