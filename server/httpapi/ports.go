package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// KeyMetadata is the key metadata object of API.md.
type KeyMetadata struct {
	KeyID           string            `json:"key_id"`
	Description     string            `json:"description"`
	KeySpec         string            `json:"key_spec"`
	ProtectionLevel string            `json:"protection_level"`
	Origin          string            `json:"origin"`
	KeyState        string            `json:"key_state"`
	CreationDate    time.Time         `json:"creation_date"`
	DeletionDate    *time.Time        `json:"deletion_date"`
	PrimaryVersion  int               `json:"primary_version"`
	Aliases         []string          `json:"aliases"`
	Tags            map[string]string `json:"tags"`
	Rotation        RotationPolicy    `json:"rotation"`
}

// RotationPolicy is a key's automatic rotation setting.
type RotationPolicy struct {
	Enabled        bool       `json:"enabled"`
	PeriodDays     int        `json:"period_days"`
	NextRotationAt *time.Time `json:"next_rotation_at"`
}

// KeyVersion describes one version of a master key.
type KeyVersion struct {
	Version      int       `json:"version"`
	State        string    `json:"state"`
	Primary      bool      `json:"primary"`
	CreationDate time.Time `json:"creation_date"`
}

// Alias maps an alias name ("alias/orders") to a key id.
type Alias struct {
	AliasName string `json:"alias_name"`
	KeyID     string `json:"key_id"`
}

// CreateKeyRequest is the body of POST /v1/keys.
type CreateKeyRequest struct {
	Description     string            `json:"description"`
	KeySpec         string            `json:"key_spec"`
	ProtectionLevel string            `json:"protection_level"`
	Origin          string            `json:"origin"`
	Tags            map[string]string `json:"tags"`
	Alias           string            `json:"alias"`
}

// ListKeysRequest holds the query of GET /v1/keys.
type ListKeysRequest struct {
	Limit    int
	Marker   string
	State    string
	Alias    string
	TagKey   string
	TagValue string
	HasTag   bool
}

// ListKeysResponse is the answer of GET /v1/keys.
type ListKeysResponse struct {
	Keys       []KeyMetadata `json:"keys"`
	NextMarker string        `json:"next_marker"`
}

// ImportParameters is the answer of POST /v1/keys/:id/import-parameters.
type ImportParameters struct {
	ImportToken []byte    `json:"import_token"`
	PublicKey   []byte    `json:"public_key"`
	ValidTo     time.Time `json:"valid_to"`
}

// EncryptRequest is the body of POST /v1/encrypt.
type EncryptRequest struct {
	KeyID             string            `json:"key_id"`
	Plaintext         []byte            `json:"plaintext"`
	EncryptionContext map[string]string `json:"encryption_context"`
}

// EncryptResponse is the answer of POST /v1/encrypt.
type EncryptResponse struct {
	KeyID          string `json:"key_id"`
	KeyVersion     int    `json:"key_version"`
	CiphertextBlob []byte `json:"ciphertext_blob"`
}

// DecryptRequest is the body of POST /v1/decrypt. KeyID, when set, must
// name the key inside the ciphertext.
type DecryptRequest struct {
	CiphertextBlob    []byte            `json:"ciphertext_blob"`
	EncryptionContext map[string]string `json:"encryption_context"`
	KeyID             string            `json:"key_id,omitempty"`
}

// DecryptResponse is the answer of POST /v1/decrypt. The caller zeroes
// Plaintext after use.
type DecryptResponse struct {
	KeyID      string `json:"key_id"`
	KeyVersion int    `json:"key_version"`
	Plaintext  []byte `json:"plaintext"`
}

// GenerateDataKeyRequest is the body of both generate-data-key routes.
type GenerateDataKeyRequest struct {
	KeyID             string            `json:"key_id"`
	KeySpec           string            `json:"key_spec"`
	NumberOfBytes     int               `json:"number_of_bytes"`
	EncryptionContext map[string]string `json:"encryption_context"`
}

// GenerateDataKeyResponse is the answer of both generate-data-key routes
// (Plaintext is nil for the without-plaintext variant).
type GenerateDataKeyResponse struct {
	KeyID          string `json:"key_id"`
	KeyVersion     int    `json:"key_version"`
	Plaintext      []byte `json:"plaintext,omitempty"`
	CiphertextBlob []byte `json:"ciphertext_blob"`
}

