package httpapi

import (
	"errors"
	"net/http"
)

// Sentinel errors understood by the error mapper. Ports return errors that
// match one of these (errors.Is) or hsm.ErrUnavailable; anything else is a
// server fault (500).
var (
	ErrValidation        = errors.New("validation error")
	ErrInvalidCiphertext = errors.New("invalid ciphertext")
	ErrUnauthenticated   = errors.New("unauthenticated")
	ErrAccessDenied      = errors.New("access denied")
	ErrNotFound          = errors.New("not found")
	ErrAlreadyExists     = errors.New("already exists")
	ErrInvalidKeyState   = errors.New("invalid key state")
	ErrPayloadTooLarge   = errors.New("payload too large")
	ErrTooManyRequests   = errors.New("too many requests")
	ErrAuditUnavailable  = errors.New("audit log unavailable")
)

// Error codes of the API (see API.md).
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
	CodeAuditUnavailable  = "AuditUnavailable"
)

// codeStatus maps every code to its HTTP status.
var codeStatus = map[string]int{
	CodeValidation:        http.StatusBadRequest,
	CodeInvalidCiphertext: http.StatusBadRequest,
	CodeUnauthenticated:   http.StatusUnauthorized,
	CodeAccessDenied:      http.StatusForbidden,
	CodeNotFound:          http.StatusNotFound,
	CodeAlreadyExists:     http.StatusConflict,
	CodeInvalidKeyState:   http.StatusConflict,
	CodePayloadTooLarge:   http.StatusRequestEntityTooLarge,
	CodeTooManyRequests:   http.StatusTooManyRequests,
	CodeInternal:          http.StatusInternalServerError,
	CodeHSMUnavailable:    http.StatusServiceUnavailable,
	CodeAuditUnavailable:  http.StatusServiceUnavailable,
}
