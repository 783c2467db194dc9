package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/kmsgo/kmsgo/hsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Default body limits (API.md).
const (
	DefaultMaxBody      = 64 << 10
	DefaultMaxBatchBody = 1 << 20
	// MaxBatchItems bounds POST /v1/decrypt/batch.
	MaxBatchItems = 100
)

// HeaderRequestID carries the request id on every response.
const HeaderRequestID = "X-Request-Id"

// Options wires a Server. Keys, AccessKeys, Audit and Auth are required.
type Options struct {
	Keys       KeyService
	AccessKeys AccessKeyService
	Audit      AuditLog
	Auth       Authenticator

	// Ready reports whether the database and the HSM are usable (/readyz).
	// Nil means always ready.
	Ready func(ctx context.Context) error
	// HSMStats feeds the HSM pool gauges of /metrics. Optional.
	HSMStats func() hsm.Stats
	// Logger receives one structured line per request: at debug level for
	// successes (every authenticated one is also in the audit log), info
	// for 4xx, error for 5xx. Nil discards.
	Logger *slog.Logger
	// Registry receives the API's metrics and is served at /metrics. Nil
	// creates a private registry.
	Registry *prometheus.Registry

	// TrustedProxies lists the proxy addresses/CIDRs whose X-Forwarded-For
	// is believed for the client address in logs and audit records. Empty:
	// none, the TCP peer address is used.
	TrustedProxies []string

	// MaxInFlight bounds concurrently served /v1 requests; more get 429
	// TooManyRequests with Retry-After. 0 means unlimited.
	MaxInFlight int

	MaxBodyBytes      int64 // default DefaultMaxBody
	MaxBatchBodyBytes int64 // default DefaultMaxBatchBody
	// AuditTimeout bounds one audit append (default 5s). The append runs
	// even when the client went away: an executed operation is always
	// either audited or reported as failed.
	AuditTimeout time.Duration
}

// Server is the kmsd HTTP handler.
type Server struct {
	authLim authAuditLimiter // rate limit of audited authentication failures
	opts    Options
	engine  *gin.Engine
	log     *slog.Logger
	metrics *metrics
	routes  []route
	slots   chan struct{} // nil when MaxInFlight is 0
}

var ginModeOnce sync.Once

