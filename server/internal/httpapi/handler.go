package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/internal/auth"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// reqCtx is one authenticated request on its way through the pipeline.
type reqCtx struct {
	c          *gin.Context
	ctx        context.Context
	srv        *Server
	principal  *auth.Principal
	body       []byte
	action     string
	resources  []string
	keyVersion int
	ct         kms.Ciphertext // the request's ciphertext, parsed once
	extra      *Route         // set for an Extra route
	input      any            // the decoded request, its secrets zeroed when done
	secret     []byte         // a plaintext of the answer, zeroed when done
	mutates    bool           // a state change: intent record before the core call
	intentSeq  int64          // seq of the intent record, 0 if none
	cleanup    []func()
	res        [4]string // backing array of resources (no allocation for one key)

	details map[string]string // an Extra route's audit details (Call.SetDetail)
}

var reqPool = sync.Pool{New: func() any { return new(reqCtx) }}

// authorize checks the caller's policy for action on any of resources and
// remembers them for the audit record. Actions that are not about one key
// pass no resources; then only statements with resource "*" apply.
func (rc *reqCtx) authorize(action string, resources ...string) error {
	rc.resources = appendUnique(rc.resources, resources...)
	if rc.principal == nil || !rc.principal.Policy.Allowed(action, resources...) {
		return fmt.Errorf("%w: %s", ErrAccessDenied, action)
	}
	return nil
}

// authorizeKey resolves ref (key id or alias) and authorizes action on the
// key's resources. The reference itself is recorded even when it does not
// resolve.
func (rc *reqCtx) authorizeKey(action, ref string) (kms.KeyRef, error) {
	k, err := rc.srv.kms.ResolveKey(rc.ctx, ref)
	if err != nil {
		if strings.HasPrefix(ref, kmsapi.AliasPrefix) {
			rc.resources = appendUnique(rc.resources, ref)
		} else if ref != "" {
			rc.resources = appendUnique(rc.resources, "key/"+ref)
		}
		return kms.KeyRef{}, err
	}
	return k, rc.authorize(action, k.Resources()...)
}

// authorizeCiphertext parses blob once (kept in rc.ct for the core) and
// authorizes action on the key it names. Any failure to identify the key
// is the opaque invalid-ciphertext error.
func (rc *reqCtx) authorizeCiphertext(action string, blob []byte) (kms.KeyRef, error) {
	if len(blob) == 0 {
		return kms.KeyRef{}, validationf("ciphertext_blob is required")
	}
	rc.ct = kms.ParseCiphertext(blob)
	k, err := rc.srv.kms.ResolveCiphertext(rc.ctx, rc.ct)
	if err != nil {
		return kms.KeyRef{}, err
	}
	return k, rc.authorize(action, k.Resources()...)
}

func (rc *reqCtx) onDone(f func()) { rc.cleanup = append(rc.cleanup, f) }

func appendUnique(dst []string, src ...string) []string {
outer:
	for _, s := range src {
		for _, d := range dst {
			if d == s {
				continue outer
			}
		}
		dst = append(dst, s)
	}
	return dst
}

// decode parses the body as strict JSON into v: unknown fields, wrong types,
// bad base64 and trailing data are ErrValidation. An empty body is {}.
// decode reads the JSON body into v; a body of another Content-Type is
// refused (415) before it is parsed.
func (rc *reqCtx) decode(v any) error {
	if len(rc.body) > 0 && !isJSONContentType(rc.c.GetHeader("Content-Type")) {
		return ErrUnsupportedMediaType
	}
	return decodeStrict(rc.body, v)
}

func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if fastDecode(body, v) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s", ErrValidation, kmsapi.JSONErrorMessage(err, ""))
	}
	// Only JSON white space may follow the value (what dec.Token would
	// report as io.EOF), without tokenizing it.
	if !jsonSpace(body[dec.InputOffset():]) {
		return fmt.Errorf("%w: trailing data after JSON object", ErrValidation)
	}
	return nil
}

// jsonSpace reports whether b is only JSON white space.
func jsonSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// handlerFunc returns the answer body, or an error.
type handlerFunc func(rc *reqCtx) (any, error)

