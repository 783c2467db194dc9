package awsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/internal/httpapi"
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
	// HeaderRequestID is AWS's request id header; the value is the
	// router's X-Request-Id.
	HeaderRequestID = "X-Amzn-Requestid"
	// HeaderErrorType repeats an error answer's __type, as AWS does.
	HeaderErrorType = "X-Amzn-Errortype"
)

// Options wires a Handler. KMS and Region are required.
type Options struct {
	KMS *kms.Service
	// Region is the ARN region: the region clients sign for (auth's).
	// AccountID is the 12-digit account id of ARNs (DefaultAccountID when
	// empty).
	Region    string
	AccountID string
	// Logger receives the cause of each server fault (the request itself
	// is logged by the router). Nil discards.
	Logger *slog.Logger
	// Registry receives the kms_aws_* metrics. Nil: no metrics.
	Registry prometheus.Registerer
	// MetadataTTL bounds how long a resolved key reference (id, aliases,
	// state) is reused for authorization (default kms.DefaultMetadataTTL,
	// the bound the core applies to key state; negative disables).
	MetadataTTL time.Duration
}

// Handler serves the AWS KMS JSON protocol as a route of kmsd's router
// (Route), which authenticates, limits and audits its requests.
type Handler struct {
	o       Options
	arns    ARNs
	log     *slog.Logger
	ops     map[string]operation
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
	if o.KMS == nil || o.Region == "" {
		return nil, errors.New("awsapi: KMS and Region are required")
	}
	if o.AccountID == "" {
		o.AccountID = DefaultAccountID
	}
	if !ValidAccountID(o.AccountID) {
		return nil, fmt.Errorf("awsapi: account id %q is not 12 digits", o.AccountID)
	}
	if o.MetadataTTL == 0 {
		o.MetadataTTL = kms.DefaultMetadataTTL
	}
	h := &Handler{o: o, arns: ARNs{Region: o.Region, Account: o.AccountID}, log: o.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
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

// Route is the protocol's route for httpapi.Options.Extra: POST /,
// dispatched on X-Amz-Target. The router checks the protocol headers
// (Check) before it takes an in-flight slot (beyond the limit:
// ThrottlingException), reads the body under its limit, authenticates the
// SigV4 signature and, after Serve, appends the audit record (fail closed);
// every answer is counted in the kms_aws_* metrics.
func (h *Handler) Route() httpapi.Route {
	return httpapi.Route{
		Method:      http.MethodPost,
		Path:        "/",
		Summary:     "AWS KMS JSON protocol (X-Amz-Target: " + TargetPrefix + "<Operation>, Content-Type: " + ContentType + "); see server/internal/awsapi.",
		OperationID: "aws_kms",
		ContentType: ContentType,
		Details:     map[string]string{"protocol": "aws-json-1.1"},
		Check:       h.check,
		Serve:       h.Serve,
		EncodeError: h.EncodeError,
		Observe:     h.observeAnswer,
	}
}

// call is one request in flight.
type call struct {
	ctx        context.Context
	h          *Handler
	x          *httpapi.Call
	body       []byte
	op         string
	action     string
	resources  []string
	keyVersion int
	cleanup    []func()
}

func (c *call) onDone(f func()) { c.cleanup = append(c.cleanup, f) }

// check refuses a request that is not of the protocol before it is
// authenticated (not audited).
func (h *Handler) check(r *http.Request) error {
	if _, e := parseTarget(r); e != nil {
		return e
	}
	return nil
}

// Serve answers one authenticated AWS KMS request (the Route's Serve). An
// error is an *Error.
func (h *Handler) Serve(x *httpapi.Call) (httpapi.Reply, error) {
	// Check accepted X-Amz-Target and Content-Type.
	op := strings.TrimPrefix(x.Request().Header.Get("X-Amz-Target"), TargetPrefix)
	x.SetDetail("operation", op)
	c := &call{ctx: x.Context(), h: h, x: x, body: x.Body(), op: op}
	defer func() {
		x.AddResources(c.resources...)
		x.SetKeyVersion(c.keyVersion)
		for _, f := range c.cleanup {
			x.OnDone(f)
		}
	}()
	var (
		resp any
		err  error
	)
	if o, ok := h.ops[op]; ok {
		c.action = o.action
		x.SetAction(c.action)
		if mutatingOps[op] {
			// Intent first: no state change without a durable record.
			if ierr := x.WriteIntent(); ierr != nil {
				err = &Error{Type: ExcDependencyTimeout, Message: "the audit log is unavailable, retry later", Reason: "audit_unavailable", Cause: ierr}
			}
		}
		if err == nil {
			resp, err = o.run(c)
		}
	} else {
		c.action = "kms:" + op
		x.SetAction(c.action)
		err = unsupported("%s is not supported by kmsd", op)
	}
	if err != nil {
		return httpapi.Reply{}, h.failed(x, err)
	}
	if resp == nil {
		resp = struct{}{}
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return httpapi.Reply{}, h.failed(x, &Error{Type: ExcInternal, Message: "internal error", Cause: err})
	}
	x.OnDone(func() { hsm.Zero(b) }) // may hold base64 plaintext
	return httpapi.Reply{ContentType: ContentType, Body: b, Header: http.Header{HeaderRequestID: {x.RequestID()}}}, nil
}

// failed records an error's exception (and finer reason) in the audit
// details and returns it as an *Error.
func (h *Handler) failed(x *httpapi.Call, err error) *Error {
	e := toAWS(err)
	x.SetDetail("aws_error", e.Type)
	if kms.ReasonCode(e.Cause) == "" && e.Reason != "" {
		x.SetDetail("reason", e.Reason)
	}
	if e.Status() >= 500 && e.Cause != nil {
		h.log.Error("aws request failed", "request_id", x.RequestID(), "error", e.Type, "cause", e.Cause.Error())
	}
	return e
}

// EncodeError renders an error answer (the Route's EncodeError): an *Error
// as it is, and a refusal of the router in the exception AWS would answer.
func (h *Handler) EncodeError(f httpapi.Failure) httpapi.Reply {
	var e *Error
	if !errors.As(f.Err, &e) {
		e = routerError(f)
	}
	b, _ := json.Marshal(errorBody{Type: e.Type, Message: e.Message})
	return httpapi.Reply{Status: e.Status(), ContentType: ContentType, Body: b,
		Header: http.Header{HeaderErrorType: {e.Type}, HeaderRequestID: {f.RequestID}}}
}

// routerError maps a refusal of the router (see httpapi.Failure) to its
// exception.
func routerError(f httpapi.Failure) *Error {
	switch {
	case errors.Is(f.Err, httpapi.ErrAuditUnavailable):
		if f.Code == kmsapi.CodeHSMUnavailable {
			return &Error{Type: ExcDependencyTimeout, Message: "the audit log is unavailable, retry later", Cause: f.Err}
		}
		return &Error{Type: ExcInternal, Message: "the audit log is unavailable", Cause: f.Err}
	case f.Code == kmsapi.CodeTooManyRequests:
		return awsErr(ExcThrottling, "too many requests in flight, retry later")
	case f.Code == kmsapi.CodePayloadTooLarge:
		return validationErr("request body too large")
	case f.Code == kmsapi.CodeValidation: // the body could not be read
		return &Error{Type: ExcSerialization, Message: "could not read the request body", Cause: f.Err}
	case f.Code == kmsapi.CodeUnauthenticated && f.Request.Header.Get("Authorization") == "":
		return &Error{Type: ExcMissingAuthentication, Message: "missing SigV4 Authorization header", Cause: f.Err}
	case f.Code == kmsapi.CodeUnauthenticated:
		return &Error{Type: ExcInvalidSignature, Message: "the request signature could not be verified", Cause: f.Err}
	case f.Code == kmsapi.CodeHSMUnavailable:
		return &Error{Type: ExcDependencyTimeout, Message: "the HSM is unavailable, retry later", Cause: f.Err}
	default:
		return &Error{Type: ExcInternal, Message: "internal error", Cause: f.Err}
	}
}

// observeAnswer counts one answer in the kms_aws_* metrics (the Route's
// Observe).
func (h *Handler) observeAnswer(r *http.Request, status int, header http.Header, d time.Duration) {
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	h.observe(op, status, header.Get(HeaderErrorType), d)
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
