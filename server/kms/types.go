package kms

import (
	"time"

	"github.com/kmsgo/kmsgo/server/store"
)

// Enumerations, shared with the store (their stored values are frozen).
type (
	KeyState        = store.KeyState
	KeySpec         = store.KeySpec
	ProtectionLevel = store.ProtectionLevel
	Origin          = store.Origin
	VersionState    = store.VersionState
)

// Enumeration values.
const (
	KeyStateEnabled         = store.KeyStateEnabled
	KeyStateDisabled        = store.KeyStateDisabled
	KeyStatePendingDeletion = store.KeyStatePendingDeletion
	KeyStatePendingImport   = store.KeyStatePendingImport
	KeyStateDestroyed       = store.KeyStateDestroyed

	KeySpecAES256 = store.KeySpecAES256
	KeySpecAES128 = store.KeySpecAES128

	ProtectionHSM      = store.ProtectionHSM
	ProtectionSoftware = store.ProtectionSoftware

	OriginKMS      = store.OriginKMS
	OriginExternal = store.OriginExternal

	VersionEnabled   = store.VersionEnabled
	VersionDestroyed = store.VersionDestroyed
)

// Limits enforced by the service.
const (
	MaxPlaintextSize      = 4096 // Encrypt
	MaxDescriptionLen     = 8192
	MaxTagsPerKey         = 50
	MaxTagKeyLen          = 128
	MaxTagValueLen        = 256
	MaxAliasNameLen       = 191 // the kms_aliases.name column (191: utf8mb4 index limit on MySQL/MariaDB)
	MaxBatchDecrypt       = 100
	MaxRandomBytes        = 1024
	MaxDataKeyBytes       = 1024
	MinDeletionWindowDays = 7
	MaxDeletionWindowDays = 30
	DefaultDeletionDays   = 30
	MinRotationDays       = 90
	MaxRotationDays       = 2560
	DefaultRotationDays   = 365
	AliasPrefix           = "alias/"
	// WrappingAlgorithmOAEPSHA256 is the only accepted import wrapping algorithm.
	WrappingAlgorithmOAEPSHA256 = "RSAES_OAEP_SHA_256"
)

// RotationPolicy is a key's automatic rotation setting.
type RotationPolicy struct {
	Enabled        bool       `json:"enabled"`
	PeriodDays     int        `json:"period_days"`
	NextRotationAt *time.Time `json:"next_rotation_at"`
}

// KeyMetadata describes a master key (the HTTP KeyMetadata object).
type KeyMetadata struct {
	KeyID           string            `json:"key_id"`
	Description     string            `json:"description"`
	KeySpec         KeySpec           `json:"key_spec"`
	ProtectionLevel ProtectionLevel   `json:"protection_level"`
	Origin          Origin            `json:"origin"`
	KeyState        KeyState          `json:"key_state"`
	CreationDate    time.Time         `json:"creation_date"`
	DeletionDate    *time.Time        `json:"deletion_date"`
	PrimaryVersion  int64             `json:"primary_version"`
	Aliases         []string          `json:"aliases"`
	Tags            map[string]string `json:"tags"`
	Rotation        RotationPolicy    `json:"rotation"`
}

// KeyVersionInfo describes one version of a key.
type KeyVersionInfo struct {
	Version      int64        `json:"version"`
	State        VersionState `json:"state"`
	Primary      bool         `json:"primary"`
	CreationDate time.Time    `json:"creation_date"`
}

// AliasInfo is an alias and the key it points at.
type AliasInfo struct {
	AliasName string `json:"alias_name"`
	KeyID     string `json:"key_id"`
}

// CreateKeyInput is the input of CreateKey. Every field is optional:
// defaults are AES_256, SOFTWARE, KMS. AES_128 requires Origin EXTERNAL.
// Origin EXTERNAL creates a key in PendingImport without material.
type CreateKeyInput struct {
	Description     string            `json:"description"`
	KeySpec         KeySpec           `json:"key_spec"`
	ProtectionLevel ProtectionLevel   `json:"protection_level"`
	Origin          Origin            `json:"origin"`
	Tags            map[string]string `json:"tags"`
	Alias           string            `json:"alias"`
}

// ListKeysInput filters and pages ListKeys. Limit defaults to 100 (max
// 1000). Marker is the NextMarker of the previous page. Tag is "key:value".
type ListKeysInput struct {
	Limit  int      `json:"limit"`
	Marker string   `json:"marker"`
	State  KeyState `json:"state"`
	Alias  string   `json:"alias"`
	Tag    string   `json:"tag"`
}

// ListKeysOutput is one page of keys. NextMarker is empty on the last page.
type ListKeysOutput struct {
	Keys       []KeyMetadata `json:"keys"`
	NextMarker string        `json:"next_marker"`
}

// UpdateKeyInput changes a key's description.
type UpdateKeyInput struct {
	KeyID       string `json:"key_id"`
	Description string `json:"description"`
}

// ScheduleKeyDeletionInput schedules deletion after PendingWindowDays (7–30;
// 0 means 30).
type ScheduleKeyDeletionInput struct {
	KeyID             string `json:"key_id"`
	PendingWindowDays int    `json:"pending_window_days"`
}

