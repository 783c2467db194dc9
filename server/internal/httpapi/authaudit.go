package httpapi

import (
	"context"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kmsgo/kmsgo/server/audit"
)

// Authentication failures are audited, at most authAuditRate a second on
// average (bursts of authAuditBurst) per Server, so that a flood of bad
// signatures cannot flood the audit log; the count of failures not
// recorded individually is carried in the next record's "suppressed"
// detail.
const (
	authAuditRate  = 10
	authAuditBurst = 20
	// ActionAuthenticate is the audit action of a failed authentication.
	ActionAuthenticate = "kms:Authenticate"
)

type authAuditLimiter struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int64
}

// allow takes a token; it returns false (and counts the failure as
// suppressed) when none is left, else the number suppressed since the last
// record.
func (l *authAuditLimiter) allow(now time.Time) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = authAuditBurst
	} else {
		l.tokens = min(authAuditBurst, l.tokens+now.Sub(l.last).Seconds()*authAuditRate)
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

var credentialRE = regexp.MustCompile(`Credential=([^/,\s]{1,128})/`)

// auditAuthFailure records a failed authentication (rate-limited) on a
// route (x: an Extra route, or nil) answered with status. The claimed
// access key id comes from the Authorization header, sanitized; a failure
// to write the record is logged, the answer stays.
func (s *Server) auditAuthFailure(c *gin.Context, x *Route, code string, status int) {
	ok, suppressed := s.authLim.allow(time.Now())
	if !ok {
		return
	}
	ak := ""
	if m := credentialRE.FindStringSubmatch(c.GetHeader("Authorization")); m != nil {
		ak = m[1]
	}
	details := newDetails(c, x, nil)
	details["status"] = strconv.Itoa(status)
	rec := audit.Record{
		Time: time.Now(), RequestID: c.GetString(ctxRequestID), AccessKeyID: sanitize(ak, 64),
		Action: ActionAuthenticate, Result: audit.ResultError, ReasonCode: code,
		SourceAddr: truncUTF8(c.ClientIP(), 128), Details: details,
	}
	if suppressed > 0 {
		rec.Details["suppressed"] = strconv.FormatInt(suppressed, 10)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), s.opts.AuditTimeout)
	defer cancel()
	if aerr := s.opts.Audit.Append(ctx, rec); aerr != nil {
		s.log.Error("audit of a failed authentication not written", "request_id", rec.RequestID, "error", aerr.Error())
	}
}
