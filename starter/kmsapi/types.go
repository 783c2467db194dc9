package kmsapi

import (
	"encoding/json"
	"time"
)

// KeyState is the lifecycle state of a master key (stored values: frozen).
type KeyState string

// Key states.
const (
	KeyStateEnabled         KeyState = "Enabled"
	KeyStateDisabled        KeyState = "Disabled"
	KeyStatePendingDeletion KeyState = "PendingDeletion"
	KeyStatePendingImport   KeyState = "PendingImport"
	KeyStateDestroyed       KeyState = "Destroyed"
)

// KeySpec is a key's algorithm and size (stored values: frozen).
type KeySpec string

// Key specs.
const (
	KeySpecAES256 KeySpec = "AES_256"
	KeySpecAES128 KeySpec = "AES_128"
)

// Bits returns the key size in bits (0 for an unknown spec).
func (s KeySpec) Bits() int {
	switch s {
	case KeySpecAES256:
		return 256
	case KeySpecAES128:
		return 128
	}
	return 0
}

// ProtectionLevel says where key material lives (stored values: frozen).
type ProtectionLevel string

// Protection levels.
const (
	ProtectionHSM      ProtectionLevel = "HSM"
	ProtectionSoftware ProtectionLevel = "SOFTWARE"
)

// Origin says who made the key material (stored values: frozen).
type Origin string

// Origins.
const (
	OriginKMS      Origin = "KMS"
	OriginExternal Origin = "EXTERNAL"
)

// VersionState is the state of one key version (stored values: frozen).
type VersionState string

// Version states.
const (
	VersionEnabled   VersionState = "Enabled"
	VersionDestroyed VersionState = "Destroyed"
)

// AliasPrefix starts every alias name ("alias/orders"). An alias is
// accepted wherever a key id is.
const AliasPrefix = "alias/"

// WrappingRSAOAEPSHA256 is the only import wrapping algorithm.
const WrappingRSAOAEPSHA256 = "RSAES_OAEP_SHA_256"

// RotationPolicy is a key's automatic rotation setting.
type RotationPolicy struct {
	Enabled        bool       `json:"enabled"`
	PeriodDays     int        `json:"period_days"`
	NextRotationAt *time.Time `json:"next_rotation_at"`
}

// KeyMetadata describes a master key.
type KeyMetadata struct {
	KeyID           string            `json:"key_id"`
	Description     string            `json:"description"`
	KeySpec         KeySpec           `json:"key_spec"`
	ProtectionLevel ProtectionLevel   `json:"protection_level"`
	Origin          Origin            `json:"origin"`
	KeyState        KeyState          `json:"key_state"`
	CreationDate    time.Time         `json:"creation_date"`
	DeletionDate    *time.Time        `json:"deletion_date"`
	PrimaryVersion  int               `json:"primary_version"`
	Aliases         []string          `json:"aliases"`
	Tags            map[string]string `json:"tags"`
	Rotation        RotationPolicy    `json:"rotation"`
}

// KeyVersion describes one version of a master key.
type KeyVersion struct {
	Version      int          `json:"version"`
	State        VersionState `json:"state"`
	Primary      bool         `json:"primary"`
	CreationDate time.Time    `json:"creation_date"`
}

// Alias maps an alias name ("alias/orders") to a key id.
type Alias struct {
	AliasName string `json:"alias_name"`
	KeyID     string `json:"key_id"`
}

