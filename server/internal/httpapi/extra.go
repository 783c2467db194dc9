package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
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
	// OperationID and ContentType describe the route in the OpenAPI
	// document (defaults: derived from Method and Path; application/json).
	OperationID string
	ContentType string
	// Details are added to every audit record of the route, also to those
	// of failed authentications (its protocol, say); see Call.SetDetail.
	Details map[string]string
	// Check, when set, vets a request (its protocol headers, say) before it
	// takes an in-flight slot, its body is read or it is authenticated. A
	// refusal is answered through EncodeError and is not audited: the
	// caller is not known yet.
	Check func(r *http.Request) error
	// Serve handles one authenticated request: it reads Call.Body, names
	// the policy action (Call.SetAction), authorizes through the Call and
	// calls the core; a state change is preceded by Call.WriteIntent. An
	// error is answered through EncodeError.
	Serve func(c *Call) (Reply, error)
	// EncodeError renders an error answer in the route's protocol. Nil:
	// kmsd's error shape.
	EncodeError func(f Failure) Reply
	// Observe, when set, is told of every answer of the route once it is
	// written (for the protocol's own metrics): the request, the status and
	// header sent, and the time since the route was entered.
	Observe func(r *http.Request, status int, header http.Header, elapsed time.Duration)
}

// Reply is an Extra route's answer.
type Reply struct {
	Status      int // default 200
	ContentType string
	Header      http.Header // more headers of the answer (Content-Length is set)
	Body        []byte
}

// Failure is an error answer of an Extra route, for its EncodeError.
type Failure struct {
	Request *http.Request
	// Err is the error: of Check or Serve, or of the pipeline:
	// ErrTooManyRequests, ErrPayloadTooLarge, ErrValidation (the body
	// could not be read), an authentication error (auth.ErrUnauthenticated,
	// kms.ErrUnavailable, ...) or ErrAuditUnavailable (the audit record could
	// not be written; it also wraps the cause).
	Err error
	// Code is Err's kmsapi code (see ErrorCode and CodedError), Status its
	// HTTP status and Message a message that may be shown to the caller.
	Code      string
	Status    int
	Message   string
	RequestID string
}

// CodedError is implemented by an Extra route's own errors: KMSCode names
// the kmsapi code the error stands for (the audit record's reason code and
// the status when the route has no EncodeError).
type CodedError interface {
	error
	KMSCode() string
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

// SetDetail adds a detail (value sanitized) to the request's audit records,
// intent and outcome, next to the Route's Details. The pipeline's own
// details (method, path, status, resources, reason, intent_seq) take
// precedence.
func (c *Call) SetDetail(key, value string) {
	if c.rc.details == nil {
		c.rc.details = map[string]string{}
	}
	c.rc.details[key] = sanitize(value, 256)
}

// Allowed reports whether the caller's policy allows action on any of
// resources (none: only "*" statements apply), recording nothing: for a
// protocol that records the resources itself (AddResources).
func (c *Call) Allowed(action string, resources ...string) bool {
	return c.rc.principal != nil && c.rc.principal.Policy.Allowed(action, resources...)
}

// AddResources records resources the request named for its audit records
// without authorizing anything (a key reference that did not resolve, say).
func (c *Call) AddResources(resources ...string) {
	c.rc.resources = appendUnique(c.rc.resources, resources...)
}

// OnDone runs f after the answer is written (to zero secrets).
func (c *Call) OnDone(f func()) { c.rc.onDone(f) }

// Authorize checks the caller's policy for action on any of resources
// (none: only "*" statements apply) and records them for the audit. A
// refusal wraps ErrAccessDenied.
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

// WriteIntent makes the intent record of a state change durable before the
// change is made, as for the /v1 routes (intent.go): the action, caller,
// resources and details recorded so far. The outcome record names it, and
// a successful answer drops the cached key descriptions. An error wraps
// ErrAuditUnavailable: nothing may be changed then.
func (c *Call) WriteIntent() error {
	c.rc.mutates = true
	return c.rc.writeIntent(nil)
}

// ErrorCode maps an error of the core (or of a Call) to its kmsapi code and
// the message that may be shown to the caller.
func ErrorCode(err error) (code, message string) { return classify(err) }

// mountExtra registers an Extra route; a route gin cannot take (the path of
// another route, say) is an error rather than gin's panic.
func (s *Server) mountExtra(r route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("httpapi: Extra route %s %s: %v", r.Method, r.Path, p)
		}
	}()
	for _, o := range s.routes {
		if o.Method == r.Method && o.Path == r.Path {
			return fmt.Errorf("httpapi: Extra route %s %s is already registered", r.Method, r.Path)
		}
	}
	s.engine.Handle(r.Method, r.Path, s.wrap(r))
	s.routes = append(s.routes, r)
	return nil
}

// check runs an Extra route's Check; false means the refusal was answered.
func (s *Server) check(c *gin.Context, r route) bool {
	if r.extra == nil || r.extra.Check == nil {
		return true
	}
	err := r.extra.Check(c.Request)
	if err == nil {
		return true
	}
	code, msg := classify(err)
	s.fail(&reqCtx{c: c, extra: r.extra}, err, code, msg)
	return false
}

// serveExtra runs an Extra route after authentication.
func (s *Server) serveExtra(rc *reqCtx, x *Route) {
	rc.extra = x
	rep, herr := x.Serve(&Call{rc: rc})
	if rc.mutates && herr == nil {
		s.describe.changed()
	}
	if rep.Status == 0 {
		rep.Status = http.StatusOK
	}
	var code, msg string
	if herr != nil {
		code, msg = classify(herr)
		if x.EncodeError != nil {
			rep = s.failReply(rc, herr, code, msg)
		} else if st, ok := kmsapi.CodeStatus(code); ok {
			rep.Status = st
		} else {
			rep.Status = http.StatusInternalServerError
		}
	}
	if !s.audit(rc, rep.Status, herr) {
		return
	}
	if herr != nil && x.EncodeError == nil {
		s.writeError(rc.c, code, msg)
		return
	}
	writeReply(rc.c, rep)
}

// fail writes an error answer in the route's protocol.
func (s *Server) fail(rc *reqCtx, err error, code, msg string) {
	if rc.extra == nil || rc.extra.EncodeError == nil {
		s.writeError(rc.c, code, msg)
		return
	}
	writeReply(rc.c, s.failReply(rc, err, code, msg))
}

// failReply renders an error answer through the route's EncodeError.
func (s *Server) failReply(rc *reqCtx, err error, code, msg string) Reply {
	status, ok := kmsapi.CodeStatus(code)
	if !ok {
		code, status = kmsapi.CodeInternal, http.StatusInternalServerError
	}
	rc.c.Set(ctxCode, code)
	if code == kmsapi.CodeHSMUnavailable || code == kmsapi.CodeTooManyRequests {
		rc.c.Header("Retry-After", "1")
	}
	rep := rc.extra.EncodeError(Failure{Request: rc.c.Request, Err: err, Code: code, Status: status, Message: msg,
		RequestID: rc.c.GetString(ctxRequestID)})
	if rep.Status == 0 {
		rep.Status = status
	}
	return rep
}

// writeReply writes an Extra route's answer, with its Content-Length.
func writeReply(c *gin.Context, rep Reply) {
	h := c.Writer.Header()
	for k, vs := range rep.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(rep.Body)))
	ct := rep.ContentType
	if ct == "" {
		ct = "application/json"
	}
	status := rep.Status
	if status == 0 {
		status = http.StatusOK
	}
	c.Data(status, ct, rep.Body)
}
