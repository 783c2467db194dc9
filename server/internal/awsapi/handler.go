package awsapi

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
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/internal/auth"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// Protocol constants.
const (
	// TargetPrefix precedes the operation name in X-Amz-Target.
	TargetPrefix = "TrentService."
	// ContentType is the media type of requests and answers.
	ContentType = "application/x-amz-json-1.1"
	// DefaultAccountID is the account id in ARNs when none is configured.
	DefaultAccountID = "000000000000"
	// DefaultMaxBody bounds a request body (a 4 KiB plaintext in base64 plus
	// an encryption context fits easily).
	DefaultMaxBody = 64 << 10
	// HeaderRequestID is AWS's request id header; the value is the
	// X-Request-Id of the /v1 middleware when there is one.
	HeaderRequestID = "X-Amzn-Requestid"
	// HeaderErrorType repeats an error answer's __type, as AWS does.
	HeaderErrorType = "X-Amzn-Errortype"
)

// statusWriter remembers the status of the answer (for metrics).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Options wires a Handler. KMS, Auth and Audit are required.
type Options struct {
	KMS   *kms.Service
	Auth  *auth.Service
	Audit *audit.Logger
	// AccountID is the 12-digit account id of ARNs (DefaultAccountID when
	// empty). Region is the ARN region; empty means Auth.Region(), the
	// region clients sign for.
	AccountID string
	Region    string
	// Logger receives one line per failed request (info for 4xx, error for
	// 5xx). Nil discards.
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body (DefaultMaxBody when 0).
	MaxBodyBytes int64
	// MaxInFlight bounds concurrently served requests; more get
	// ThrottlingException (which SDKs retry with back-off). 0: unlimited.
	MaxInFlight int
	// AuditTimeout bounds one audit append (default 5s).
	AuditTimeout time.Duration
	// Registry receives the kms_aws_* metrics. Nil: no metrics.
	Registry prometheus.Registerer
	// MetadataTTL bounds how long a resolved key reference (id, aliases,
	// state) is reused for authorization (default kms.DefaultMetadataTTL,
	// the bound the core applies to key state; negative disables).
	MetadataTTL time.Duration
}

// Handler serves the AWS KMS JSON protocol.
type Handler struct {
	o       Options
	arns    ARNs
	log     *slog.Logger
	ops     map[string]operation
	slots   chan struct{}
	metrics *metrics

	mu    sync.Mutex
	cache map[string]cachedKey
	gen   uint64
}

type cachedKey struct {
	md     *kms.KeyMetadata
	loaded time.Time
}

// New returns a Handler.
func New(o Options) (*Handler, error) {
	if o.KMS == nil || o.Auth == nil || o.Audit == nil {
		return nil, errors.New("awsapi: KMS, Auth and Audit are required")
	}
	if o.AccountID == "" {
		o.AccountID = DefaultAccountID
	}
	if !ValidAccountID(o.AccountID) {
		return nil, fmt.Errorf("awsapi: account id %q is not 12 digits", o.AccountID)
	}
	if o.Region == "" {
		o.Region = o.Auth.Region()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBody
	}
	if o.AuditTimeout <= 0 {
		o.AuditTimeout = 5 * time.Second
	}
	if o.MetadataTTL == 0 {
		o.MetadataTTL = kms.DefaultMetadataTTL
	}
	h := &Handler{o: o, arns: ARNs{Region: o.Region, Account: o.AccountID}, log: o.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if o.MaxInFlight > 0 {
		h.slots = make(chan struct{}, o.MaxInFlight)
	}
	h.ops = h.operations()
	if o.Registry != nil {
		m, err := newMetrics(o.Registry)
		if err != nil {
			return nil, fmt.Errorf("awsapi: metrics: %w", err)
		}
		h.metrics = m
	}
	return h, nil
}

// ValidAccountID reports whether s is a 12-digit AWS account id.
func ValidAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ARNs returns the ARN builder of this handler (region and account).
func (h *Handler) ARNs() ARNs { return h.arns }

// ServeHTTP implements http.Handler, taking the client address from the
// TCP peer. Behind the /v1 router use Serve, which is given the address
// the router derived (trusted proxies).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	h.Serve(w, r, host)
}

// call is one request in flight.
type call struct {
	ctx        context.Context
	h          *Handler
	principal  *auth.Principal
	body       []byte
	op         string
	action     string
	resources  []string
	keyVersion int
	intentSeq  int64 // seq of the intent record of a state change, 0 if none
	cleanup    []func()
}

func (c *call) onDone(f func()) { c.cleanup = append(c.cleanup, f) }