// locator finds the key a request acts on, resolves an alias and
// authorizes the route's action on the key's resources.
type locator func(rc *reqCtx, in any) (kms.KeyRef, error)

// noKey: the action is not about one key (only "*" statements apply).
func noKey(rc *reqCtx, _ any) (kms.KeyRef, error) { return kms.KeyRef{}, rc.authorize(rc.action) }

// pathKey: the :id path segment, a key id or an alias name.
func pathKey(rc *reqCtx, _ any) (kms.KeyRef, error) {
	id := rc.c.Param("id")
	if err := checkIDParam("key id", id); err != nil {
		rc.resources = appendUnique(rc.resources, "key/"+sanitize(id, 64))
		return kms.KeyRef{}, err
	}
	return rc.authorizeKey(rc.action, id)
}

// bodyKey: the key_id of the request body, a key id or an alias name; it
// is replaced by the resolved key id so the core does not resolve it again.
func bodyKey(rc *reqCtx, in any) (kms.KeyRef, error) {
	var ref *string
	switch v := in.(type) {
	case *kmsapi.EncryptRequest:
		ref = &v.KeyID
	case *kmsapi.GenerateDataKeyRequest:
		ref = &v.KeyID
	default:
		panic(fmt.Sprintf("httpapi: bodyKey on %T", in))
	}
	k, err := rc.authorizeKey(rc.action, *ref)
	if err == nil {
		*ref = k.KeyID
	}
	return k, err
}

// ciphertextKey: the key named inside the request's ciphertext_blob,
// authorized for action (the route's when empty). A failure counts as a
// failed crypto operation named metric.
func ciphertextKey(action, metric string) locator {
	return func(rc *reqCtx, in any) (k kms.KeyRef, err error) {
		a := action
		if a == "" {
			a = rc.action
		}
		switch v := in.(type) {
		case *kmsapi.DecryptRequest:
			k, err = rc.authorizeCiphertext(a, v.CiphertextBlob)
		case *kmsapi.ReEncryptRequest:
			k, err = rc.authorizeCiphertext(a, v.CiphertextBlob)
		default:
			panic(fmt.Sprintf("httpapi: ciphertextKey on %T", in))
		}
		if err != nil {
			rc.srv.metrics.cryptoOp(metric, k.KeyID, err)
		}
		return k, err
	}
}

// op is the one generic handler: decode the body into In, locate the key
// (path, body or ciphertext), resolve an alias, authorize, call the core
// and return its answer. Rules live in the core: the transport checks only
// the shape of the JSON.
func op[In any, Out any](locate locator, call func(rc *reqCtx, k kms.KeyRef, in *In) (Out, error)) handlerFunc {
	return func(rc *reqCtx) (any, error) {
		in := new(In)
		rc.input = in
		if err := rc.decode(in); err != nil {
			return nil, err
		}
		k, err := locate(rc, in)
		if err != nil {
			return nil, err
		}
		if rc.mutates {
			// Intent first: no change without a durable audit record.
			if err := rc.writeIntent(in); err != nil {
				return nil, err
			}
		}
		out, err := call(rc, k, in)
		if err != nil {
			return nil, err
		}
		rc.observe(out)
		return out, nil
	}
}

// observe records the key version a crypto answer used (for the audit
// record) and zeroes its plaintext once the answer is written.
func (rc *reqCtx) observe(out any) {
	switch v := out.(type) {
	case *kmsapi.EncryptResponse:
		rc.keyVersion = v.KeyVersion
	case *kmsapi.DecryptResponse:
		rc.keyVersion = v.KeyVersion
		rc.secret = v.Plaintext
	case *kmsapi.GenerateDataKeyResponse:
		rc.keyVersion = v.KeyVersion
		rc.secret = v.Plaintext
	case *kmsapi.ReEncryptResponse:
		rc.keyVersion = v.KeyVersion
	case *kmsapi.RandomResponse:
		rc.secret = v.Plaintext
	}
}

// zeroSecrets zeroes the plaintext of a decoded request.
func zeroSecrets(in any) {
	if v, ok := in.(*kmsapi.EncryptRequest); ok {
		zero(v.Plaintext)
	}
}

func zero(b []byte) { clear(b) }

