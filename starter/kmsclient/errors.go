package kmsclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"net/http"
	"time"
)

// Error codes of the kmsd HTTP API (defined once, in starter/kmsapi).
const (
	CodeValidation        = kmsapi.CodeValidation
	CodeInvalidCiphertext = kmsapi.CodeInvalidCiphertext
	CodeUnauthenticated   = kmsapi.CodeUnauthenticated
	CodeAccessDenied      = kmsapi.CodeAccessDenied
	CodeNotFound          = kmsapi.CodeNotFound
	CodeAlreadyExists     = kmsapi.CodeAlreadyExists
	CodeInvalidKeyState   = kmsapi.CodeInvalidKeyState
	CodePayloadTooLarge   = kmsapi.CodePayloadTooLarge
	CodeTooManyRequests   = kmsapi.CodeTooManyRequests
	CodeInternal          = kmsapi.CodeInternal
	CodeHSMUnavailable    = kmsapi.CodeHSMUnavailable
	CodeJobRunning        = kmsapi.CodeJobRunning
)

// Sentinel errors. An *APIError matches (errors.Is) the sentinel of its
// code; the client-side ones are returned wrapped.
var (
	ErrValidation        = errors.New("kmsclient: validation error")
	ErrInvalidCiphertext = errors.New("kmsclient: invalid ciphertext")
	ErrUnauthenticated   = errors.New("kmsclient: unauthenticated")
	ErrAccessDenied      = errors.New("kmsclient: access denied")
	ErrNotFound          = errors.New("kmsclient: not found")
	ErrAlreadyExists     = errors.New("kmsclient: already exists")
	ErrInvalidKeyState   = errors.New("kmsclient: invalid key state")
	ErrPayloadTooLarge   = errors.New("kmsclient: payload too large")
	ErrTooManyRequests   = errors.New("kmsclient: too many requests")
	ErrInternal          = errors.New("kmsclient: internal server error")
	ErrHSMUnavailable    = errors.New("kmsclient: HSM unavailable")
	// ErrJobRunning: RunJob found the job running (409 JobRunning).
	ErrJobRunning = errors.New("kmsclient: job is running")

	// ErrInvalidConfig is returned by New for a bad Config.
	ErrInvalidConfig = errors.New("kmsclient: invalid config")
	// ErrInvalidArgument is returned before any request is sent when an
	// argument cannot be valid (for example too many batch items).
	ErrInvalidArgument = errors.New("kmsclient: invalid argument")
	// ErrMalformedResponse means a 2xx answer could not be decoded.
	ErrMalformedResponse = errors.New("kmsclient: malformed response")
)

var codeSentinels = map[string]error{
	CodeValidation:        ErrValidation,
	CodeInvalidCiphertext: ErrInvalidCiphertext,
	CodeUnauthenticated:   ErrUnauthenticated,
	CodeAccessDenied:      ErrAccessDenied,
	CodeNotFound:          ErrNotFound,
	CodeAlreadyExists:     ErrAlreadyExists,
	CodeInvalidKeyState:   ErrInvalidKeyState,
	CodePayloadTooLarge:   ErrPayloadTooLarge,
	CodeTooManyRequests:   ErrTooManyRequests,
	CodeInternal:          ErrInternal,
	CodeHSMUnavailable:    ErrHSMUnavailable,
	CodeJobRunning:        ErrJobRunning,
}

// statusCodes maps an answer without an error body (a proxy's, say) to a
// code when the status alone is unambiguous.
var statusCodes = map[int]string{
	http.StatusUnauthorized:          CodeUnauthenticated,
	http.StatusForbidden:             CodeAccessDenied,
	http.StatusNotFound:              CodeNotFound,
	http.StatusRequestEntityTooLarge: CodePayloadTooLarge,
	http.StatusTooManyRequests:       CodeTooManyRequests,
	http.StatusInternalServerError:   CodeInternal,
	http.StatusServiceUnavailable:    CodeHSMUnavailable,
}

// codeStatus is the status of each code, for per-item batch errors that
// carry no status of their own (0 for an unknown code).
func codeStatus(code string) int {
	st, _ := kmsapi.CodeStatus(code)
	return st
}

// APIError is a non-2xx answer from kmsd, or a per-item error of
// DecryptBatch (whose StatusCode is derived from the code).
type APIError struct {
	StatusCode int    // HTTP status
	Code       string // machine code, e.g. "NotFound"; "" if the body had none
	Message    string // server's text
	RequestID  string // X-Request-Id, for support

	retryAfter time.Duration // from Retry-After on 429/503
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("kmsclient: %d %s", e.StatusCode, code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// Is reports whether target is the sentinel of e's code (or, for an answer
// without a code, of its status).
func (e *APIError) Is(target error) bool {
	code := e.Code
	if code == "" {
		code = statusCodes[e.StatusCode]
	}
	s, ok := codeSentinels[code]
	return ok && s == target
}

// retryable: 429 and 5xx, except that a decryption failure is never
// retried whatever its status.
func (e *APIError) retryable() bool {
	if e.Code == CodeInvalidCiphertext {
		return false
	}
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// transportError is a failed attempt that never got an HTTP answer: a
// network error or the per-attempt timeout.
type transportError struct{ err error }

func (e *transportError) Error() string { return "kmsclient: transport: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// IsRetryable reports whether err is a transient fault worth retrying: a
// network error or per-attempt timeout, 429, or 5xx. It is false for every
// other 4xx (InvalidCiphertext in particular), for a cancelled or expired
// caller context and for client-side errors. The client already retried
// such faults up to Config.MaxRetries times before returning them.
func IsRetryable(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.retryable()
	}
	return false
}

// maxMessageLen bounds how much server text ends up in an error.
const maxMessageLen = 512

// decodeAPIError turns a non-2xx answer into an *APIError. It never fails:
// a body that is not the documented shape yields an error with the status
// only.
func decodeAPIError(status int, requestID string, body []byte) *APIError {
	e := &APIError{StatusCode: status, RequestID: requestID}
	var b kmsapi.ErrorResponse
	if json.Unmarshal(body, &b) == nil {
		e.Code = truncate(b.Error.Code, 64)
		e.Message = truncate(b.Error.Message, maxMessageLen)
		if b.Error.RequestID != "" {
			e.RequestID = truncate(b.Error.RequestID, 128)
		}
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
