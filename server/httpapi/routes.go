package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// route is one entry of the route table. The table drives gin registration
// and the OpenAPI document, so the two cannot drift apart.
type route struct {
	Method  string
	Path    string // gin syntax, e.g. /v1/keys/:id
	Action  string // policy action; "" for public routes
	Summary string
	Status  int // success status
	Request any // zero value of the JSON request body type, nil if none
	Reply   any // zero value of the JSON response type, nil if none
	Query   []string
	BigBody bool // batch body limit
	Public  bool

	handler handlerFunc
	public  gin.HandlerFunc
}

type keysResponse = ListKeysResponse

type tagsBody struct {
	Tags map[string]string `json:"tags"`
}

type untagBody struct {
	TagKeys []string `json:"tag_keys"`
}

type descriptionBody struct {
	Description *string `json:"description"`
}

type scheduleDeletionBody struct {
	PendingWindowDays *int `json:"pending_window_days"`
}

type rotationPolicyBody struct {
	Enabled    *bool `json:"enabled"`
	PeriodDays *int  `json:"period_days"`
}

type versionsResponse struct {
	Versions []KeyVersion `json:"versions"`
}

type importParamsBody struct {
	WrappingAlgorithm string `json:"wrapping_algorithm"`
}

type importBody struct {
	ImportToken          []byte `json:"import_token"`
	EncryptedKeyMaterial []byte `json:"encrypted_key_material"`
}

type aliasesResponse struct {
	Aliases []Alias `json:"aliases"`
}

type createAliasBody struct {
	AliasName string `json:"alias_name"`
	KeyID     string `json:"key_id"`
}

type updateAliasBody struct {
	KeyID string `json:"key_id"`
}

type batchDecryptItem struct {
	CiphertextBlob    []byte            `json:"ciphertext_blob"`
	EncryptionContext map[string]string `json:"encryption_context"`
}

type batchDecryptBody struct {
	Items []batchDecryptItem `json:"items"`
}

type batchDecryptResult struct {
	KeyID      string    `json:"key_id,omitempty"`
	KeyVersion int       `json:"key_version,omitempty"`
	Plaintext  []byte    `json:"plaintext,omitempty"`
	Error      *apiError `json:"error,omitempty"`
}

type batchDecryptResponse struct {
	Results []batchDecryptResult `json:"results"`
}

type randomBody struct {
	NumberOfBytes int `json:"number_of_bytes"`
}

type randomResponse struct {
	Plaintext []byte `json:"plaintext"`
}

type createAccessKeyBody struct {
	Description string          `json:"description"`
	Policy      json.RawMessage `json:"policy"`
}

type policyBody struct {
	Policy json.RawMessage `json:"policy"`
}

type accessKeysResponse struct {
	AccessKeys []AccessKey `json:"access_keys"`
}

type auditResponse struct {
	Records []AuditRecord `json:"records"`
	Next    string        `json:"next"`
}

type statusResponse struct {
	Status string `json:"status"`
}