// wrap builds the gin handler for one route: in-flight limit, body limit,
// authentication, the handler, the audit append (fail closed) and the
// answer.
func (s *Server) wrap(r route) gin.HandlerFunc {
	if r.Public {
		return r.public
	}
	limit := s.opts.MaxBodyBytes
	if r.BigBody {
		limit = s.opts.MaxBatchBodyBytes
	}
	mutates := changes(r)
	return func(c *gin.Context) {
		if r.extra != nil {
			if x := r.extra; x.Observe != nil {
				start := time.Now()
				defer func() { x.Observe(c.Request, c.Writer.Status(), c.Writer.Header(), time.Since(start)) }()
			}
			if !s.check(c, r) {
				return
			}
		}
		if s.slots != nil {
			select {
			case s.slots <- struct{}{}:
				defer func() { <-s.slots }()
			default:
				s.reject(c, r, ErrTooManyRequests, kmsapi.CodeTooManyRequests, "too many requests in flight, retry later")
				return
			}
		}
		if c.Request.ContentLength > limit {
			s.reject(c, r, ErrPayloadTooLarge, kmsapi.CodePayloadTooLarge, "request body too large")
			return
		}
		body, err := readBody(c, limit)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.reject(c, r, ErrPayloadTooLarge, kmsapi.CodePayloadTooLarge, "request body too large")
			} else {
				s.reject(c, r, fmt.Errorf("%w: could not read request body: %w", ErrValidation, err), kmsapi.CodeValidation, "could not read request body")
			}
			return
		}
		defer zero(body) // may hold base64 plaintext
		p, err := s.opts.Auth.Authenticate(c.Request, body)
		if err != nil {
			code, msg := classify(err)
			if code != kmsapi.CodeHSMUnavailable && code != kmsapi.CodeUnauthenticated {
				code, msg = kmsapi.CodeInternal, "internal error"
			}
			s.log.Info("authentication failed", "request_id", c.GetString(ctxRequestID), "reason", err.Error())
			s.reject(c, r, err, code, msg)
			return
		}
		c.Set(ctxAccessKey, p.AccessKeyID)
		rc := reqPool.Get().(*reqCtx)
		*rc = reqCtx{c: c, ctx: c.Request.Context(), principal: p, body: body, action: r.Action, srv: s, mutates: mutates}
		rc.resources = rc.res[:0]
		defer func() {
			for _, f := range rc.cleanup {
				f()
			}
			zeroSecrets(rc.input)
			zero(rc.secret)
			*rc = reqCtx{}
			reqPool.Put(rc)
		}()
		if r.extra != nil {
			s.serveExtra(rc, r.extra)
			return
		}
		resp, herr := r.handler(rc)
		if mutates && herr == nil {
			s.describe.changed()
		}
		if !s.audit(rc, r.Status, herr) {
			return
		}
		if herr != nil {
			code, msg := classify(herr)
			s.writeError(c, code, msg)
			return
		}
		s.writeJSON(c, r.Status, resp)
	}
}

// reject answers a request refused before authentication completed, in
// the route's protocol. A failed authentication is audited first
// (rate-limited), with the status of that answer.
func (s *Server) reject(c *gin.Context, r route, err error, code, msg string) {
	if r.extra == nil || r.extra.EncodeError == nil {
		if code == kmsapi.CodeUnauthenticated {
			status, _ := kmsapi.CodeStatus(code)
			s.auditAuthFailure(c, r.extra, code, status)
		}
		s.writeError(c, code, msg)
		return
	}
	rep := s.failReply(&reqCtx{c: c, extra: r.extra}, err, code, msg)
	if code == kmsapi.CodeUnauthenticated {
		s.auditAuthFailure(c, r.extra, code, rep.Status)
	}
	writeReply(c, rep)
}

// readBody reads the whole request body under limit.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	rd := http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	if n := c.Request.ContentLength; n >= 0 && n <= limit {
		b := make([]byte, n, n+1)
		if _, err := io.ReadFull(rd, b); err != nil {
			return nil, err
		}
		// The body must end where Content-Length says.
		var one [1]byte
		if m, err := rd.Read(one[:]); m != 0 || (err != nil && err != io.EOF) {
			if err == nil {
				err = errors.New("body longer than Content-Length")
			}
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(rd)
}