// New builds the router with every route of API.md.
func New(o Options) (*Server, error) {
	if o.Keys == nil || o.AccessKeys == nil || o.Audit == nil || o.Auth == nil {
		return nil, errors.New("httpapi: Keys, AccessKeys, Audit and Auth are required")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBody
	}
	if o.MaxBatchBodyBytes <= 0 {
		o.MaxBatchBodyBytes = DefaultMaxBatchBody
	}
	if o.AuditTimeout <= 0 {
		o.AuditTimeout = 5 * time.Second
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ginModeOnce.Do(func() { gin.SetMode(gin.ReleaseMode) })

	m, err := newMetrics(o.Registry, o.HSMStats)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, engine: gin.New(), log: log, metrics: m}
	if o.MaxInFlight > 0 {
		s.slots = make(chan struct{}, o.MaxInFlight)
	}
	s.engine.ContextWithFallback = true
	if err := s.engine.SetTrustedProxies(o.TrustedProxies); err != nil {
		return nil, fmt.Errorf("httpapi: trusted proxies: %w", err)
	}
	s.engine.HandleMethodNotAllowed = false
	// No unsigned 301s: "/v1/keys/" is a 404 in the error shape, not a
	// redirect that a signed client would follow into a 401.
	s.engine.RedirectTrailingSlash = false
	s.engine.RedirectFixedPath = false
	s.engine.Use(s.recoverAndObserve)
	s.routes = s.routeTable()
	for _, r := range s.routes {
		s.engine.Handle(r.Method, r.Path, s.wrap(r))
	}
	s.engine.NoRoute(func(c *gin.Context) {
		s.writeError(c, CodeNotFound, "no such route")
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Engine exposes the gin engine (for route enumeration in tests).
func (s *Server) Engine() *gin.Engine { return s.engine }

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

const (
	ctxRequestID = "kms.request_id"
	ctxCode      = "kms.code"
	ctxAccessKey = "kms.access_key"
)

// recoverAndObserve sets the request id, recovers panics into 500, and
// records metrics and one log line per request (built only when its level
// is enabled).
func (s *Server) recoverAndObserve(c *gin.Context) {
	start := time.Now()
	id := newRequestID()
	c.Set(ctxRequestID, id)
	c.Header(HeaderRequestID, id)
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in handler", "request_id", id, "panic", fmt.Sprint(p))
			if !c.Writer.Written() {
				s.writeError(c, CodeInternal, "internal error")
			}
			c.Abort()
		}
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		status := c.Writer.Status()
		elapsed := time.Since(start)
		s.metrics.observeRequest(c.Request.Method, route, status, elapsed)
		level := slog.LevelDebug // successes: the audit log already records them
		switch {
		case status >= 500:
			level = slog.LevelError
		case status >= 400:
			level = slog.LevelInfo
		}
		if !s.log.Enabled(context.Background(), level) {
			return // do not build a line nobody reads (hot path)
		}
		attrs := []any{"request_id", id, "method", c.Request.Method, "route", route,
			"status", status, "duration_ms", float64(elapsed.Microseconds()) / 1000, "remote", c.ClientIP()}
		if ak := c.GetString(ctxAccessKey); ak != "" {
			attrs = append(attrs, "access_key_id", ak)
		}
		if code := c.GetString(ctxCode); code != "" {
			attrs = append(attrs, "code", code)
		}
		s.log.Log(context.Background(), level, "request", attrs...)
	}()
	c.Next()
}

// errorBody is the one error shape of the API.
type errorBody struct {
	Error apiError `json:"error"`
}

type apiError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

func (s *Server) writeError(c *gin.Context, code, msg string) {
	status, ok := codeStatus[code]
	if !ok {
		code, status = CodeInternal, http.StatusInternalServerError
	}
	c.Set(ctxCode, code)
	if code == CodeHSMUnavailable || code == CodeTooManyRequests || code == CodeAuditUnavailable {
		c.Header("Retry-After", "1")
	}
	b, _ := json.Marshal(errorBody{Error: apiError{Code: code, Message: msg, RequestID: c.GetString(ctxRequestID)}})
	c.Data(status, "application/json; charset=utf-8", b)
}

// classify maps an error to its API code and the message shown to callers.
// Server faults get a fixed message; the details go to the log only.
func classify(err error) (code, msg string) {
	switch {
	case errors.Is(err, ErrInvalidCiphertext):
		return CodeInvalidCiphertext, "the ciphertext could not be decrypted"
	case errors.Is(err, ErrUnauthenticated):
		return CodeUnauthenticated, "the request signature could not be verified"
	case errors.Is(err, ErrAccessDenied):
		return CodeAccessDenied, "not allowed by policy"
	case errors.Is(err, ErrPayloadTooLarge):
		return CodePayloadTooLarge, "request body too large"
	case errors.Is(err, ErrUnsupportedMediaType):
		return CodeUnsupportedMediaType, "Content-Type must be application/json"
	case errors.Is(err, ErrValidation):
		return CodeValidation, err.Error()
	case errors.Is(err, ErrNotFound):
		return CodeNotFound, err.Error()
	case errors.Is(err, ErrAlreadyExists):
		return CodeAlreadyExists, err.Error()
	case errors.Is(err, ErrInvalidKeyState):
		return CodeInvalidKeyState, err.Error()
	case errors.Is(err, ErrTooManyRequests):
		return CodeTooManyRequests, "rate limited"
	case errors.Is(err, hsm.ErrUnavailable):
		return CodeHSMUnavailable, "the HSM is unavailable, retry later"
	case errors.Is(err, ErrAuditUnavailable):
		return CodeAuditUnavailable, "the audit log is unavailable, retry later"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return CodeHSMUnavailable, "the request timed out"
	default:
		return CodeInternal, "internal error"
	}
}

// reqCtx is what a protected handler works with.
type reqCtx struct {
	c          *gin.Context
	ctx        context.Context
	principal  Principal
	body       []byte
	action     string
	resources  []string
	keyVersion int
	cleanup    []func()
	srv        *Server
}

// authorize checks the caller's policy for action on any of resources and
// remembers them for the audit record. Actions that are not about one key
// pass no resources; then only statements with resource "*" apply.
func (rc *reqCtx) authorize(action string, resources ...string) error {
	rc.resources = appendUnique(rc.resources, resources...)
	if rc.principal.Allowed == nil || !rc.principal.Allowed(action, resources...) {
		return fmt.Errorf("%w: %s", ErrAccessDenied, action)
	}
	return nil
}

// authorizeKey resolves ref (key id or alias) and authorizes action on it.
func (rc *reqCtx) authorizeKey(action, ref string) (KeyRef, error) {
	if ref == "" {
		return KeyRef{}, fmt.Errorf("%w: key_id is required", ErrValidation)
	}
	k, err := rc.srv.opts.Keys.ResolveKey(rc.ctx, ref)
	if err != nil {
		return KeyRef{}, err
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
func (rc *reqCtx) decode(v any) error {
	if len(bytes.TrimSpace(rc.body)) > 0 && !isJSONContentType(rc.c.GetHeader("Content-Type")) {
		return fmt.Errorf("%w: Content-Type must be application/json", ErrUnsupportedMediaType)
	}
	return decodeStrict(rc.body, v)
}

func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s", ErrValidation, jsonErrMessage(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after JSON object", ErrValidation)
	}
	return nil
}