func (s *Server) routeTable() []route {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
		ok, created, noContent     = http.StatusOK, http.StatusCreated, http.StatusNoContent
	)
	km := KeyMetadata{}
	return []route{
		{Method: get, Path: "/healthz", Public: true, Summary: "Liveness: the process is up.", Status: ok, Reply: statusResponse{}, public: s.healthz},
		{Method: get, Path: "/readyz", Public: true, Summary: "Readiness: the database and the HSM are usable.", Status: ok, Reply: statusResponse{}, public: s.readyz},
		{Method: get, Path: "/metrics", Public: true, Summary: "Prometheus metrics (text exposition format).", Status: ok, public: s.metricsHandler()},
		{Method: get, Path: "/openapi.json", Public: true, Summary: "This OpenAPI document.", Status: ok, public: s.openapiHandler},

		{Method: post, Path: "/v1/keys", Action: "kms:CreateKey", Summary: "Create a master key.", Status: created, Request: CreateKeyRequest{}, Reply: km, handler: s.createKey},
		{Method: get, Path: "/v1/keys", Action: "kms:ListKeys", Summary: "List master keys.", Status: ok, Reply: keysResponse{}, Query: []string{"limit", "marker", "state", "alias", "tag"}, handler: s.listKeys},
		{Method: get, Path: "/v1/keys/:id", Action: "kms:DescribeKey", Summary: "Describe a key.", Status: ok, Reply: km, handler: s.describeKey},
		{Method: patch, Path: "/v1/keys/:id", Action: "kms:UpdateKey", Summary: "Update a key's description.", Status: ok, Request: descriptionBody{}, Reply: km, handler: s.updateKey},
		{Method: post, Path: "/v1/keys/:id/enable", Action: "kms:EnableKey", Summary: "Enable a key.", Status: ok, Reply: km, handler: s.keyStateOp("kms:EnableKey", s.opts.Keys.EnableKey)},
		{Method: post, Path: "/v1/keys/:id/disable", Action: "kms:DisableKey", Summary: "Disable a key.", Status: ok, Reply: km, handler: s.keyStateOp("kms:DisableKey", s.opts.Keys.DisableKey)},
		{Method: post, Path: "/v1/keys/:id/rotate", Action: "kms:RotateKey", Summary: "Add a new primary version.", Status: ok, Reply: km, handler: s.keyStateOp("kms:RotateKey", s.opts.Keys.RotateKey)},
		{Method: post, Path: "/v1/keys/:id/schedule-deletion", Action: "kms:ScheduleKeyDeletion", Summary: "Schedule deletion after a 7-30 day window.", Status: ok, Request: scheduleDeletionBody{}, Reply: km, handler: s.scheduleDeletion},
		{Method: post, Path: "/v1/keys/:id/cancel-deletion", Action: "kms:CancelKeyDeletion", Summary: "Cancel a scheduled deletion.", Status: ok, Reply: km, handler: s.keyStateOp("kms:CancelKeyDeletion", s.opts.Keys.CancelKeyDeletion)},
		{Method: get, Path: "/v1/keys/:id/rotation-policy", Action: "kms:GetRotationPolicy", Summary: "Get the automatic rotation policy.", Status: ok, Reply: RotationPolicy{}, handler: s.getRotationPolicy},
		{Method: put, Path: "/v1/keys/:id/rotation-policy", Action: "kms:SetRotationPolicy", Summary: "Set the automatic rotation policy.", Status: ok, Request: rotationPolicyBody{}, Reply: RotationPolicy{}, handler: s.setRotationPolicy},
		{Method: get, Path: "/v1/keys/:id/versions", Action: "kms:ListKeyVersions", Summary: "List key versions.", Status: ok, Reply: versionsResponse{}, handler: s.listVersions},
		{Method: get, Path: "/v1/keys/:id/tags", Action: "kms:ListTags", Summary: "List tags.", Status: ok, Reply: tagsBody{}, handler: s.listTags},
		{Method: post, Path: "/v1/keys/:id/tags", Action: "kms:TagKey", Summary: "Add or replace tags.", Status: ok, Request: tagsBody{}, Reply: tagsBody{}, handler: s.tagKey},
		{Method: post, Path: "/v1/keys/:id/untag", Action: "kms:UntagKey", Summary: "Remove tags.", Status: ok, Request: untagBody{}, Reply: tagsBody{}, handler: s.untagKey},
		{Method: post, Path: "/v1/keys/:id/import-parameters", Action: "kms:GetParametersForImport", Summary: "Get a wrapping public key and import token (BYOK).", Status: ok, Request: importParamsBody{}, Reply: ImportParameters{}, handler: s.importParams},
		{Method: post, Path: "/v1/keys/:id/import", Action: "kms:ImportKeyMaterial", Summary: "Import wrapped key material (BYOK).", Status: ok, Request: importBody{}, Reply: km, handler: s.importKey},

		{Method: get, Path: "/v1/aliases", Action: "kms:ListAliases", Summary: "List aliases, optionally of one key.", Status: ok, Reply: aliasesResponse{}, Query: []string{"key_id"}, handler: s.listAliases},
		{Method: get, Path: "/v1/aliases/:name", Action: "kms:ListAliases", Summary: "Resolve an alias (name without the alias/ prefix).", Status: ok, Reply: Alias{}, handler: s.getAlias},
		{Method: post, Path: "/v1/aliases", Action: "kms:CreateAlias", Summary: "Create an alias.", Status: created, Request: createAliasBody{}, Reply: Alias{}, handler: s.createAlias},
		{Method: put, Path: "/v1/aliases/:name", Action: "kms:UpdateAlias", Summary: "Point an alias at another key.", Status: ok, Request: updateAliasBody{}, Reply: Alias{}, handler: s.updateAlias},
		{Method: del, Path: "/v1/aliases/:name", Action: "kms:DeleteAlias", Summary: "Delete an alias.", Status: noContent, handler: s.deleteAlias},

		{Method: post, Path: "/v1/encrypt", Action: "kms:Encrypt", Summary: "Encrypt up to 4 KiB under a master key.", Status: ok, Request: EncryptRequest{}, Reply: EncryptResponse{}, handler: s.encrypt},
		{Method: post, Path: "/v1/decrypt", Action: "kms:Decrypt", Summary: "Decrypt a ciphertext blob.", Status: ok, Request: DecryptRequest{}, Reply: DecryptResponse{}, handler: s.decrypt},
		{Method: post, Path: "/v1/decrypt/batch", Action: "kms:Decrypt", Summary: "Decrypt up to 100 blobs; per-item results.", Status: ok, Request: batchDecryptBody{}, Reply: batchDecryptResponse{}, BigBody: true, handler: s.decryptBatch},
		{Method: post, Path: "/v1/generate-data-key", Action: "kms:GenerateDataKey", Summary: "Generate a data key (plaintext and ciphertext).", Status: ok, Request: GenerateDataKeyRequest{}, Reply: GenerateDataKeyResponse{}, handler: s.generateDataKey(true)},
		{Method: post, Path: "/v1/generate-data-key-without-plaintext", Action: "kms:GenerateDataKeyWithoutPlaintext", Summary: "Generate a data key (ciphertext only).", Status: ok, Request: GenerateDataKeyRequest{}, Reply: GenerateDataKeyResponse{}, handler: s.generateDataKey(false)},
		{Method: post, Path: "/v1/re-encrypt", Action: "kms:ReEncrypt", Summary: "Decrypt and re-encrypt under another key without exposing plaintext.", Status: ok, Request: ReEncryptRequest{}, Reply: ReEncryptResponse{}, handler: s.reEncrypt},
		{Method: post, Path: "/v1/random", Action: "kms:GenerateRandom", Summary: "Random bytes from the HSM RNG.", Status: ok, Request: randomBody{}, Reply: randomResponse{}, handler: s.random},

		{Method: post, Path: "/v1/access-keys", Action: "kms:CreateAccessKey", Summary: "Create an access key (the secret is shown once).", Status: created, Request: createAccessKeyBody{}, Reply: AccessKey{}, handler: s.createAccessKey},
		{Method: get, Path: "/v1/access-keys", Action: "kms:ListAccessKeys", Summary: "List access keys.", Status: ok, Reply: accessKeysResponse{}, handler: s.listAccessKeys},
		{Method: get, Path: "/v1/access-keys/:id", Action: "kms:DescribeAccessKey", Summary: "Describe an access key.", Status: ok, Reply: AccessKey{}, handler: s.describeAccessKey},
		{Method: put, Path: "/v1/access-keys/:id/policy", Action: "kms:UpdateAccessKey", Summary: "Replace an access key's policy.", Status: ok, Request: policyBody{}, Reply: AccessKey{}, handler: s.setAccessKeyPolicy},
		{Method: post, Path: "/v1/access-keys/:id/disable", Action: "kms:UpdateAccessKey", Summary: "Disable an access key.", Status: ok, Reply: AccessKey{}, handler: s.setAccessKeyEnabled(false)},
		{Method: post, Path: "/v1/access-keys/:id/enable", Action: "kms:UpdateAccessKey", Summary: "Enable an access key.", Status: ok, Reply: AccessKey{}, handler: s.setAccessKeyEnabled(true)},
		{Method: post, Path: "/v1/access-keys/:id/rotate-secret", Action: "kms:UpdateAccessKey", Summary: "Issue a new secret (shown once).", Status: ok, Reply: AccessKey{}, handler: s.rotateAccessKeySecret},
		{Method: del, Path: "/v1/access-keys/:id", Action: "kms:DeleteAccessKey", Summary: "Delete an access key.", Status: noContent, handler: s.deleteAccessKey},

		{Method: get, Path: "/v1/audit", Action: "kms:ReadAudit", Summary: "List audit records.", Status: ok, Reply: auditResponse{}, Query: []string{"limit", "after"}, handler: s.listAudit},
		{Method: get, Path: "/v1/audit/verify", Action: "kms:ReadAudit", Summary: "Verify the audit hash chain.", Status: ok, Reply: AuditVerifyResult{}, Query: []string{"anchor", "resume"}, handler: s.verifyAudit},
		{Method: get, Path: "/v1/audit/export", Action: "kms:ReadAudit", Summary: "Export a sealed, verified segment of one replica's chain.", Status: ok, Reply: AuditSegment{}, Query: []string{"replica", "after", "limit"}, handler: s.exportAudit},
		{Method: post, Path: "/v1/audit/exports", Action: "kms:ExportAudit", Summary: "Record a stored segment as exported (retention may then delete it).", Status: noContent, Request: AuditSegmentSeal{}, handler: s.markAuditExported},
	}
}