// ReEncryptRequest is the body of POST /v1/re-encrypt.
type ReEncryptRequest struct {
	CiphertextBlob               []byte            `json:"ciphertext_blob"`
	SourceEncryptionContext      map[string]string `json:"source_encryption_context"`
	DestinationKeyID             string            `json:"destination_key_id"`
	DestinationEncryptionContext map[string]string `json:"destination_encryption_context"`
}

// ReEncryptResponse is the answer of POST /v1/re-encrypt.
type ReEncryptResponse struct {
	SourceKeyID      string `json:"source_key_id"`
	SourceKeyVersion int    `json:"source_key_version"`
	KeyID            string `json:"key_id"`
	KeyVersion       int    `json:"key_version"`
	CiphertextBlob   []byte `json:"ciphertext_blob"`
}

// KeyRef is a resolved key reference: the key id and every alias naming it.
type KeyRef struct {
	KeyID   string
	Aliases []string // full names, "alias/orders"
}

// Resources returns the policy resources of the key: key/<id> and its aliases.
func (k KeyRef) Resources() []string {
	out := make([]string, 0, 1+len(k.Aliases))
	out = append(out, "key/"+k.KeyID)
	return append(out, k.Aliases...)
}

// KeyService is the port to the transport-free KMS service. Errors match
// this package's sentinels (ErrValidation, ErrNotFound, ErrAlreadyExists,
// ErrInvalidKeyState, ErrInvalidCiphertext) or hsm.ErrUnavailable.
type KeyService interface {
	// ResolveKey turns a key id or alias name into the key id and its aliases.
	ResolveKey(ctx context.Context, ref string) (KeyRef, error)
	// CiphertextKeyID returns the key id named inside a ciphertext blob
	// without decrypting it (ErrInvalidCiphertext when unparsable).
	CiphertextKeyID(blob []byte) (string, error)

	CreateKey(ctx context.Context, in CreateKeyRequest) (KeyMetadata, error)
	ListKeys(ctx context.Context, in ListKeysRequest) (ListKeysResponse, error)
	DescribeKey(ctx context.Context, keyID string) (KeyMetadata, error)
	UpdateKeyDescription(ctx context.Context, keyID, description string) (KeyMetadata, error)
	EnableKey(ctx context.Context, keyID string) (KeyMetadata, error)
	DisableKey(ctx context.Context, keyID string) (KeyMetadata, error)
	RotateKey(ctx context.Context, keyID string) (KeyMetadata, error)
	ScheduleKeyDeletion(ctx context.Context, keyID string, pendingWindowDays int) (KeyMetadata, error)
	CancelKeyDeletion(ctx context.Context, keyID string) (KeyMetadata, error)
	GetRotationPolicy(ctx context.Context, keyID string) (RotationPolicy, error)
	SetRotationPolicy(ctx context.Context, keyID string, enabled bool, periodDays int) (RotationPolicy, error)
	ListKeyVersions(ctx context.Context, keyID string) ([]KeyVersion, error)
	ListTags(ctx context.Context, keyID string) (map[string]string, error)
	TagKey(ctx context.Context, keyID string, tags map[string]string) (map[string]string, error)
	UntagKey(ctx context.Context, keyID string, tagKeys []string) (map[string]string, error)
	GetParametersForImport(ctx context.Context, keyID, wrappingAlgorithm string) (ImportParameters, error)
	ImportKeyMaterial(ctx context.Context, keyID string, importToken, encryptedKeyMaterial []byte) (KeyMetadata, error)

	ListAliases(ctx context.Context, keyID string) ([]Alias, error)
	GetAlias(ctx context.Context, aliasName string) (Alias, error)
	CreateAlias(ctx context.Context, aliasName, keyID string) (Alias, error)
	UpdateAlias(ctx context.Context, aliasName, keyID string) (Alias, error)
	DeleteAlias(ctx context.Context, aliasName string) error

	Encrypt(ctx context.Context, in EncryptRequest) (EncryptResponse, error)
	Decrypt(ctx context.Context, in DecryptRequest) (DecryptResponse, error)
	GenerateDataKey(ctx context.Context, in GenerateDataKeyRequest, withPlaintext bool) (GenerateDataKeyResponse, error)
	ReEncrypt(ctx context.Context, in ReEncryptRequest) (ReEncryptResponse, error)
	GenerateRandom(ctx context.Context, n int) ([]byte, error)
}

