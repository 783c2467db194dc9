// Package httpapi is kmsd's HTTP layer: a gin router exposing the
// transport-free KMS service (server/internal/kms), access-key management
// (server/internal/auth) and audit reads (server/audit) as the resource-style JSON
// API described in API.md. Its wire types and error codes are
// starter/kmsapi's, shared with the Go client and the OpenAPI document.
//
// One route table drives the gin registration, /openapi.json and one
// generic handler (op): for every protected route the middleware reads the
// body under a size limit and authenticates the SigV4 signature; op then
// decodes strict JSON, locates the key (path, body key_id or the key named
// inside a ciphertext, parsed once), resolves an alias (accepted wherever a
// key id is, also as /v1/keys/alias%2Fname), authorizes the policy action
// against the key's resources (key/<id> and alias/<name>) and calls the
// core, which alone validates values. The audit record is appended before
// the answer (fail closed: a failed append fails the request). A state
// change (every non-GET route except the crypto ones) is audited intent
// first: an intent record (result "intent") is made durable before the
// core is called, so no change is ever made unaudited (no intent: 503
// AuditUnavailable, nothing changed); the outcome record that follows
// names it (details intent_seq). If only the outcome fails, the change
// stays, the answer is 503, and audit verification lists the intent as
// "outcome unknown"; clients retry (CreateKey and CreateAccessKey take an
// idempotency_token for that). See intent.go for why this is not one
// transaction. Errors always have the shape
//
//	{"error":{"code":"NotFound","message":"...","request_id":"..."}}
//
// Options.Extra mounts more authenticated routes (another protocol over the
// same core, such as the AWS KMS JSON protocol at POST /, package awsapi)
// behind the same limits, authentication and audit (intent first through
// Call.WriteIntent); they answer in their own protocol's shape; see Route
// and Call.
//
// Unauthenticated routes: /healthz, /readyz, /metrics, /openapi.json.
package httpapi
