package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/internal/auth"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// Sentinel errors of the transport itself. Everything else is classified
// from the core's errors (server/internal/kms, server/internal/auth, server/audit); the error
// codes are kmsapi's.
var (
	ErrValidation       = errors.New("validation error")
	ErrAccessDenied     = errors.New("access denied")
	ErrNotFound         = errors.New("not found")
	ErrPayloadTooLarge  = errors.New("payload too large")
	ErrTooManyRequests  = errors.New("too many requests")
	ErrAuditUnavailable = errors.New("audit log unavailable")
	// ErrJobRunning: a job run was asked for while the job runs (here, or
	// on another replica holding its lease).
	ErrJobRunning = errors.New("job is running")
)

func validationf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrValidation}, args...)...)
}

// classify maps an error to its API code and the message shown to callers.
// Server faults get a fixed message; the details go to the log only.
func classify(err error) (code, msg string) {
	var ce CodedError
	if errors.As(err, &ce) {
		return ce.KMSCode(), message(err)
	}
	switch {
	case errors.Is(err, kms.ErrInvalidCiphertext):
		return kmsapi.CodeInvalidCiphertext, "the ciphertext could not be decrypted"
	case errors.Is(err, auth.ErrUnauthenticated):
		return kmsapi.CodeUnauthenticated, "the request signature could not be verified"
	case errors.Is(err, ErrAccessDenied):
		return kmsapi.CodeAccessDenied, "not allowed by policy"
	case errors.Is(err, ErrPayloadTooLarge):
		return kmsapi.CodePayloadTooLarge, "request body too large"
	case errors.Is(err, ErrValidation), errors.Is(err, kms.ErrValidation),
		errors.Is(err, auth.ErrInvalidPolicy), errors.Is(err, auth.ErrInvalidArgument):
		return kmsapi.CodeValidation, message(err)
	case errors.Is(err, audit.ErrInvalidCursor):
		return kmsapi.CodeValidation, "invalid after cursor"
	case errors.Is(err, ErrJobRunning):
		return kmsapi.CodeJobRunning, "the job is running (on this or another replica); retry when it has finished"
	case errors.Is(err, ErrNotFound), errors.Is(err, kms.ErrNotFound):
		return kmsapi.CodeNotFound, message(err)
	case errors.Is(err, auth.ErrNotFound):
		return kmsapi.CodeNotFound, "access key not found"
	case errors.Is(err, kms.ErrIdempotencyMismatch), errors.Is(err, auth.ErrIdempotencyMismatch):
		return kmsapi.CodeIdempotencyMismatch, "the idempotency token was used before with other parameters"
	case errors.Is(err, kms.ErrAlreadyExists):
		return kmsapi.CodeAlreadyExists, message(err)
	case errors.Is(err, kms.ErrKeyVersionDisabled):
		return kmsapi.CodeKeyVersionDisabled, message(err)
	case errors.Is(err, kms.ErrVersionInUse):
		return kmsapi.CodeVersionInUse, message(err)
	case errors.Is(err, kms.ErrInvalidKeyState):
		return kmsapi.CodeInvalidKeyState, message(err)
	case errors.Is(err, ErrTooManyRequests):
		return kmsapi.CodeTooManyRequests, "rate limited"
	case errors.Is(err, kms.ErrUnavailable):
		return kmsapi.CodeHSMUnavailable, "the HSM is unavailable, retry later"
	case errors.Is(err, ErrAuditUnavailable):
		return kmsapi.CodeAuditUnavailable, "the audit log is unavailable, retry later"
	case errors.Is(err, ErrUnsupportedMediaType):
		return kmsapi.CodeUnsupportedMediaType, "a JSON body needs Content-Type: application/json"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kmsapi.CodeHSMUnavailable, "the request timed out"
	default:
		return kmsapi.CodeInternal, "internal error"
	}
}

// message is an error's text without the package prefixes of the core.
func message(err error) string {
	m := err.Error()
	for _, p := range []string{"kms: ", "auth: "} {
		m = strings.ReplaceAll(m, p, "")
	}
	return m
}
