package httpapi

import (
	"context"
	"net/http"

	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// Route is an extra authenticated route mounted with Options.Extra, for
// another protocol over the same core (the AWS KMS JSON protocol at
// POST /, say). It gets the same in-flight limit, body limit, SigV4
// authentication, metrics and fail-closed audit as the /v1 routes: its
// reply is written only after the request's audit record is durable.
type Route struct {
	Method  string
	Path    string // gin syntax
	Summary string // for the route list and the OpenAPI document
	// Serve handles one authenticated request: it reads Call.Body, names
	// the policy action (Call.SetAction), authorizes through the Call and
	// calls the core. An error is answered through EncodeError.
	Serve func(c *Call) (Reply, error)
	// EncodeError renders an error answer in the route's protocol; code is
	// a kmsapi code and status its HTTP status. Nil: kmsd's error shape.
	EncodeError func(status int, code, message, requestID string) Reply
}

// Reply is an Extra route's answer.
type Reply struct {
	Status      int
	ContentType string
	Body        []byte
}

// Call is one authenticated request to an Extra route.
type Call struct{ rc *reqCtx }

// Context is the request's context.
func (c *Call) Context() context.Context { return c.rc.ctx }

// Request is the HTTP request (its body is already read: see Body).
func (c *Call) Request() *http.Request { return c.rc.c.Request }

// Body is the whole request body. It is zeroed after the answer.
func (c *Call) Body() []byte { return c.rc.body }

// AccessKeyID is the authenticated caller.
func (c *Call) AccessKeyID() string { return c.rc.principal.AccessKeyID }

// RequestID is the request's id (also sent as X-Request-Id).
func (c *Call) RequestID() string { return c.rc.c.GetString(ctxRequestID) }

// SetAction names the policy action recorded in the audit record.
func (c *Call) SetAction(action string) { c.rc.action = action }

// SetKeyVersion records the key version a crypto operation used.
func (c *Call) SetKeyVersion(v int) { c.rc.keyVersion = v }

// OnDone runs f after the answer is written (to zero secrets).
func (c *Call) OnDone(f func()) { c.rc.onDone(f) }

// Authorize checks the caller's policy for action on any of resources
// (none: only "*" statements apply) and records them for the audit.
func (c *Call) Authorize(action string, resources ...string) error {
	return c.rc.authorize(action, resources...)
}

// AuthorizeKey resolves ref (key id or alias name) and authorizes action on
// the key's resources.
func (c *Call) AuthorizeKey(action, ref string) (kms.KeyRef, error) {
	return c.rc.authorizeKey(action, ref)
}

// AuthorizeCiphertext parses blob once and authorizes action on the key it
// names; pass the Ciphertext to kms.Service.DecryptCiphertext or
// ReEncryptCiphertext.
func (c *Call) AuthorizeCiphertext(action string, blob []byte) (kms.KeyRef, kms.Ciphertext, error) {
	k, err := c.rc.authorizeCiphertext(action, blob)
	return k, c.rc.ct, err
}

// ErrorCode maps an error of the core (or of a Call) to its kmsapi code and
// the message that may be shown to the caller.
func ErrorCode(err error) (code, message string) { return classify(err) }

// serveExtra runs an Extra route after authentication.
func (s *Server) serveExtra(rc *reqCtx, x *Route) {
	rc.extra = x
	rep, herr := x.Serve(&Call{rc: rc})
	status := rep.Status
	if status == 0 {
		status = http.StatusOK
	}
	if !s.audit(rc, status, herr) {
		return
	}
	if herr != nil {
		code, msg := classify(herr)
		s.fail(rc, code, msg)
		return
	}
	ct := rep.ContentType
	if ct == "" {
		ct = "application/json"
	}
	rc.c.Data(status, ct, rep.Body)
}

// fail writes an error answer in the route's protocol.
func (s *Server) fail(rc *reqCtx, code, msg string) {
	if rc.extra == nil || rc.extra.EncodeError == nil {
		s.writeError(rc.c, code, msg)
		return
	}
	status, ok := kmsapi.CodeStatus(code)
	if !ok {
		code, status = kmsapi.CodeInternal, http.StatusInternalServerError
	}
	rc.c.Set(ctxCode, code)
	if code == kmsapi.CodeHSMUnavailable || code == kmsapi.CodeTooManyRequests {
		rc.c.Header("Retry-After", "1")
	}
	rep := rc.extra.EncodeError(status, code, msg, rc.c.GetString(ctxRequestID))
	if rep.Status == 0 {
		rep.Status = status
	}
	rc.c.Data(rep.Status, rep.ContentType, rep.Body)
}
