package store

import (
	"time"

	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"gorm.io/gorm"
)

// Migrations returns the store's schema steps in order. Apply them with
// migrate.Apply(db, store.Migrations()...). Released steps never change.
func Migrations() []migrate.Step {
	return []migrate.Step{
		{ID: "store/0001_init", Up: up0001},
		{ID: "store/0002_deployment_hsm_intents", Up: up0002},
		{ID: "store/0003_locks", Up: up0003},
		{ID: "store/0004_key_idempotency", Up: up0004},
		{ID: "store/0005_version_usage", Up: up0005},
	}
}

// Snapshot of the schema as released in step 0001. Later model changes get
// new steps; these structs stay as they are.
type (
	m0001Key struct {
		ID                 string     `gorm:"primaryKey;size:64"`
		Description        string     `gorm:"type:text"`
		KeySpec            string     `gorm:"size:16;not null"`
		ProtectionLevel    string     `gorm:"size:16;not null"`
		Origin             string     `gorm:"size:16;not null"`
		State              string     `gorm:"size:32;not null;index:idx_kms_keys_state"`
		PrimaryVersion     int64      `gorm:"not null"`
		RotationEnabled    bool       `gorm:"not null"`
		RotationPeriodDays int        `gorm:"not null"`
		NextRotationAt     *time.Time `gorm:"index:idx_kms_keys_next_rotation_at"`
		DeletionDate       *time.Time `gorm:"index:idx_kms_keys_deletion_date"`
		Revision           int64      `gorm:"not null"`
		CreatedAt          time.Time
		UpdatedAt          time.Time
	}
	m0001KeyVersion struct {
		KeyID           string `gorm:"primaryKey;size:64"`
		Version         int64  `gorm:"primaryKey;autoIncrement:false"`
		State           string `gorm:"size:16;not null"`
		WrappedMaterial []byte
		HSMObjectID     string `gorm:"size:191;index:idx_kms_key_versions_hsm_object_id"`
		CreatedAt       time.Time
		DestroyedAt     *time.Time
	}
	m0001Alias struct {
		Name      string `gorm:"primaryKey;size:191"`
		KeyID     string `gorm:"size:64;not null;index:idx_kms_aliases_key_id"`
		CreatedAt time.Time
		UpdatedAt time.Time
	}
	m0001Tag struct {
		KeyID  string `gorm:"primaryKey;size:64"`
		TagKey string `gorm:"primaryKey;size:128"`
		Value  string `gorm:"size:256;not null"`
	}
	m0001ImportToken struct {
		ID                string `gorm:"primaryKey;size:64"`
		KeyID             string `gorm:"size:64;not null;index:idx_kms_import_tokens_key_id"`
		WrappedPrivateKey []byte
		ExpiresAt         time.Time
		CreatedAt         time.Time
	}
)

func (m0001Key) TableName() string         { return "kms_keys" }
func (m0001KeyVersion) TableName() string  { return "kms_key_versions" }
func (m0001Alias) TableName() string       { return "kms_aliases" }
func (m0001Tag) TableName() string         { return "kms_tags" }
func (m0001ImportToken) TableName() string { return "kms_import_tokens" }

func up0001(tx *gorm.DB) error {
	for _, m := range []any{&m0001Key{}, &m0001KeyVersion{}, &m0001Alias{}, &m0001Tag{}, &m0001ImportToken{}} {
		if tx.Migrator().HasTable(m) {
			continue
		}
		if err := tx.Migrator().CreateTable(m); err != nil {
			return err
		}
	}
	return nil
}

// Snapshot of the tables added in step 0002.
type (
	m0002Deployment struct {
		ID           int    `gorm:"primaryKey;autoIncrement:false"`
		DeploymentID string `gorm:"size:64;not null"`
		CreatedAt    time.Time
	}
	m0002HSMIntent struct {
		ObjectID  string    `gorm:"primaryKey;size:191"`
		KeyID     string    `gorm:"size:64;not null"`
		Version   int64     `gorm:"not null"`
		CreatedAt time.Time `gorm:"index:idx_kms_hsm_intents_created_at"`
	}
)

func (m0002Deployment) TableName() string { return "kms_deployment" }
func (m0002HSMIntent) TableName() string  { return "kms_hsm_intents" }

func up0002(tx *gorm.DB) error {
	for _, m := range []any{&m0002Deployment{}, &m0002HSMIntent{}} {
		if tx.Migrator().HasTable(m) {
			continue
		}
		if err := tx.Migrator().CreateTable(m); err != nil {
			return err
		}
	}
	return nil
}

type m0003Lock struct {
	Name      string `gorm:"primaryKey;size:64"`
	Holder    string `gorm:"size:64;not null"`
	ExpiresAt time.Time
}

func (m0003Lock) TableName() string { return "kms_locks" }

func up0003(tx *gorm.DB) error {
	if tx.Migrator().HasTable(&m0003Lock{}) {
		return nil
	}
	return tx.Migrator().CreateTable(&m0003Lock{})
}

// Snapshot of the table added in step 0004.
type m0004KeyIdempotency struct {
	Owner      string `gorm:"primaryKey;size:64"`
	Token      string `gorm:"primaryKey;size:64"`
	KeyID      string `gorm:"size:64;not null"`
	ParamsHash string `gorm:"size:64;not null"`
	CreatedAt  time.Time
}

func (m0004KeyIdempotency) TableName() string { return "kms_key_idempotency" }

func up0004(tx *gorm.DB) error {
	if tx.Migrator().HasTable(&m0004KeyIdempotency{}) {
		return nil
	}
	return tx.Migrator().CreateTable(&m0004KeyIdempotency{})
}

// Snapshot of the columns added to kms_key_versions in step 0005: the
// decryption usage of each version (version retirement).
type m0005KeyVersion struct {
	DecryptCount int64 `gorm:"not null;default:0"`
	LastUsedAt   *time.Time
}

func (m0005KeyVersion) TableName() string { return "kms_key_versions" }

func up0005(tx *gorm.DB) error {
	m := tx.Migrator()
	for _, col := range []string{"DecryptCount", "LastUsedAt"} {
		if m.HasColumn(&m0005KeyVersion{}, col) {
			continue
		}
		if err := m.AddColumn(&m0005KeyVersion{}, col); err != nil {
			return err
		}
	}
	return nil
}