// audit appends the request's audit record and reports whether the answer
// may be sent. A failed append fails the request (fail closed): the error
// answer is written here. status is the answer's (for a /v1 route, that of
// success: an error's is its code's).
func (s *Server) audit(rc *reqCtx, status int, herr error) bool {
	c := rc.c
	rec := audit.Record{
		Time: time.Now(), AccessKeyID: rc.principal.AccessKeyID, Action: rc.action,
		KeyVersion: rc.keyVersion, Result: audit.ResultOK,
		RequestID: c.GetString(ctxRequestID), SourceAddr: truncUTF8(c.ClientIP(), 128),
	}
	rec.KeyID = keyOf(rc.resources)
	details := rc.newDetails()
	if len(rc.resources) > 0 {
		details["resources"] = sanitize(strings.Join(rc.resources, ","), 256)
	}
	if herr != nil {
		code, _ := classify(herr)
		if rc.extra == nil {
			status, _ = kmsapi.CodeStatus(code)
		}
		rec.Result, rec.ReasonCode = audit.ResultError, code
		if reason := kms.ReasonCode(herr); reason != "" {
			details["reason"] = reason
		}
		if code == kmsapi.CodeInternal || code == kmsapi.CodeHSMUnavailable {
			s.log.Error("request failed", "request_id", rec.RequestID, "error", herr.Error())
		}
	}
	details["status"] = strconv.Itoa(status)
	if rc.intentSeq > 0 {
		details[audit.DetailIntent] = strconv.FormatInt(rc.intentSeq, 10)
	}
	rec.Details = details
	actx, cancel := context.WithTimeout(context.WithoutCancel(rc.ctx), s.opts.AuditTimeout)
	aerr := s.opts.Audit.Append(actx, rec)
	cancel()
	if aerr == nil {
		return true
	}
	s.log.Error("audit append failed; failing the request", "request_id", rec.RequestID, "error", aerr.Error())
	code, msg := kmsapi.CodeAuditUnavailable, "the audit log is unavailable, retry later"
	if errors.Is(aerr, kms.ErrUnavailable) {
		code, msg = kmsapi.CodeHSMUnavailable, "the audit log is unavailable, retry later"
	}
	s.fail(rc, fmt.Errorf("%w: %w", ErrAuditUnavailable, aerr), code, msg)
	return false
}

// newDetails returns the details map of one of rc's audit records: an Extra
// route's details, then the method and path.
func (rc *reqCtx) newDetails() map[string]string {
	return newDetails(rc.c, rc.extra, rc.details)
}

// newDetails returns the details map of an audit record: x's Details (if
// x is not nil), more, then the method and path of c's request.
func newDetails(c *gin.Context, x *Route, more map[string]string) map[string]string {
	n := len(more) + 6
	if x != nil {
		n += len(x.Details)
	}
	d := make(map[string]string, n)
	if x != nil {
		for k, v := range x.Details {
			d[k] = sanitize(v, 256)
		}
	}
	for k, v := range more {
		d[k] = v
	}
	d["method"] = c.Request.Method
	d["path"] = sanitize(c.Request.URL.Path, 256)
	return d
}

// truncUTF8 cuts s to at most n bytes on a rune boundary.
func truncUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func (s *Server) writeJSON(c *gin.Context, status int, v any) {
	if status == http.StatusNoContent || v == nil {
		c.Status(status)
		c.Writer.WriteHeaderNow()
		return
	}
	buf := jsonBufs.Get().(*bytes.Buffer)
	buf.Reset()
	buf.Grow(512) // room for a crypto answer, kept by the pool
	if b, ok := fastEncode(buf.AvailableBuffer(), v); ok {
		c.Data(status, "application/json; charset=utf-8", b)
		zero(b) // may hold base64 plaintext
		jsonBufs.Put(buf)
		return
	}
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		jsonBufs.Put(buf)
		s.writeError(c, kmsapi.CodeInternal, "internal error")
		return
	}
	b := buf.Bytes()
	c.Data(status, "application/json; charset=utf-8", b[:len(b)-1]) // without Encode's newline
	zero(b)                                                         // may hold base64 plaintext
	if buf.Cap() <= 64<<10 {
		jsonBufs.Put(buf)
	}
}

var jsonBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}
