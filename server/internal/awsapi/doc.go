// Package awsapi serves the AWS KMS JSON protocol (awsJson1_1, the
// "TrentService" API) so that the AWS CLI and every AWS SDK can use kmsd by
// changing only the endpoint URL.
//
// Requests are POST / with X-Amz-Target: TrentService.<Operation> and
// Content-Type: application/x-amz-json-1.1, signed with SigV4 (service
// "kms") using kmsd access keys. The package is a thin adapter mounted as
// a route of kmsd's router (Handler.Route, an httpapi.Options.Extra
// route): the router checks the protocol headers, applies the in-flight
// and body limits, authenticates the signature (server/internal/auth) and
// appends one record per authenticated request to the same audit log as
// /v1 (server/audit, fail closed); failed authentications are audited
// (rate-limited) as on /v1. Serve authorizes with the access key's policy
// using the same kms:<Operation> actions as the /v1 API and calls the
// transport-free core (server/internal/kms); a state-changing operation is
// preceded by a durable intent record (httpapi.Call.WriteIntent; no
// intent: the request fails with DependencyTimeoutException and nothing
// changes), as on /v1. Ciphertext blobs are the core's own format, so a
// blob made through /v1 decrypts here and the reverse; Decrypt and
// ReEncrypt parse the blob once (to find the key to authorize and to match
// KeyId/SourceKeyId) and hand the parsed value to the core.
//
// Key references are what AWS accepts: a key id, "alias/<name>", a key ARN
// (arn:aws:kms:<region>:<account>:key/<id>) or an alias ARN
// (arn:aws:kms:<region>:<account>:alias/<name>), where region is kmsd's
// SigV4 region and account the configured account id. Responses carry ARNs
// where AWS does. Errors have AWS's shape, {"__type":"NotFoundException",
// "message":"..."}, with AWS's exception names and status codes, so SDK
// retry logic behaves as it does against AWS.
//
// Policy actions per operation (the /v1 names, so one policy governs both
// protocols):
//
//	CreateKey                  kms:CreateKey
//	DescribeKey                kms:DescribeKey
//	ListKeys                   kms:ListKeys
//	UpdateKeyDescription       kms:UpdateKey
//	EnableKey, DisableKey      kms:EnableKey, kms:DisableKey
//	ScheduleKeyDeletion        kms:ScheduleKeyDeletion
//	CancelKeyDeletion          kms:CancelKeyDeletion
//	EnableKeyRotation          kms:SetRotationPolicy
//	DisableKeyRotation         kms:SetRotationPolicy
//	GetKeyRotationStatus       kms:GetRotationPolicy
//	RotateKeyOnDemand          kms:RotateKey
//	ListKeyRotations           kms:ListKeyVersions
//	CreateAlias, UpdateAlias   kms:CreateAlias, kms:UpdateAlias
//	DeleteAlias, ListAliases   kms:DeleteAlias, kms:ListAliases
//	TagResource                kms:TagKey
//	UntagResource              kms:UntagKey
//	ListResourceTags           kms:ListTags
//	Encrypt, Decrypt           kms:Encrypt, kms:Decrypt
//	ReEncrypt                  kms:ReEncryptFrom (source key), kms:ReEncryptTo (destination key)
//	GenerateDataKey            kms:GenerateDataKey
//	GenerateDataKeyWithoutPlaintext kms:GenerateDataKeyWithoutPlaintext
//	GenerateRandom             kms:GenerateRandom
//	GetParametersForImport     kms:GetParametersForImport
//	ImportKeyMaterial          kms:ImportKeyMaterial
//
// Any other TrentService operation gets UnsupportedOperationException.
// Fields AWS defines but kmsd cannot honour (key policies, grants,
// asymmetric or HMAC key specs, Nitro Enclave recipients, custom key stores,
// multi-Region keys, expiring imported material) are refused with
// UnsupportedOperationException rather than ignored, and unknown fields are
// a ValidationException: a request is never half-applied.
//
// Requests beyond the router's in-flight limit (limits.max_in_flight,
// shared with /v1) get ThrottlingException (SDKs retry it with back-off);
// an HSM outage is DependencyTimeoutException (503, retried); every answer is counted in kms_aws_requests_total{operation,
// status,error} and kms_aws_request_duration_seconds{operation}. Audit
// records carry the /v1 error code as reason code (so one query covers both
// protocols) and details protocol=aws-json-1.1, operation and aws_error.
package awsapi