// CreateKeyRequest is the body of POST /v1/keys. Every field is optional:
// the defaults are AES_256, SOFTWARE, KMS. AES_128 requires origin
// EXTERNAL, which creates a key in PendingImport without material.
type CreateKeyRequest struct {
	Description     string            `json:"description,omitempty"`
	KeySpec         KeySpec           `json:"key_spec,omitempty"`
	ProtectionLevel ProtectionLevel   `json:"protection_level,omitempty"`
	Origin          Origin            `json:"origin,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	Alias           string            `json:"alias,omitempty"`
}

// ListKeysResponse is one page of GET /v1/keys. NextMarker is empty on the
// last page.
type ListKeysResponse struct {
	Keys       []KeyMetadata `json:"keys"`
	NextMarker string        `json:"next_marker"`
}

// DescriptionRequest is the body of PATCH /v1/keys/:id.
type DescriptionRequest struct {
	Description *string `json:"description"`
}

// ScheduleDeletionRequest is the body of POST /v1/keys/:id/schedule-deletion
// (7-30 days; absent means 30).
type ScheduleDeletionRequest struct {
	PendingWindowDays *int `json:"pending_window_days,omitempty"`
}

// RotationPolicyRequest is the body of PUT /v1/keys/:id/rotation-policy.
type RotationPolicyRequest struct {
	Enabled    *bool `json:"enabled"`
	PeriodDays *int  `json:"period_days,omitempty"`
}

// VersionsResponse is the answer of GET /v1/keys/:id/versions.
type VersionsResponse struct {
	Versions []KeyVersion `json:"versions"`
}

// Tags is the body and answer of the tag routes.
type Tags struct {
	Tags map[string]string `json:"tags"`
}

// UntagRequest is the body of POST /v1/keys/:id/untag.
type UntagRequest struct {
	TagKeys []string `json:"tag_keys"`
}

// ImportParametersRequest is the body of POST /v1/keys/:id/import-parameters.
type ImportParametersRequest struct {
	WrappingAlgorithm string `json:"wrapping_algorithm,omitempty"`
}

// ImportParameters are the wrapping public key (DER SubjectPublicKeyInfo,
// RSA 2048) and the token to send back with the wrapped material.
type ImportParameters struct {
	KeyID       string    `json:"key_id,omitempty"`
	ImportToken []byte    `json:"import_token"`
	PublicKey   []byte    `json:"public_key"`
	ValidTo     time.Time `json:"valid_to"`
}

// ImportRequest is the body of POST /v1/keys/:id/import: key material (16
// or 32 bytes) encrypted with RSA-OAEP-SHA-256 under ImportParameters'
// public key.
type ImportRequest struct {
	ImportToken          []byte `json:"import_token"`
	EncryptedKeyMaterial []byte `json:"encrypted_key_material"`
}

// AliasesResponse is the answer of GET /v1/aliases.
type AliasesResponse struct {
	Aliases []Alias `json:"aliases"`
}

// UpdateAliasRequest is the body of PUT /v1/aliases/:name.
type UpdateAliasRequest struct {
	KeyID string `json:"key_id"`
}

// EncryptRequest is the body of POST /v1/encrypt. KeyID is a key id or
// alias name.
type EncryptRequest struct {
	KeyID             string            `json:"key_id"`
	Plaintext         []byte            `json:"plaintext"`
	EncryptionContext map[string]string `json:"encryption_context,omitempty"`
}

// EncryptResponse is the answer of POST /v1/encrypt.
type EncryptResponse struct {
	KeyID          string `json:"key_id"`
	KeyVersion     int    `json:"key_version"`
	CiphertextBlob []byte `json:"ciphertext_blob"`
}

// DecryptRequest is the body of POST /v1/decrypt. KeyID, when set (key id
// or alias), must name the key inside the ciphertext.
type DecryptRequest struct {
	CiphertextBlob    []byte            `json:"ciphertext_blob"`
	EncryptionContext map[string]string `json:"encryption_context,omitempty"`
	KeyID             string            `json:"key_id,omitempty"`
}

// DecryptResponse is the answer of POST /v1/decrypt. Plaintext is secret:
// zero it after use.
type DecryptResponse struct {
	KeyID      string `json:"key_id"`
	KeyVersion int    `json:"key_version"`
	Plaintext  []byte `json:"plaintext"`
}

// DecryptBatchRequest is the body of POST /v1/decrypt/batch (1-100 items).
type DecryptBatchRequest struct {
	Items []DecryptRequest `json:"items"`
}

// DecryptBatchResult is one item of a batch answer: the decrypted fields
// or Error.
type DecryptBatchResult struct {
	KeyID      string `json:"key_id,omitempty"`
	KeyVersion int    `json:"key_version,omitempty"`
	Plaintext  []byte `json:"plaintext,omitempty"`
	Error      *Error `json:"error,omitempty"`
}

// DecryptBatchResponse is the answer of POST /v1/decrypt/batch, in input order.
type DecryptBatchResponse struct {
	Results []DecryptBatchResult `json:"results"`
}

// GenerateDataKeyRequest is the body of both generate-data-key routes:
// KeySpec (AES_256/AES_128) or NumberOfBytes (1-1024), not both; neither
// means AES_256.
type GenerateDataKeyRequest struct {
	KeyID             string            `json:"key_id"`
	KeySpec           KeySpec           `json:"key_spec,omitempty"`
	NumberOfBytes     int               `json:"number_of_bytes,omitempty"`
	EncryptionContext map[string]string `json:"encryption_context,omitempty"`
}

// GenerateDataKeyResponse is the answer of both generate-data-key routes
// (Plaintext is nil for the without-plaintext variant). Plaintext is
// secret: use it for local encryption, zero it, store only CiphertextBlob.
type GenerateDataKeyResponse struct {
	KeyID          string `json:"key_id"`
	KeyVersion     int    `json:"key_version"`
	Plaintext      []byte `json:"plaintext,omitempty"`
	CiphertextBlob []byte `json:"ciphertext_blob"`
}

// ReEncryptRequest is the body of POST /v1/re-encrypt. DestinationKeyID
// (key id or alias; empty: the source key) gets its primary version.
// SourceKeyID, when set, must name the key inside the ciphertext.
type ReEncryptRequest struct {
	CiphertextBlob               []byte            `json:"ciphertext_blob"`
	SourceEncryptionContext      map[string]string `json:"source_encryption_context,omitempty"`
	SourceKeyID                  string            `json:"source_key_id,omitempty"`
	DestinationKeyID             string            `json:"destination_key_id"`
	DestinationEncryptionContext map[string]string `json:"destination_encryption_context,omitempty"`
}

// ReEncryptResponse is the answer of POST /v1/re-encrypt.
type ReEncryptResponse struct {
	SourceKeyID      string `json:"source_key_id"`
	SourceKeyVersion int    `json:"source_key_version"`
	KeyID            string `json:"key_id"`
	KeyVersion       int    `json:"key_version"`
	CiphertextBlob   []byte `json:"ciphertext_blob"`
}

// RandomRequest is the body of POST /v1/random (1-1024 bytes).
type RandomRequest struct {
	NumberOfBytes int `json:"number_of_bytes"`
}

// RandomResponse is the answer of POST /v1/random.
type RandomResponse struct {
	Plaintext []byte `json:"plaintext"`
}

// AccessKey is an access key. SecretAccessKey is set only in the answers
// of create and rotate-secret.
type AccessKey struct {
	AccessKeyID     string          `json:"access_key_id"`
	SecretAccessKey string          `json:"secret_access_key,omitempty"`
	Description     string          `json:"description"`
	Status          string          `json:"status"`
	Policy          json.RawMessage `json:"policy"`
	CreationDate    time.Time       `json:"creation_date"`
}

// CreateAccessKeyRequest is the body of POST /v1/access-keys.
type CreateAccessKeyRequest struct {
	Description string          `json:"description,omitempty"`
	Policy      json.RawMessage `json:"policy"`
}

// PolicyRequest is the body of PUT /v1/access-keys/:id/policy.
type PolicyRequest struct {
	Policy json.RawMessage `json:"policy"`
}

// AccessKeysResponse is the answer of GET /v1/access-keys.
type AccessKeysResponse struct {
	AccessKeys []AccessKey `json:"access_keys"`
}

// AuditResponse is the answer of GET /v1/audit: stored records as JSON,
// and the cursor of the next page ("" on the last).
type AuditResponse struct {
	Records []json.RawMessage `json:"records"`
	Next    string            `json:"next"`
}

// AuditVerifyResult is the answer of GET /v1/audit/verify.
type AuditVerifyResult struct {
	OK          bool         `json:"ok"`
	Checked     int64        `json:"checked"`
	FirstBroken *AuditBroken `json:"first_broken"`
	// Heads are the newest verified record of every chain checked; save
	// them and pass them back as anchors to detect a truncated tail.
	Heads []AuditHead `json:"heads"`
	// ResumedFrom are the heads a resumed verification started after.
	ResumedFrom []AuditHead `json:"resumed_from,omitempty"`
}

// AuditHead names the newest record of one replica's chain.
type AuditHead struct {
	Replica string `json:"replica"`
	Seq     int64  `json:"seq"`
	Hash    string `json:"hash"`
}

// AuditSegment is the answer of GET /v1/audit/export: a verified run of
// one replica's records and its seal.
type AuditSegment struct {
	Records []json.RawMessage `json:"records"`
	Seal    AuditSegmentSeal  `json:"seal"`
}

// AuditSegmentSeal closes a segment: its range, first and last hash, and
// the signature under the chain key.
type AuditSegmentSeal struct {
	Replica  string `json:"replica"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	PrevHash string `json:"prev_hash"`
	LastHash string `json:"last_hash"`
	Count    int64  `json:"count"`
	Time     string `json:"time"`
	Sig      string `json:"sig"`
}