// AccessKey is an access key as the API shows it. SecretAccessKey is set
// only in the answers of create and rotate-secret.
type AccessKey struct {
	AccessKeyID     string          `json:"access_key_id"`
	SecretAccessKey string          `json:"secret_access_key,omitempty"`
	Description     string          `json:"description"`
	Status          string          `json:"status"`
	Policy          json.RawMessage `json:"policy"`
	CreationDate    time.Time       `json:"creation_date"`
}

// AccessKeyService is the port to access-key management.
type AccessKeyService interface {
	CreateAccessKey(ctx context.Context, description string, policy json.RawMessage) (AccessKey, error)
	ListAccessKeys(ctx context.Context) ([]AccessKey, error)
	GetAccessKey(ctx context.Context, id string) (AccessKey, error)
	SetAccessKeyPolicy(ctx context.Context, id string, policy json.RawMessage) (AccessKey, error)
	SetAccessKeyEnabled(ctx context.Context, id string, enabled bool) (AccessKey, error)
	RotateAccessKeySecret(ctx context.Context, id string) (AccessKey, error)
	DeleteAccessKey(ctx context.Context, id string) error
}

// Principal is an authenticated caller.
type Principal struct {
	AccessKeyID string
	// Allowed reports whether the caller's policy allows action on any of
	// the resources (deny by default, explicit deny wins).
	Allowed func(action string, resources ...string) bool
}

// Authenticator verifies a SigV4-signed request. body is the whole request
// body already read by the middleware. Failures match ErrUnauthenticated
// (or hsm.ErrUnavailable when the secret cannot be unwrapped).
type Authenticator interface {
	Authenticate(r *http.Request, body []byte) (Principal, error)
}

// AuditEvent is what the API appends for every authenticated request.
// It never carries plaintext, keys, secrets or ciphertexts.
type AuditEvent struct {
	Time        time.Time
	RequestID   string
	AccessKeyID string
	Action      string
	KeyID       string   // the key the request acted on, if any
	KeyVersion  int      // the key version used by a crypto operation, if known
	Resources   []string // every policy resource the request touched
	Method      string
	Path        string
	SourceIP    string
	Status      int
	ErrorCode   string // API error code; empty on success
	// Err is the handler's error (nil on success), for adapters that
	// record a finer internal reason. Never shown to callers.
	Err error
}

// AuditRecord is one stored record as GET /v1/audit shows it.
type AuditRecord = json.RawMessage

// AuditVerifyResult is the answer of GET /v1/audit/verify.
type AuditVerifyResult struct {
	OK          bool         `json:"ok"`
	Checked     int64        `json:"checked"`
	FirstBroken *AuditBroken `json:"first_broken"`
	// Heads are the newest verified record of every chain checked; save
	// them and pass them back as anchors to detect a truncated tail.
	Heads []AuditHead `json:"heads"`
	// ResumedFrom are the heads of an earlier verification this one
	// started from (records before them were not read again).
	ResumedFrom []AuditHead `json:"resumed_from,omitempty"`
}

// AuditVerifyRequest are the options of GET /v1/audit/verify.
type AuditVerifyRequest struct {
	Anchors []AuditHead // ?anchor=replica:seq:hash
	Resume  bool        // ?resume=true: start from the heads of this replica's last intact verification
}

// AuditHead names the newest record of one replica's chain.
type AuditHead struct {
	Replica string `json:"replica"`
	Seq     int64  `json:"seq"`
	Hash    string `json:"hash"`
}

// AuditBroken locates the first broken link of the chain.
type AuditBroken struct {
	Replica string `json:"replica"`
	Seq     int64  `json:"seq"`
	Reason  string `json:"reason"`
}

// AuditLog is the port to the audit log.
type AuditLog interface {
	Append(ctx context.Context, ev AuditEvent) error
	List(ctx context.Context, limit int, after string) (records []AuditRecord, next string, err error)
	Verify(ctx context.Context, req AuditVerifyRequest) (AuditVerifyResult, error)
}