func jsonErrMessage(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			return "field " + te.Field + ": expected " + te.Type.String()
		}
		return "expected a JSON object"
	case errors.As(err, &se):
		return "malformed JSON at offset " + strconv.FormatInt(se.Offset, 10)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	default:
		return err.Error()
	}
}

// handlerFunc returns the success status and body, or an error.
type handlerFunc func(rc *reqCtx) (int, any, error)

// wrap builds the gin handler for one route: body limit, authentication,
// the handler, the audit append (fail closed) and the answer.
func (s *Server) wrap(r route) gin.HandlerFunc {
	if r.Public {
		return r.public
	}
	limit := s.opts.MaxBodyBytes
	if r.BigBody {
		limit = s.opts.MaxBatchBodyBytes
	}
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		if s.slots != nil {
			select {
			case s.slots <- struct{}{}:
				defer func() { <-s.slots }()
			default:
				s.writeError(c, CodeTooManyRequests, "too many requests in flight, retry later")
				return
			}
		}
		if c.Request.ContentLength > limit {
			s.writeError(c, CodePayloadTooLarge, "request body too large")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.writeError(c, CodePayloadTooLarge, "request body too large")
			} else {
				s.writeError(c, CodeValidation, "could not read request body")
			}
			return
		}
		p, err := s.opts.Auth.Authenticate(c.Request, body)
		if err != nil {
			code, msg := classify(err)
			if code != CodeHSMUnavailable && code != CodeUnauthenticated {
				code, msg = CodeInternal, "internal error"
			}
			s.log.Info("authentication failed", "request_id", c.GetString(ctxRequestID), "reason", err.Error())
			s.auditAuthFailure(c, code, err)
			s.writeError(c, code, msg)
			return
		}
		c.Set(ctxAccessKey, p.AccessKeyID)
		rc := &reqCtx{c: c, ctx: ctx, principal: p, body: body, action: r.Action, srv: s}
		defer func() {
			for _, f := range rc.cleanup {
				f()
			}
			hsm.Zero(body) // may hold base64 plaintext
		}()
		status, resp, herr := r.handler(rc)
		ev := AuditEvent{
			Time: time.Now().UTC(), RequestID: c.GetString(ctxRequestID), AccessKeyID: p.AccessKeyID,
			Action: rc.action, Resources: rc.resources, Method: c.Request.Method, Path: c.Request.URL.Path,
			SourceIP: c.ClientIP(), Status: status, KeyVersion: rc.keyVersion, Err: herr,
		}
		for _, r := range rc.resources {
			if strings.HasPrefix(r, "key/") {
				ev.KeyID = strings.TrimPrefix(r, "key/")
				break
			}
		}
		var code, msg string
		if herr != nil {
			code, msg = classify(herr)
			ev.Status, ev.ErrorCode = codeStatus[code], code
			if code == CodeInternal || code == CodeHSMUnavailable {
				s.log.Error("request failed", "request_id", ev.RequestID, "error", herr.Error())
			}
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.AuditTimeout)
		aerr := s.opts.Audit.Append(actx, ev)
		cancel()
		if aerr != nil {
			s.log.Error("audit append failed; failing the request", "request_id", ev.RequestID, "error", aerr.Error())
			code, msg = classify(fmt.Errorf("%w: %w", ErrAuditUnavailable, aerr))
			if errors.Is(aerr, hsm.ErrUnavailable) {
				code, msg = CodeHSMUnavailable, "the audit log is unavailable, retry later"
			}
			s.writeError(c, code, msg)
			return
		}
		if herr != nil {
			s.writeError(c, code, msg)
			return
		}
		s.writeJSON(c, status, resp)
	}
}

func (s *Server) writeJSON(c *gin.Context, status int, v any) {
	if status == http.StatusNoContent || v == nil {
		c.Status(status)
		c.Writer.WriteHeaderNow()
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.writeError(c, CodeInternal, "internal error")
		return
	}
	c.Data(status, "application/json; charset=utf-8", b)
	hsm.Zero(b) // may hold base64 plaintext
}

// publicHandler builds the handler of an unauthenticated route.
func (s *Server) healthz(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", []byte(`{"status":"ok"}`))
}

func (s *Server) readyz(c *gin.Context) {
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			s.log.Warn("not ready", "error", err.Error())
			s.writeError(c, CodeHSMUnavailable, "not ready")
			return
		}
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", []byte(`{"status":"ready"}`))
}

func (s *Server) metricsHandler() gin.HandlerFunc {
	h := promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{})
	return gin.WrapH(h)
}