// Serve answers one AWS KMS request. clientIP is recorded in the audit log.
func (h *Handler) Serve(rw http.ResponseWriter, r *http.Request, clientIP string) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	var op string
	defer func() { h.observe(op, w.status, w.Header().Get(HeaderErrorType), time.Since(start)) }()
	reqID := w.Header().Get("X-Request-Id")
	if reqID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		reqID = hex.EncodeToString(b[:])
	}
	w.Header().Set(HeaderRequestID, reqID)

	op, perr := parseTarget(r)
	if perr != nil {
		h.writeError(w, reqID, perr, "")
		return
	}
	if h.slots != nil {
		select {
		case h.slots <- struct{}{}:
			defer func() { <-h.slots }()
		default:
			h.writeError(w, reqID, awsErr(ExcThrottling, "too many requests in flight, retry later"), op)
			return
		}
	}
	limit := h.o.MaxBodyBytes
	if r.ContentLength > limit {
		h.writeError(w, reqID, validationErr("request body larger than %d bytes", limit), op)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.writeError(w, reqID, validationErr("request body larger than %d bytes", limit), op)
		} else {
			h.writeError(w, reqID, awsErr(ExcSerialization, "could not read the request body"), op)
		}
		return
	}
	defer hsm.Zero(body) // may hold base64 plaintext

	p, err := h.o.Auth.Authenticate(r, body)
	if err != nil {
		var e *Error
		switch {
		case errors.Is(err, hsm.ErrUnavailable):
			e = &Error{Type: ExcDependencyTimeout, Message: "the HSM is unavailable, retry later", Cause: err}
		case errors.Is(err, auth.ErrUnauthenticated) && r.Header.Get("Authorization") == "":
			e = &Error{Type: ExcMissingAuthentication, Message: "missing SigV4 Authorization header", Cause: err}
		case errors.Is(err, auth.ErrUnauthenticated):
			e = &Error{Type: ExcInvalidSignature, Message: "the request signature could not be verified", Cause: err}
		default:
			e = &Error{Type: ExcInternal, Message: "internal error", Cause: err}
		}
		h.log.Info("aws authentication failed", "request_id", reqID, "operation", op, "reason", err.Error())
		h.writeError(w, reqID, e, op)
		return
	}

	c := &call{ctx: r.Context(), h: h, principal: p, body: body, op: op}
	defer func() {
		for _, f := range c.cleanup {
			f()
		}
	}()
	var resp any
	if o, ok := h.ops[op]; ok {
		c.action = o.action
		if mutatingOps[op] {
			// Intent first: no state change without a durable record.
			err = h.intent(c, reqID, clientIP)
		}
		if err == nil {
			resp, err = o.run(c)
		}
	} else {
		c.action = "kms:" + op
		err = unsupported("%s is not supported by kmsd", op)
	}

	var e *Error
	status := http.StatusOK
	if err != nil {
		e = toAWS(err)
		status = e.Status()
	}
	if aerr := h.audit(c, reqID, clientIP, status, e); aerr != nil {
		h.log.Error("audit append failed; failing the request", "request_id", reqID, "error", aerr.Error())
		ae := &Error{Type: ExcInternal, Message: "the audit log is unavailable", Cause: aerr}
		if errors.Is(aerr, hsm.ErrUnavailable) {
			ae.Type, ae.Message = ExcDependencyTimeout, "the audit log is unavailable, retry later"
		}
		h.writeError(w, reqID, ae, op)
		return
	}
	if e != nil {
		h.writeError(w, reqID, e, op)
		return
	}
	h.writeJSON(w, reqID, resp, op)
}

// parseTarget checks the protocol headers and returns the operation name.
func parseTarget(r *http.Request) (string, *Error) {
	if r.Method != http.MethodPost {
		return "", awsErr(ExcUnknownOperation, "the AWS KMS protocol takes POST requests")
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, TargetPrefix)
	if !ok || !validOpName(op) {
		return "", awsErr(ExcUnknownOperation, "X-Amz-Target must be %s<Operation>", TargetPrefix)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, ContentType) {
		return op, awsErr(ExcSerialization, "Content-Type must be %s", ContentType)
	}
	return op, nil
}

