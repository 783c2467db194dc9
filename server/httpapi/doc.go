// Package httpapi is kmsd's HTTP layer: a gin router exposing the
// transport-free KMS service, access-key management and audit reads as the
// resource-style JSON API described in API.md.
//
// Handlers are thin. For every protected route the middleware reads the body
// under a size limit, authenticates the SigV4 signature, and then the handler
// decodes strict JSON, authorizes the policy action against the key's
// resources (key/<id> and alias/<name>), calls the service, appends an audit
// record (fail closed: a failed append fails the request) and encodes the
// answer. Errors always have the shape
//
//	{"error":{"code":"NotFound","message":"...","request_id":"..."}}
//
// The package depends on small ports (KeyService, AccessKeyService,
// AuditLog, Authenticator) so it can be tested and wired independently;
// adapters for server/kms, server/auth and server/audit live in this package
// too (KMSAdapter, AuthAdapter, AuditAdapter in wire_*.go); server/config
// assembles them.
//
// Unauthenticated routes: /healthz, /readyz, /metrics, /openapi.json.
package httpapi
