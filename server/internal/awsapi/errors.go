package awsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// AWS exception names this package returns.
const (
	ExcAccessDenied          = "AccessDeniedException"
	ExcAlreadyExists         = "AlreadyExistsException"
	ExcDependencyTimeout     = "DependencyTimeoutException"
	ExcDisabled              = "DisabledException"
	ExcDryRun                = "DryRunOperationException"
	ExcExpiredImportToken    = "ExpiredImportTokenException"
	ExcIncorrectKey          = "IncorrectKeyException"
	ExcIncorrectKeyMaterial  = "IncorrectKeyMaterialException"
	ExcInvalidAliasName      = "InvalidAliasNameException"
	ExcInvalidArn            = "InvalidArnException"
	ExcInvalidCiphertext     = "InvalidCiphertextException"
	ExcInvalidImportToken    = "InvalidImportTokenException"
	ExcInvalidKeyUsage       = "InvalidKeyUsageException"
	ExcInvalidMarker         = "InvalidMarkerException"
	ExcInvalidSignature      = "InvalidSignatureException"
	ExcInternal              = "KMSInternalException"
	ExcInvalidState          = "KMSInvalidStateException"
	ExcLimitExceeded         = "LimitExceededException"
	ExcNotFound              = "NotFoundException"
	ExcSerialization         = "SerializationException"
	ExcTag                   = "TagException"
	ExcThrottling            = "ThrottlingException"
	ExcUnknownOperation      = "UnknownOperationException"
	ExcUnsupportedOperation  = "UnsupportedOperationException"
	ExcValidation            = "ValidationException"
	ExcMissingAuthentication = "MissingAuthenticationTokenException"
)

// excStatus is the HTTP status AWS KMS uses for each exception (the
// service model's httpError traits; AWS's common errors are 400).
var excStatus = map[string]int{
	ExcAccessDenied:          http.StatusBadRequest,
	ExcAlreadyExists:         http.StatusConflict,
	ExcDependencyTimeout:     http.StatusServiceUnavailable,
	ExcDisabled:              http.StatusConflict,
	ExcDryRun:                http.StatusPreconditionFailed,
	ExcExpiredImportToken:    http.StatusBadRequest,
	ExcIncorrectKey:          http.StatusBadRequest,
	ExcIncorrectKeyMaterial:  http.StatusBadRequest,
	ExcInvalidAliasName:      http.StatusBadRequest,
	ExcInvalidArn:            http.StatusBadRequest,
	ExcInvalidCiphertext:     http.StatusBadRequest,
	ExcInvalidImportToken:    http.StatusBadRequest,
	ExcInvalidKeyUsage:       http.StatusBadRequest,
	ExcInvalidMarker:         http.StatusBadRequest,
	ExcInvalidSignature:      http.StatusBadRequest,
	ExcInternal:              http.StatusInternalServerError,
	ExcInvalidState:          http.StatusConflict,
	ExcLimitExceeded:         http.StatusBadRequest,
	ExcNotFound:              http.StatusNotFound,
	ExcSerialization:         http.StatusBadRequest,
	ExcTag:                   http.StatusBadRequest,
	ExcThrottling:            http.StatusBadRequest,
	ExcUnknownOperation:      http.StatusBadRequest,
	ExcUnsupportedOperation:  http.StatusBadRequest,
	ExcValidation:            http.StatusBadRequest,
	ExcMissingAuthentication: http.StatusForbidden,
}

