package store

import (
	"time"

	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// Stored enumerations: the wire types of starter/kmsapi, whose values are
// part of the on-disk format and must never change (a test freezes them).
type (
	KeyState        = kmsapi.KeyState
	KeySpec         = kmsapi.KeySpec
	ProtectionLevel = kmsapi.ProtectionLevel
	Origin          = kmsapi.Origin
	VersionState    = kmsapi.VersionState
)

// Enumeration values.
const (
	KeyStateEnabled         = kmsapi.KeyStateEnabled
	KeyStateDisabled        = kmsapi.KeyStateDisabled
	KeyStatePendingDeletion = kmsapi.KeyStatePendingDeletion
	KeyStatePendingImport   = kmsapi.KeyStatePendingImport
	KeyStateDestroyed       = kmsapi.KeyStateDestroyed

	KeySpecAES256 = kmsapi.KeySpecAES256
	KeySpecAES128 = kmsapi.KeySpecAES128

	ProtectionHSM      = kmsapi.ProtectionHSM
	ProtectionSoftware = kmsapi.ProtectionSoftware

	OriginKMS      = kmsapi.OriginKMS
	OriginExternal = kmsapi.OriginExternal

	VersionEnabled   = kmsapi.VersionEnabled
	VersionDisabled  = kmsapi.VersionDisabled
	VersionDestroyed = kmsapi.VersionDestroyed
)

// Key is a master key (table kms_keys). Revision is bumped by every update
// and is the compare-and-swap token.
type Key struct {
	ID                 string          `gorm:"primaryKey;size:64"`
	Description        string          `gorm:"type:text"`
	KeySpec            KeySpec         `gorm:"size:16;not null"`
	ProtectionLevel    ProtectionLevel `gorm:"size:16;not null"`
	Origin             Origin          `gorm:"size:16;not null"`
	State              KeyState        `gorm:"size:32;not null;index"`
	PrimaryVersion     int64           `gorm:"not null"`
	RotationEnabled    bool            `gorm:"not null"`
	RotationPeriodDays int             `gorm:"not null"`
	NextRotationAt     *time.Time      `gorm:"index"`
	DeletionDate       *time.Time      `gorm:"index"`
	Revision           int64           `gorm:"not null"`
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// TableName implements gorm's Tabler.
func (Key) TableName() string { return "kms_keys" }

// KeyVersion is one version of a master key (table kms_key_versions). A
// SOFTWARE version holds WrappedMaterial (wrapped by the HSM root key), an
// HSM version holds HSMObjectID. (KeyID, Version) is the primary key, which
// makes two concurrent rotations to the same version number impossible.
// DecryptCount and LastUsedAt are the decryption usage flushed so far by
// every replica (AddVersionUsage); a Disabled version keeps its material.
type KeyVersion struct {
	KeyID           string       `gorm:"primaryKey;size:64"`
	Version         int64        `gorm:"primaryKey;autoIncrement:false"`
	State           VersionState `gorm:"size:16;not null"`
	WrappedMaterial []byte
	HSMObjectID     string `gorm:"size:191;index"`
	CreatedAt       time.Time
	DestroyedAt     *time.Time
	DecryptCount    int64 `gorm:"not null;default:0"`
	LastUsedAt      *time.Time
}

// TableName implements gorm's Tabler.
func (KeyVersion) TableName() string { return "kms_key_versions" }

// Alias maps a unique alias name ("alias/...") to a key (table kms_aliases).
type Alias struct {
	Name      string `gorm:"primaryKey;size:191"`
	KeyID     string `gorm:"size:64;not null;index"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TableName implements gorm's Tabler.
func (Alias) TableName() string { return "kms_aliases" }

// Tag is one key/value tag of a key (table kms_tags).
type Tag struct {
	KeyID  string `gorm:"primaryKey;size:64"`
	TagKey string `gorm:"primaryKey;size:128"`
	Value  string `gorm:"size:256;not null"`
}

// TableName implements gorm's Tabler.
func (Tag) TableName() string { return "kms_tags" }

// ImportToken is an outstanding BYOK import (table kms_import_tokens). ID is
// the hex SHA-256 of the token handed to the caller; the RSA private key is
// stored wrapped by the HSM root key.
type ImportToken struct {
	ID                string `gorm:"primaryKey;size:64"`
	KeyID             string `gorm:"size:64;not null;index"`
	WrappedPrivateKey []byte
	ExpiresAt         time.Time
	CreatedAt         time.Time
}

// TableName implements gorm's Tabler.
func (ImportToken) TableName() string { return "kms_import_tokens" }

// KeyIdempotency records which key a CreateKey with an idempotency token
// created (table kms_key_idempotency). (Owner, Token) is the primary key,
// so concurrent requests with one token create one key: the row is
// inserted in the key's own transaction, before the key.
type KeyIdempotency struct {
	Owner      string `gorm:"primaryKey;size:64"` // the caller's access key id
	Token      string `gorm:"primaryKey;size:64"`
	KeyID      string `gorm:"size:64;not null"`
	ParamsHash string `gorm:"size:64;not null"` // hex SHA-256 of the normalized request
	CreatedAt  time.Time
}

// TableName implements gorm's Tabler.
func (KeyIdempotency) TableName() string { return "kms_key_idempotency" }
