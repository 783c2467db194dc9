package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// route is one entry of the route table. The table drives gin
// registration, the OpenAPI document and, through op, the one generic
// handler, so the three cannot drift apart.
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
	extra   *Route
}

func (s *Server) routeTable() []route {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
		ok, created, noContent     = http.StatusOK, http.StatusCreated, http.StatusNoContent
	)
	km := kmsapi.KeyMetadata{}
	return []route{
		{Method: get, Path: "/healthz", Public: true, Summary: "Liveness: the process is up.", Status: ok, Reply: kmsapi.StatusResponse{}, public: s.healthz},
		{Method: get, Path: "/readyz", Public: true, Summary: "Readiness: the database and the HSM are usable.", Status: ok, Reply: kmsapi.StatusResponse{}, public: s.readyz},
		{Method: get, Path: "/metrics", Public: true, Summary: "Prometheus metrics (text exposition format).", Status: ok, public: s.metricsHandler()},
		{Method: get, Path: "/openapi.json", Public: true, Summary: "This OpenAPI document.", Status: ok, public: s.openapiHandler},

		{Method: post, Path: "/v1/keys", Action: "kms:CreateKey", Summary: "Create a master key.", Status: created, Request: kmsapi.CreateKeyRequest{}, Reply: km, handler: createKey},
		{Method: get, Path: "/v1/keys", Action: "kms:ListKeys", Summary: "List master keys.", Status: ok, Reply: kmsapi.ListKeysResponse{}, Query: []string{"limit", "marker", "state", "alias", "tag"}, handler: listKeys},
		{Method: get, Path: "/v1/keys/:id", Action: "kms:DescribeKey", Summary: "Describe a key (id or alias).", Status: ok, Reply: km, handler: describeKey},
		{Method: patch, Path: "/v1/keys/:id", Action: "kms:UpdateKey", Summary: "Update a key's description.", Status: ok, Request: kmsapi.DescriptionRequest{}, Reply: km, handler: updateKey},
		{Method: post, Path: "/v1/keys/:id/enable", Action: "kms:EnableKey", Summary: "Enable a key.", Status: ok, Reply: km, handler: keyOp((*kms.Service).EnableKey)},
		{Method: post, Path: "/v1/keys/:id/disable", Action: "kms:DisableKey", Summary: "Disable a key.", Status: ok, Reply: km, handler: keyOp((*kms.Service).DisableKey)},
		{Method: post, Path: "/v1/keys/:id/rotate", Action: "kms:RotateKey", Summary: "Add a new primary version.", Status: ok, Reply: km, handler: keyOp((*kms.Service).RotateKey)},
		{Method: post, Path: "/v1/keys/:id/schedule-deletion", Action: "kms:ScheduleKeyDeletion", Summary: "Schedule deletion after a 7-30 day window.", Status: ok, Request: kmsapi.ScheduleDeletionRequest{}, Reply: km, handler: scheduleDeletion},
		{Method: post, Path: "/v1/keys/:id/cancel-deletion", Action: "kms:CancelKeyDeletion", Summary: "Cancel a scheduled deletion.", Status: ok, Reply: km, handler: keyOp((*kms.Service).CancelKeyDeletion)},
		{Method: get, Path: "/v1/keys/:id/rotation-policy", Action: "kms:GetRotationPolicy", Summary: "Get the automatic rotation policy.", Status: ok, Reply: kmsapi.RotationPolicy{}, handler: getRotationPolicy},
		{Method: put, Path: "/v1/keys/:id/rotation-policy", Action: "kms:SetRotationPolicy", Summary: "Set the automatic rotation policy.", Status: ok, Request: kmsapi.RotationPolicyRequest{}, Reply: kmsapi.RotationPolicy{}, handler: setRotationPolicy},
		{Method: get, Path: "/v1/keys/:id/versions", Action: "kms:ListKeyVersions", Summary: "List key versions.", Status: ok, Reply: kmsapi.VersionsResponse{}, handler: listVersions},
		{Method: post, Path: "/v1/keys/:id/versions/:version/disable", Action: "kms:DisableKeyVersion", Summary: "Retire a key version for decryption (refused while used within the quiet period unless forced; never the primary).", Status: ok, Request: kmsapi.DisableKeyVersionRequest{}, Reply: kmsapi.KeyVersion{}, handler: disableVersion},
		{Method: post, Path: "/v1/keys/:id/versions/:version/enable", Action: "kms:EnableKeyVersion", Summary: "Enable a disabled key version for decryption again.", Status: ok, Reply: kmsapi.KeyVersion{}, handler: enableVersion},
		{Method: get, Path: "/v1/keys/:id/tags", Action: "kms:ListTags", Summary: "List tags.", Status: ok, Reply: kmsapi.Tags{}, handler: listTags},
		{Method: post, Path: "/v1/keys/:id/tags", Action: "kms:TagKey", Summary: "Add or replace tags.", Status: ok, Request: kmsapi.Tags{}, Reply: kmsapi.Tags{}, handler: tagKey},
		{Method: post, Path: "/v1/keys/:id/untag", Action: "kms:UntagKey", Summary: "Remove tags.", Status: ok, Request: kmsapi.UntagRequest{}, Reply: kmsapi.Tags{}, handler: untagKey},
		{Method: post, Path: "/v1/keys/:id/import-parameters", Action: "kms:GetParametersForImport", Summary: "Get a wrapping public key and import token (BYOK).", Status: ok, Request: kmsapi.ImportParametersRequest{}, Reply: kmsapi.ImportParameters{}, handler: importParams},
		{Method: post, Path: "/v1/keys/:id/import", Action: "kms:ImportKeyMaterial", Summary: "Import wrapped key material (BYOK).", Status: ok, Request: kmsapi.ImportRequest{}, Reply: km, handler: importKey},

		{Method: get, Path: "/v1/aliases", Action: "kms:ListAliases", Summary: "List aliases, optionally of one key.", Status: ok, Reply: kmsapi.AliasesResponse{}, Query: []string{"key_id"}, handler: listAliases},
		{Method: get, Path: "/v1/aliases/:name", Action: "kms:ListAliases", Summary: "Resolve an alias (name without the alias/ prefix).", Status: ok, Reply: kmsapi.Alias{}, handler: getAlias},
		{Method: post, Path: "/v1/aliases", Action: "kms:CreateAlias", Summary: "Create an alias.", Status: created, Request: kmsapi.Alias{}, Reply: kmsapi.Alias{}, handler: createAlias},
		{Method: put, Path: "/v1/aliases/:name", Action: "kms:UpdateAlias", Summary: "Point an alias at another key.", Status: ok, Request: kmsapi.UpdateAliasRequest{}, Reply: kmsapi.Alias{}, handler: updateAlias},
		{Method: del, Path: "/v1/aliases/:name", Action: "kms:DeleteAlias", Summary: "Delete an alias.", Status: noContent, handler: deleteAlias},

		{Method: post, Path: "/v1/encrypt", Action: "kms:Encrypt", Summary: "Encrypt up to 4 KiB under a master key.", Status: ok, Request: kmsapi.EncryptRequest{}, Reply: kmsapi.EncryptResponse{}, handler: encrypt},
		{Method: post, Path: "/v1/decrypt", Action: "kms:Decrypt", Summary: "Decrypt a ciphertext blob.", Status: ok, Request: kmsapi.DecryptRequest{}, Reply: kmsapi.DecryptResponse{}, handler: decrypt},
		{Method: post, Path: "/v1/decrypt/batch", Action: "kms:Decrypt", Summary: "Decrypt up to 100 blobs; per-item results.", Status: ok, Request: kmsapi.DecryptBatchRequest{}, Reply: kmsapi.DecryptBatchResponse{}, BigBody: true, handler: decryptBatch},
		{Method: post, Path: "/v1/generate-data-key", Action: "kms:GenerateDataKey", Summary: "Generate a data key (plaintext and ciphertext).", Status: ok, Request: kmsapi.GenerateDataKeyRequest{}, Reply: kmsapi.GenerateDataKeyResponse{}, handler: generateDataKey(true)},
		{Method: post, Path: "/v1/generate-data-key-without-plaintext", Action: "kms:GenerateDataKeyWithoutPlaintext", Summary: "Generate a data key (ciphertext only).", Status: ok, Request: kmsapi.GenerateDataKeyRequest{}, Reply: kmsapi.GenerateDataKeyResponse{}, handler: generateDataKey(false)},
		{Method: post, Path: "/v1/re-encrypt", Action: "kms:ReEncrypt", Summary: "Decrypt and re-encrypt under another key without exposing plaintext.", Status: ok, Request: kmsapi.ReEncryptRequest{}, Reply: kmsapi.ReEncryptResponse{}, handler: reEncrypt},
		{Method: post, Path: "/v1/random", Action: "kms:GenerateRandom", Summary: "Random bytes from the HSM RNG.", Status: ok, Request: kmsapi.RandomRequest{}, Reply: kmsapi.RandomResponse{}, handler: random},

		{Method: post, Path: "/v1/access-keys", Action: "kms:CreateAccessKey", Summary: "Create an access key (the secret is shown once).", Status: created, Request: kmsapi.CreateAccessKeyRequest{}, Reply: kmsapi.AccessKey{}, handler: createAccessKey},
		{Method: get, Path: "/v1/access-keys", Action: "kms:ListAccessKeys", Summary: "List access keys.", Status: ok, Reply: kmsapi.AccessKeysResponse{}, handler: listAccessKeys},
		{Method: get, Path: "/v1/access-keys/:id", Action: "kms:DescribeAccessKey", Summary: "Describe an access key.", Status: ok, Reply: kmsapi.AccessKey{}, handler: describeAccessKey},
		{Method: put, Path: "/v1/access-keys/:id/policy", Action: "kms:UpdateAccessKey", Summary: "Replace an access key's policy.", Status: ok, Request: kmsapi.PolicyRequest{}, Reply: kmsapi.AccessKey{}, handler: setAccessKeyPolicy},
		{Method: post, Path: "/v1/access-keys/:id/disable", Action: "kms:UpdateAccessKey", Summary: "Disable an access key.", Status: ok, Reply: kmsapi.AccessKey{}, handler: setAccessKeyEnabled(false)},
		{Method: post, Path: "/v1/access-keys/:id/enable", Action: "kms:UpdateAccessKey", Summary: "Enable an access key.", Status: ok, Reply: kmsapi.AccessKey{}, handler: setAccessKeyEnabled(true)},
		{Method: post, Path: "/v1/access-keys/:id/rotate-secret", Action: "kms:UpdateAccessKey", Summary: "Issue a new secret (shown once).", Status: ok, Reply: kmsapi.AccessKey{}, handler: rotateAccessKeySecret},
		{Method: del, Path: "/v1/access-keys/:id", Action: "kms:DeleteAccessKey", Summary: "Delete an access key.", Status: noContent, handler: deleteAccessKey},

		{Method: get, Path: "/v1/jobs", Action: "kms:ListJobs", Summary: "List the scheduled jobs of this replica: schedule, last and next run, outcome, lease.", Status: ok, Reply: kmsapi.ListJobsResponse{}, handler: listJobs},
		{Method: post, Path: "/v1/jobs/:name/run", Action: "kms:RunJob", Summary: "Run a job now through its lease and wait for its result (409 JobRunning while it runs).", Status: ok, Reply: kmsapi.JobRun{}, handler: runJob},

		{Method: get, Path: "/v1/audit", Action: "kms:ReadAudit", Summary: "List audit records.", Status: ok, Reply: kmsapi.AuditResponse{}, Query: []string{"limit", "after"}, handler: listAudit},
		{Method: get, Path: "/v1/audit/verify", Action: "kms:ReadAudit", Summary: "Verify the audit hash chain (anchors: replica:seq:hash; resume=true: only records since the last intact verification).", Status: ok, Reply: kmsapi.AuditVerifyResult{}, Query: []string{"anchor", "resume"}, handler: verifyAudit},
		{Method: get, Path: "/v1/audit/export", Action: "kms:ReadAudit", Summary: "Export a verified, sealed segment of one replica's audit records.", Status: ok, Reply: kmsapi.AuditSegment{}, Query: []string{"replica", "after", "limit"}, handler: exportAudit},
		{Method: post, Path: "/v1/audit/exports", Action: "kms:ExportAudit", Summary: "Record that a sealed segment was stored (retention may then delete its records).", Status: noContent, Request: kmsapi.AuditSegmentSeal{}, handler: markAuditExported},
	}
}
