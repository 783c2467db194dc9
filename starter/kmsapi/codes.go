package kmsapi

import "net/http"

// Error codes of the API: the "code" of every error answer.
const (
	CodeValidation        = "ValidationError"
	CodeInvalidCiphertext = "InvalidCiphertext"
	CodeUnauthenticated   = "Unauthenticated"
	CodeAccessDenied      = "AccessDenied"
	CodeNotFound          = "NotFound"
	CodeAlreadyExists     = "AlreadyExists"
	CodeInvalidKeyState   = "InvalidKeyState"
	CodePayloadTooLarge   = "PayloadTooLarge"
	CodeTooManyRequests   = "TooManyRequests"
	CodeInternal          = "Internal"
	CodeHSMUnavailable    = "HSMUnavailable"
	// CodeAuditUnavailable: the audit record could not be written, so the
	// request was not served (fail closed); retry later.
	CodeAuditUnavailable = "AuditUnavailable"
	// CodeUnsupportedMediaType: a JSON route got a body that is not
	// Content-Type: application/json.
	CodeUnsupportedMediaType = "UnsupportedMediaType"
	// CodeJobRunning: POST /v1/jobs/:name/run found the job running (on
	// this replica or holding its lease on another); retry when it ended.
	CodeJobRunning = "JobRunning"
)

// Codes lists every error code.
var Codes = []string{
	CodeValidation, CodeInvalidCiphertext, CodeUnauthenticated, CodeAccessDenied, CodeNotFound,
	CodeAlreadyExists, CodeInvalidKeyState, CodePayloadTooLarge, CodeTooManyRequests, CodeInternal,
	CodeHSMUnavailable, CodeAuditUnavailable, CodeUnsupportedMediaType, CodeJobRunning,
}

// CodeStatus returns the HTTP status of an error code, and false for an
// unknown code.
func CodeStatus(code string) (int, bool) {
	switch code {
	case CodeValidation, CodeInvalidCiphertext:
		return http.StatusBadRequest, true
	case CodeUnauthenticated:
		return http.StatusUnauthorized, true
	case CodeAccessDenied:
		return http.StatusForbidden, true
	case CodeNotFound:
		return http.StatusNotFound, true
	case CodeAlreadyExists, CodeInvalidKeyState, CodeJobRunning:
		return http.StatusConflict, true
	case CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge, true
	case CodeTooManyRequests:
		return http.StatusTooManyRequests, true
	case CodeInternal:
		return http.StatusInternalServerError, true
	case CodeHSMUnavailable, CodeAuditUnavailable:
		return http.StatusServiceUnavailable, true
	case CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType, true
	}
	return 0, false
}

// ErrorResponse is the one error shape of the API.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Error is the body of an error answer, or a per-item error of a batch.
type Error struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// HeaderRequestID carries the request id on every response.
const HeaderRequestID = "X-Request-Id"
