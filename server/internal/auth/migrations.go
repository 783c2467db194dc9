package auth

import (
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/internal/migrate"
)

// Table names.
const (
	accessKeysTable = "kms_access_keys"
	noncesTable     = "kms_auth_nonces"
	bootstrapTable  = "kms_auth_bootstrap"
	idemTable       = "kms_access_key_idempotency"
)

// Migrations returns the schema steps of the auth tables, in order. Apply
// them with migrate.Apply together with the other packages' steps.
func Migrations() []migrate.Step {
	return []migrate.Step{
		{ID: "auth/0001_init", Up: migrateV1},
		{ID: "auth/0002_access_key_idempotency", Up: migrateV2},
	}
}

// The v1 table shapes, frozen: later schema changes are new steps with their
// own types, never edits of these.
type accessKeyV1 struct {
	ID            string    `gorm:"primaryKey;size:32"`
	Description   string    `gorm:"size:1024;not null"`
	Status        string    `gorm:"size:16;not null"`
	Policy        string    `gorm:"type:text;not null"`
	WrappedSecret []byte    `gorm:"not null"`
	CreatedAt     time.Time `gorm:"not null"`
	UpdatedAt     time.Time `gorm:"not null"`
}

func (accessKeyV1) TableName() string { return accessKeysTable }

type nonceV1 struct {
	AccessKeyID string    `gorm:"primaryKey;size:32"`
	Nonce       string    `gorm:"primaryKey;size:64"`
	ExpiresAt   time.Time `gorm:"not null;index:idx_kms_auth_nonces_expires_at"`
}

func (nonceV1) TableName() string { return noncesTable }

type bootstrapV1 struct {
	ID          int       `gorm:"primaryKey;autoIncrement:false"`
	AccessKeyID string    `gorm:"size:32;not null"`
	UpdatedAt   time.Time `gorm:"not null"`
}

func (bootstrapV1) TableName() string { return bootstrapTable }

func migrateV1(tx *gorm.DB) error {
	for _, m := range []any{&accessKeyV1{}, &nonceV1{}, &bootstrapV1{}} {
		if tx.Migrator().HasTable(m) {
			continue
		}
		if err := tx.Migrator().CreateTable(m); err != nil {
			return err
		}
	}
	return nil
}

// The v2 table: which access key a CreateAccessKey with an idempotency
// token created. No secret is stored here.
type accessKeyIdemV2 struct {
	Owner       string    `gorm:"primaryKey;size:64"`
	Token       string    `gorm:"primaryKey;size:64"`
	AccessKeyID string    `gorm:"size:32;not null"`
	ParamsHash  string    `gorm:"size:64;not null"`
	CreatedAt   time.Time `gorm:"not null"`
}

func (accessKeyIdemV2) TableName() string { return idemTable }

func migrateV2(tx *gorm.DB) error {
	if tx.Migrator().HasTable(&accessKeyIdemV2{}) {
		return nil
	}
	return tx.Migrator().CreateTable(&accessKeyIdemV2{})
}
