package kms

import (
	"github.com/kmsgo/kmsgo/server/internal/store"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
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
	VersionDisabled  = store.VersionDisabled
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
type RotationPolicy = kmsapi.RotationPolicy

// KeyMetadata describes a master key (the HTTP KeyMetadata object).
type KeyMetadata = kmsapi.KeyMetadata

// KeyVersionInfo describes one version of a key.
type KeyVersionInfo = kmsapi.KeyVersion

// AliasInfo is an alias and the key it points at.
type AliasInfo = kmsapi.Alias

// CreateKeyInput is the input of CreateKey. Every field is optional:
// defaults are AES_256, SOFTWARE, KMS. AES_128 requires Origin EXTERNAL.
// Origin EXTERNAL creates a key in PendingImport without material.
type CreateKeyInput = kmsapi.CreateKeyRequest

// ListKeysInput filters and pages ListKeys. Limit defaults to 100 (max
// 1000). Marker is the NextMarker of the previous page. Tag is "key:value".
type ListKeysInput struct {
	Limit  int
	Marker string
	State  KeyState
	Alias  string
	Tag    string
}

// ListKeysOutput is one page of keys. NextMarker is empty on the last page.
type ListKeysOutput = kmsapi.ListKeysResponse

// UpdateKeyInput changes a key's description.
type UpdateKeyInput struct {
	KeyID       string
	Description string
}

// ScheduleKeyDeletionInput schedules deletion after PendingWindowDays (7–30;
// 0 means 30).
type ScheduleKeyDeletionInput struct {
	KeyID             string
	PendingWindowDays int
}

// SetRotationPolicyInput turns automatic rotation on or off. PeriodDays is
// 90–2560 (0 means 365).
type SetRotationPolicyInput struct {
	KeyID      string
	Enabled    bool
	PeriodDays int
}

// DisableKeyVersionInput retires Version of KeyID (key id or alias) for
// decryption. Force skips the quiet-period check (not the primary-version
// check).
type DisableKeyVersionInput struct {
	KeyID   string
	Version int
	Force   bool
}

// TagKeyInput adds or overwrites tags.
type TagKeyInput struct {
	KeyID string
	Tags  map[string]string
}

// UntagKeyInput removes tags by key.
type UntagKeyInput struct {
	KeyID   string
	TagKeys []string
}

// CreateAliasInput creates AliasName ("alias/...") for KeyID.
type CreateAliasInput struct {
	AliasName string
	KeyID     string
}

// UpdateAliasInput points AliasName at another key.
type UpdateAliasInput struct {
	AliasName string
	KeyID     string
}

// GetParametersForImportInput asks for BYOK import parameters.
// WrappingAlgorithm must be RSAES_OAEP_SHA_256 (empty means that).
type GetParametersForImportInput struct {
	KeyID             string
	WrappingAlgorithm string
}

// ImportParameters are the wrapping public key (DER SubjectPublicKeyInfo,
// RSA 2048) and the token to send back with the wrapped material.
type ImportParameters = kmsapi.ImportParameters

// ImportKeyMaterialInput carries key material (16 or 32 bytes) encrypted
// with RSA-OAEP-SHA-256 under the public key of ImportParameters.
type ImportKeyMaterialInput struct {
	KeyID                string
	ImportToken          []byte
	EncryptedKeyMaterial []byte
}

// EncryptInput is the input of Encrypt. KeyID takes a key id or alias name.
type EncryptInput = kmsapi.EncryptRequest

// EncryptOutput is the result of Encrypt.
type EncryptOutput = kmsapi.EncryptResponse

// DecryptInput is the input of Decrypt. KeyID is optional; when set (key id
// or alias) it must name the key inside the ciphertext.
type DecryptInput = kmsapi.DecryptRequest

// DecryptOutput is the result of Decrypt. The caller should zero Plaintext
// when done.
type DecryptOutput = kmsapi.DecryptResponse

// DecryptBatchResult is one item of DecryptBatch: either Output or Err.
type DecryptBatchResult struct {
	Output *DecryptOutput
	Err    error
}

// GenerateDataKeyInput asks for a data key of KeySpec (AES_256/AES_128) or
// NumberOfBytes (1–1024); not both; neither means AES_256.
type GenerateDataKeyInput = kmsapi.GenerateDataKeyRequest

// GenerateDataKeyOutput holds the data key in plaintext (nil for
// GenerateDataKeyWithoutPlaintext) and encrypted under the master key.
type GenerateDataKeyOutput = kmsapi.GenerateDataKeyResponse

// ReEncryptInput re-encrypts a ciphertext under DestinationKeyID (key id or
// alias; empty means the source key), using its current primary version.
// SourceKeyID is optional and, when set, must match the ciphertext's key.
type ReEncryptInput = kmsapi.ReEncryptRequest

// ReEncryptOutput is the result of ReEncrypt.
type ReEncryptOutput = kmsapi.ReEncryptResponse