// auditCode maps an exception to the /v1 API error code recorded as the
// audit record's reason code, so one audit query covers both protocols.
var auditCode = map[string]string{
	ExcAccessDenied:         "AccessDenied",
	ExcAlreadyExists:        "AlreadyExists",
	ExcDependencyTimeout:    "HSMUnavailable",
	ExcDisabled:             "InvalidKeyState",
	ExcDryRun:               "DryRun",
	ExcExpiredImportToken:   "ValidationError",
	ExcIncorrectKey:         "InvalidCiphertext",
	ExcIncorrectKeyMaterial: "ValidationError",
	ExcInvalidAliasName:     "ValidationError",
	ExcInvalidArn:           "ValidationError",
	ExcInvalidCiphertext:    "InvalidCiphertext",
	ExcInvalidImportToken:   "ValidationError",
	ExcInvalidKeyUsage:      "ValidationError",
	ExcInvalidMarker:        "ValidationError",
	ExcInternal:             "Internal",
	ExcInvalidState:         "InvalidKeyState",
	ExcLimitExceeded:        "ValidationError",
	ExcNotFound:             "NotFound",
	ExcSerialization:        "ValidationError",
	ExcTag:                  "ValidationError",
	ExcUnsupportedOperation: "ValidationError",
	ExcValidation:           "ValidationError",
}

// ErrInvalidKeyRef is returned by ParseKeyRef for a reference that is not
// a key id, alias name, key ARN or alias ARN of this deployment. It wraps an
// *Error naming the AWS exception.
var ErrInvalidKeyRef = errors.New("awsapi: invalid key reference")

// Error is an AWS protocol error: the exception name (the "__type" of the
// answer), its message, and the underlying cause for logs and audit.
type Error struct {
	Type    string
	Message string
	Cause   error
	// Reason is a finer internal reason for the audit record (for example
	// kms.ReasonMalformed); never shown to the caller.
	Reason string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }
func (e *Error) Unwrap() error { return e.Cause }

// KMSCode is the /v1 error code the exception stands for (httpapi.CodedError):
// the audit record's reason code, so one audit query covers both protocols.
func (e *Error) KMSCode() string {
	if c, ok := auditCode[e.Type]; ok {
		return c
	}
	return "Internal"
}

// Status returns the HTTP status of the exception.
func (e *Error) Status() int {
	if s, ok := excStatus[e.Type]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func awsErr(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

func validationErr(format string, args ...any) *Error {
	return awsErr(ExcValidation, format, args...)
}

func unsupported(format string, args ...any) *Error {
	return awsErr(ExcUnsupportedOperation, format, args...)
}

// toAWS maps any error to an *Error. Core errors keep their (safe) message;
// server faults get a fixed one.
func toAWS(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	msg := func() string { return trimPrefix(err.Error()) }
	switch {
	case errors.Is(err, kms.ErrInvalidCiphertext):
		return &Error{Type: ExcInvalidCiphertext, Message: "the ciphertext could not be decrypted", Cause: err}
	case errors.Is(err, kms.ErrNotFound):
		return &Error{Type: ExcNotFound, Message: msg(), Cause: err}
	case errors.Is(err, kms.ErrAlreadyExists):
		return &Error{Type: ExcAlreadyExists, Message: msg(), Cause: err}
	case errors.Is(err, kms.ErrKeyVersionDisabled):
		// A retired key version refuses decryption like a disabled key.
		return &Error{Type: ExcDisabled, Message: msg(), Cause: err, Reason: "KeyVersionDisabled"}
	case errors.Is(err, kms.ErrVersionInUse):
		return &Error{Type: ExcInvalidState, Message: msg(), Cause: err}
	case errors.Is(err, kms.ErrInvalidKeyState):
		return &Error{Type: ExcInvalidState, Message: msg(), Cause: err}
	case errors.Is(err, kms.ErrValidation):
		return &Error{Type: ExcValidation, Message: msg(), Cause: err}
	case errors.Is(err, hsm.ErrUnavailable):
		return &Error{Type: ExcDependencyTimeout, Message: "the HSM is unavailable, retry later", Cause: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Type: ExcDependencyTimeout, Message: "the request timed out", Cause: err}
	default:
		return &Error{Type: ExcInternal, Message: "internal error", Cause: err}
	}
}

func trimPrefix(s string) string {
	const p = "kms: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