// AuditBroken locates the first broken link of the chain.
type AuditBroken struct {
	Replica string `json:"replica"`
	Seq     int64  `json:"seq"`
	Reason  string `json:"reason"`
}

// StatusResponse is the answer of /healthz and /readyz.
type StatusResponse struct {
	Status string `json:"status"`
}

// Job outcomes (JobInfo.LastOutcome, JobRun.Outcome).
const (
	JobOutcomeOK    = "ok"
	JobOutcomeError = "error" // the run returned an error (also a failed audit record)
	JobOutcomePanic = "panic" // the run panicked; it runs again at its next tick
	JobOutcomeLost  = "lost"  // the run lost its lease; another runner resumes it
)

// JobInfo is one scheduled job of kmsd (GET /v1/jobs). Times are UTC;
// a nil time means never.
type JobInfo struct {
	Name     string `json:"name"`
	Schedule string `json:"schedule"` // cron spec, UTC
	// Running is true while a replica runs the job (it holds the lease).
	Running bool `json:"running"`
	// LeaseHolder and LeaseUntil name the runner holding the job's lease
	// and until when; empty when nobody runs it.
	LeaseHolder string     `json:"lease_holder,omitempty"`
	LeaseUntil  *time.Time `json:"lease_until,omitempty"`
	NextRun     *time.Time `json:"next_run"`
	LastStart   *time.Time `json:"last_start"`
	LastEnd     *time.Time `json:"last_end"`
	// LastOutcome is one of the JobOutcome constants ("" before the first
	// run); LastError is the sanitized error of a failed last run.
	LastOutcome string `json:"last_outcome"`
	LastError   string `json:"last_error,omitempty"`
	// LastItems is how many items the last run changed; Runs counts the
	// finished runs.
	LastItems     int    `json:"last_items"`
	Runs          int64  `json:"runs"`
	LastRunHolder string `json:"last_run_holder,omitempty"`
}

// ListJobsResponse is the answer of GET /v1/jobs: every job of the
// replica that answered (empty when it runs no jobs).
type ListJobsResponse struct {
	Jobs []JobInfo `json:"jobs"`
}

// JobChange is one key a job run changed: Field ("state" or
// "primary_version") went from Old to New.
type JobChange struct {
	KeyID string `json:"key_id"`
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// JobRun is the answer of POST /v1/jobs/:name/run: the result of the run
// it started and waited for. A run that failed is still a 200 answer with
// Outcome other than "ok" and its sanitized Error.
type JobRun struct {
	Job        string      `json:"job"`
	Started    time.Time   `json:"started"`
	DurationMS int64       `json:"duration_ms"`
	Outcome    string      `json:"outcome"`
	Error      string      `json:"error,omitempty"`
	Items      int         `json:"items"`
	Changes    []JobChange `json:"changes"`
}