// validOpName accepts an operation name: 1-60 ASCII letters and digits
// starting with an upper-case letter.
func validOpName(s string) bool {
	if s == "" || len(s) > 60 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// mutatingOps are the operations that change state: each is audited
// with an intent record before the core is called (as the /v1 routes are,
// see server/internal/httpapi).
var mutatingOps = map[string]bool{
	"CreateKey": true, "UpdateKeyDescription": true, "EnableKey": true, "DisableKey": true,
	"ScheduleKeyDeletion": true, "CancelKeyDeletion": true, "EnableKeyRotation": true,
	"DisableKeyRotation": true, "RotateKeyOnDemand": true, "CreateAlias": true, "UpdateAlias": true,
	"DeleteAlias": true, "TagResource": true, "UntagResource": true, "GetParametersForImport": true,
	"ImportKeyMaterial": true,
}

// intent appends the intent record of a state-changing operation (before
// its body is decoded: the key is named by the outcome record). An error
// means nothing may be changed.
func (h *Handler) intent(c *call, reqID, clientIP string) error {
	rec := audit.Record{
		Time: time.Now().UTC(), AccessKeyID: c.principal.AccessKeyID, Action: c.action,
		Result: audit.ResultIntent, RequestID: reqID, SourceAddr: truncUTF8(clientIP, 128),
		Details: map[string]string{"method": http.MethodPost, "path": "/", "protocol": "aws-json-1.1", "operation": c.op},
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), h.o.AuditTimeout)
	defer cancel()
	head, err := h.o.Audit.AppendHead(ctx, rec)
	if err != nil {
		h.log.Error("audit intent append failed; nothing changed", "request_id", reqID, "error", err.Error())
		return &Error{Type: ExcDependencyTimeout, Message: "the audit log is unavailable, retry later", Reason: "audit_unavailable", Cause: err}
	}
	c.intentSeq = head.Seq
	return nil
}

// audit appends the record of an authenticated request (fail closed).
func (h *Handler) audit(c *call, reqID, clientIP string, status int, e *Error) error {
	rec := audit.Record{
		Time: time.Now().UTC(), AccessKeyID: c.principal.AccessKeyID, Action: c.action,
		KeyVersion: c.keyVersion, Result: audit.ResultOK, RequestID: reqID,
		SourceAddr: truncUTF8(clientIP, 128),
		Details: map[string]string{
			"method":    http.MethodPost,
			"path":      "/",
			"status":    strconv.Itoa(status),
			"protocol":  "aws-json-1.1",
			"operation": c.op,
		},
	}
	for _, r := range c.resources {
		if id, ok := strings.CutPrefix(r, "key/"); ok {
			rec.KeyID = id
			break
		}
	}
	if c.intentSeq > 0 {
		rec.Details[audit.DetailIntent] = strconv.FormatInt(c.intentSeq, 10)
	}
	if len(c.resources) > 0 {
		rec.Details["resources"] = truncUTF8(strings.ToValidUTF8(strings.Join(c.resources, ","), "?"), 256)
	}
	if e != nil {
		rec.Result = audit.ResultError
		rec.ReasonCode = auditCode[e.Type]
		if rec.ReasonCode == "" {
			rec.ReasonCode = "Internal"
		}
		rec.Details["aws_error"] = e.Type
		if reason := kms.ReasonCode(e.Cause); reason != "" {
			rec.Details["reason"] = reason
		} else if e.Reason != "" {
			rec.Details["reason"] = e.Reason
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), h.o.AuditTimeout)
	defer cancel()
	return h.o.Audit.Append(ctx, rec)
}

func (h *Handler) writeJSON(w http.ResponseWriter, reqID string, v any, op string) {
	if v == nil {
		v = struct{}{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		h.writeError(w, reqID, &Error{Type: ExcInternal, Message: "internal error", Cause: err}, op)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	hsm.Zero(b) // may hold base64 plaintext
}

func (h *Handler) writeError(w http.ResponseWriter, reqID string, e *Error, op string) {
	status := e.Status()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	if h.log.Enabled(context.Background(), level) {
		attrs := []any{"request_id", reqID, "operation", op, "status", status, "error", e.Type}
		if e.Cause != nil && status >= 500 {
			attrs = append(attrs, "cause", e.Cause.Error())
		}
		h.log.Log(context.Background(), level, "aws request failed", attrs...)
	}
	b, _ := json.Marshal(errorBody{Type: e.Type, Message: e.Message})
	w.Header().Set(HeaderErrorType, e.Type)
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeBody parses body as one JSON object into v. Malformed JSON, wrong
// types and trailing data are SerializationException; unknown fields are
// ValidationException. An empty body is {}.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return validationErr("%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return awsErr(ExcSerialization, "%s", kmsapi.JSONErrorMessage(err, "malformed request body"))
	}
	if _, err := dec.Token(); err != io.EOF {
		return awsErr(ExcSerialization, "trailing data after the JSON object")
	}
	return nil
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