// SetRotationPolicyInput turns automatic rotation on or off. PeriodDays is
// 90–2560 (0 means 365).
type SetRotationPolicyInput struct {
	KeyID      string `json:"key_id"`
	Enabled    bool   `json:"enabled"`
	PeriodDays int    `json:"period_days"`
}

// TagKeyInput adds or overwrites tags.
type TagKeyInput struct {
	KeyID string            `json:"key_id"`
	Tags  map[string]string `json:"tags"`
}

// UntagKeyInput removes tags by key.
type UntagKeyInput struct {
	KeyID   string   `json:"key_id"`
	TagKeys []string `json:"tag_keys"`
}

// CreateAliasInput creates AliasName ("alias/...") for KeyID.
type CreateAliasInput struct {
	AliasName string `json:"alias_name"`
	KeyID     string `json:"key_id"`
}

// UpdateAliasInput points AliasName at another key.
type UpdateAliasInput struct {
	AliasName string `json:"alias_name"`
	KeyID     string `json:"key_id"`
}

// GetParametersForImportInput asks for BYOK import parameters.
// WrappingAlgorithm must be RSAES_OAEP_SHA_256 (empty means that).
type GetParametersForImportInput struct {
	KeyID             string `json:"key_id"`
	WrappingAlgorithm string `json:"wrapping_algorithm"`
}

// ImportParameters are the wrapping public key (DER SubjectPublicKeyInfo,
// RSA 2048) and the token to send back with the wrapped material.
type ImportParameters struct {
	KeyID       string    `json:"key_id"`
	ImportToken []byte    `json:"import_token"`
	PublicKey   []byte    `json:"public_key"`
	ValidTo     time.Time `json:"valid_to"`
}

// ImportKeyMaterialInput carries key material (16 or 32 bytes) encrypted
// with RSA-OAEP-SHA-256 under the public key of ImportParameters.
type ImportKeyMaterialInput struct {
	KeyID                string `json:"key_id"`
	ImportToken          []byte `json:"import_token"`
	EncryptedKeyMaterial []byte `json:"encrypted_key_material"`
}

// EncryptInput is the input of Encrypt. KeyID takes a key id or alias name.
type EncryptInput struct {
	KeyID             string            `json:"key_id"`
	Plaintext         []byte            `json:"plaintext"`
	EncryptionContext map[string]string `json:"encryption_context"`
}

// EncryptOutput is the result of Encrypt.
type EncryptOutput struct {
	KeyID          string `json:"key_id"`
	KeyVersion     int64  `json:"key_version"`
	CiphertextBlob []byte `json:"ciphertext_blob"`
}

// DecryptInput is the input of Decrypt. KeyID is optional; when set (key id
// or alias) it must name the key inside the ciphertext.
type DecryptInput struct {
	CiphertextBlob    []byte            `json:"ciphertext_blob"`
	EncryptionContext map[string]string `json:"encryption_context"`
	KeyID             string            `json:"key_id,omitempty"`
}

// DecryptOutput is the result of Decrypt. The caller should zero Plaintext
// when done.
type DecryptOutput struct {
	KeyID      string `json:"key_id"`
	KeyVersion int64  `json:"key_version"`
	Plaintext  []byte `json:"plaintext"`
}

// DecryptBatchResult is one item of DecryptBatch: either Output or Err.
type DecryptBatchResult struct {
	Output *DecryptOutput
	Err    error
}

// GenerateDataKeyInput asks for a data key of KeySpec (AES_256/AES_128) or
// NumberOfBytes (1–1024); not both; neither means AES_256.
type GenerateDataKeyInput struct {
	KeyID             string            `json:"key_id"`
	KeySpec           KeySpec           `json:"key_spec"`
	NumberOfBytes     int               `json:"number_of_bytes"`
	EncryptionContext map[string]string `json:"encryption_context"`
}

// GenerateDataKeyOutput holds the data key in plaintext (nil for
// GenerateDataKeyWithoutPlaintext) and encrypted under the master key.
type GenerateDataKeyOutput struct {
	KeyID          string `json:"key_id"`
	KeyVersion     int64  `json:"key_version"`
	Plaintext      []byte `json:"plaintext,omitempty"`
	CiphertextBlob []byte `json:"ciphertext_blob"`
}

// ReEncryptInput re-encrypts a ciphertext under DestinationKeyID (key id or
// alias; empty means the source key), using its current primary version.
// SourceKeyID is optional and, when set, must match the ciphertext's key.
type ReEncryptInput struct {
	CiphertextBlob               []byte            `json:"ciphertext_blob"`
	SourceEncryptionContext      map[string]string `json:"source_encryption_context"`
	SourceKeyID                  string            `json:"source_key_id,omitempty"`
	DestinationKeyID             string            `json:"destination_key_id"`
	DestinationEncryptionContext map[string]string `json:"destination_encryption_context"`
}

// ReEncryptOutput is the result of ReEncrypt.
type ReEncryptOutput struct {
	SourceKeyID      string `json:"source_key_id"`
	SourceKeyVersion int64  `json:"source_key_version"`
	KeyID            string `json:"key_id"`
	KeyVersion       int64  `json:"key_version"`
	CiphertextBlob   []byte `json:"ciphertext_blob"`
}
