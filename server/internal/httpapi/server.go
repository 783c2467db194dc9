package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/internal/auth"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
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
const HeaderRequestID = kmsapi.HeaderRequestID

// Options wires a Server. KMS, Auth and Audit are required.
type Options struct {
	KMS   *kms.Service
	Auth  *auth.Service
	Audit *audit.Logger

	// Ready reports whether the database and the HSM are usable (/readyz).
	// Nil means always ready.
	Ready func(ctx context.Context) error
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

	// Jobs serves GET /v1/jobs and POST /v1/jobs/:name/run. Nil: this
	// replica runs no jobs (the list is empty, a run is NotFound).
	Jobs Jobs

	// Extra mounts more authenticated routes (another protocol over the
	// same core, such as the AWS KMS JSON protocol at POST /, package
	// awsapi) behind the same body limit, SigV4 authentication, in-flight
	// limit, audit (fail closed) and metrics as the /v1 routes. A route
	// whose method and path another route has is an error.
	Extra []Route
}

// Server is the kmsd HTTP handler.
type Server struct {
	authLim  authAuditLimiter // rate limit of audited authentication failures
	verified verifiedHeads    // heads of the last intact audit verification
	opts     Options
	kms      *kms.Service
	describe describeCache
	engine   *gin.Engine
	log      *slog.Logger
	metrics  *metrics
	routes   []route
	slots    chan struct{} // nil when MaxInFlight is 0
}

var ginModeOnce sync.Once

// New builds the router with every route of API.md.
func New(o Options) (*Server, error) {
	if o.KMS == nil || o.Audit == nil || o.Auth == nil {
		return nil, errors.New("httpapi: KMS, Audit and Auth are required")
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

	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, kms: o.KMS, engine: gin.New(), log: log, metrics: m}
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
	// Aliases are accepted wherever a key id is, also in the path:
	// /v1/keys/alias%2Forders routes on the escaped path, and :id is
	// unescaped to "alias/orders".
	s.engine.UseRawPath = true
	s.engine.UnescapePathValues = true
	s.engine.Use(s.recoverAndObserve)
	s.routes = s.routeTable()
	for _, r := range s.routes {
		s.engine.Handle(r.Method, r.Path, s.wrap(r))
	}
	for _, x := range o.Extra {
		if x.Serve == nil || x.Method == "" || x.Path == "" {
			return nil, errors.New("httpapi: an Extra route needs Method, Path and Serve")
		}
		r := route{Method: x.Method, Path: x.Path, Summary: x.Summary, Status: http.StatusOK, extra: &x}
		if err := s.mountExtra(r); err != nil {
			return nil, err
		}
	}
	s.engine.NoRoute(func(c *gin.Context) {
		s.writeError(c, kmsapi.CodeNotFound, "no such route")
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
				s.writeError(c, kmsapi.CodeInternal, "internal error")
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

func (s *Server) writeError(c *gin.Context, code, msg string) {
	status, ok := kmsapi.CodeStatus(code)
	if !ok {
		code, status = kmsapi.CodeInternal, http.StatusInternalServerError
	}
	c.Set(ctxCode, code)
	if code == kmsapi.CodeHSMUnavailable || code == kmsapi.CodeTooManyRequests || code == kmsapi.CodeAuditUnavailable {
		c.Header("Retry-After", "1")
	}
	b, _ := json.Marshal(kmsapi.ErrorResponse{Error: kmsapi.Error{Code: code, Message: msg, RequestID: c.GetString(ctxRequestID)}})
	c.Data(status, "application/json; charset=utf-8", b)
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
			s.writeError(c, kmsapi.CodeHSMUnavailable, "not ready")
			return
		}
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", []byte(`{"status":"ready"}`))
}

func (s *Server) metricsHandler() gin.HandlerFunc {
	h := promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{})
	return gin.WrapH(h)
}
