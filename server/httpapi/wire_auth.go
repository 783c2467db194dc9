package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/auth"
	"gorm.io/gorm"
)

// AuthAdapter adapts *auth.Service to Authenticator and AccessKeyService.
type AuthAdapter struct{ S *auth.Service }

var (
	_ Authenticator    = AuthAdapter{}
	_ AccessKeyService = AuthAdapter{}
)

// Authenticate implements Authenticator.
func (a AuthAdapter) Authenticate(r *http.Request, body []byte) (Principal, error) {
	p, err := a.S.Authenticate(r, body)
	if err != nil {
		return Principal{}, authErr(err)
	}
	return Principal{AccessKeyID: p.AccessKeyID, Allowed: p.Policy.Allowed}, nil
}

func authErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrUnauthenticated):
		return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	case errors.Is(err, auth.ErrNotFound):
		return fmt.Errorf("%w: access key", ErrNotFound)
	case errors.Is(err, auth.ErrInvalidPolicy), errors.Is(err, auth.ErrInvalidArgument):
		return fmt.Errorf("%w: %s", ErrValidation, strings.TrimPrefix(err.Error(), "auth: "))
	default:
		return err
	}
}

func toAccessKey(k auth.AccessKey, secret string) (AccessKey, error) {
	pol, err := json.Marshal(k.Policy)
	if err != nil {
		return AccessKey{}, err
	}
	return AccessKey{AccessKeyID: k.ID, SecretAccessKey: secret, Description: k.Description,
		Status: string(k.Status), Policy: pol, CreationDate: k.CreationDate}, nil
}

func parsePolicy(raw json.RawMessage) (auth.Policy, error) {
	p, err := auth.ParsePolicy(raw)
	if err != nil {
		return auth.Policy{}, authErr(err)
	}
	return p, nil
}

// CreateAccessKey implements AccessKeyService.
func (a AuthAdapter) CreateAccessKey(ctx context.Context, description string, policy json.RawMessage) (AccessKey, error) {
	p, err := parsePolicy(policy)
	if err != nil {
		return AccessKey{}, err
	}
	k, secret, err := a.S.CreateAccessKey(ctx, description, p)
	if err != nil {
		return AccessKey{}, authErr(err)
	}
	return toAccessKey(k, secret)
}

// ListAccessKeys implements AccessKeyService.
func (a AuthAdapter) ListAccessKeys(ctx context.Context) ([]AccessKey, error) {
	ks, err := a.S.ListAccessKeys(ctx)
	if err != nil {
		return nil, authErr(err)
	}
	out := make([]AccessKey, 0, len(ks))
	for _, k := range ks {
		ak, err := toAccessKey(k, "")
		if err != nil {
			return nil, err
		}
		out = append(out, ak)
	}
	return out, nil
}

func (a AuthAdapter) one(k auth.AccessKey, err error) (AccessKey, error) {
	if err != nil {
		return AccessKey{}, authErr(err)
	}
	return toAccessKey(k, "")
}

// GetAccessKey implements AccessKeyService.
func (a AuthAdapter) GetAccessKey(ctx context.Context, id string) (AccessKey, error) {
	return a.one(a.S.GetAccessKey(ctx, id))
}

// SetAccessKeyPolicy implements AccessKeyService.
func (a AuthAdapter) SetAccessKeyPolicy(ctx context.Context, id string, policy json.RawMessage) (AccessKey, error) {
	p, err := parsePolicy(policy)
	if err != nil {
		return AccessKey{}, err
	}
	return a.one(a.S.UpdatePolicy(ctx, id, p))
}

// SetAccessKeyEnabled implements AccessKeyService.
func (a AuthAdapter) SetAccessKeyEnabled(ctx context.Context, id string, enabled bool) (AccessKey, error) {
	if enabled {
		return a.one(a.S.EnableAccessKey(ctx, id))
	}
	return a.one(a.S.DisableAccessKey(ctx, id))
}

// RotateAccessKeySecret implements AccessKeyService.
func (a AuthAdapter) RotateAccessKeySecret(ctx context.Context, id string) (AccessKey, error) {
	k, secret, err := a.S.RotateSecret(ctx, id)
	if err != nil {
		return AccessKey{}, authErr(err)
	}
	return toAccessKey(k, secret)
}

// DeleteAccessKey implements AccessKeyService.
func (a AuthAdapter) DeleteAccessKey(ctx context.Context, id string) error {
	return authErr(a.S.DeleteAccessKey(ctx, id))
}

// AuditAdapter adapts an *audit.Logger (appends) and the audit database
// (List, Verify) to AuditLog.
type AuditAdapter struct {
	Logger   *audit.Logger
	DB       *gorm.DB
	ChainKey []byte // verifies every replica's chain
	// Reason, when set, returns a finer internal reason for a failed
	// request (for example kms.ReasonCode), stored in the record's details.
	Reason func(error) string
	// Anchors, when set, holds this replica's signed chain heads; Verify
	// checks the chain against the newest of them besides the caller's.
	Anchors *audit.AnchorFile

	mu        sync.Mutex
	lastHeads []audit.Head // heads of the last intact verification (resume point)
}

var _ AuditLog = (*AuditAdapter)(nil)

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

// Append implements AuditLog.
func (a *AuditAdapter) Append(ctx context.Context, ev AuditEvent) error {
	r := audit.Record{
		Time: ev.Time, AccessKeyID: sanitize(ev.AccessKeyID, 128), Action: ev.Action, KeyID: sanitize(ev.KeyID, 191),
		KeyVersion: ev.KeyVersion, Result: audit.ResultOK, ReasonCode: ev.ErrorCode,
		RequestID: ev.RequestID, SourceAddr: sanitize(ev.SourceIP, 128),
		Details: map[string]string{
			"method": sanitize(ev.Method, 64),
			"path":   sanitize(ev.Path, 256),
			"status": strconv.Itoa(ev.Status),
		},
	}
	if len(ev.Resources) > 0 {
		r.Details["resources"] = sanitize(strings.Join(ev.Resources, ","), 256)
	}
	if ev.ErrorCode != "" {
		r.Result = audit.ResultError
		if a.Reason != nil && ev.Err != nil {
			if reason := a.Reason(ev.Err); reason != "" {
				r.Details["reason"] = reason
			}
		}
	}
	if err := a.Logger.Append(ctx, r); err != nil {
		return fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
	}
	return nil
}

// List implements AuditLog.
func (a *AuditAdapter) List(ctx context.Context, limit int, after string) ([]AuditRecord, string, error) {
	page, err := audit.List(ctx, a.DB, audit.ListOptions{Limit: limit, After: after})
	if errors.Is(err, audit.ErrInvalidCursor) {
		return nil, "", fmt.Errorf("%w: invalid after cursor", ErrValidation)
	}
	if err != nil {
		return nil, "", err
	}
	out := make([]AuditRecord, 0, len(page.Records))
	for _, r := range page.Records {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, "", err
		}
		out = append(out, b)
	}
	return out, page.Next, nil
}

// Verify implements AuditLog.
func (a *AuditAdapter) Verify(ctx context.Context, req AuditVerifyRequest) (AuditVerifyResult, error) {
	heads := make([]audit.Head, 0, len(req.Anchors))
	for _, h := range req.Anchors {
		heads = append(heads, audit.Head{ReplicaID: h.Replica, Seq: h.Seq, Hash: h.Hash})
	}
	if a.Anchors != nil {
		local, err := a.Anchors.Anchors()
		if err != nil {
			return AuditVerifyResult{}, err
		}
		heads = append(heads, audit.LatestHeads(local)...)
	}
	var from []audit.Head
	if req.Resume {
		a.mu.Lock()
		from = a.lastHeads
		a.mu.Unlock()
	}
	rep, err := audit.VerifyWith(ctx, a.DB, a.ChainKey, audit.VerifyOptions{Anchors: heads, From: from})
	if err != nil {
		return AuditVerifyResult{}, err
	}
	if rep.OK {
		a.mu.Lock()
		a.lastHeads = rep.Heads
		a.mu.Unlock()
	}
	res := AuditVerifyResult{OK: rep.OK, Checked: int64(rep.Checked), Heads: []AuditHead{}}
	for _, h := range rep.Heads {
		res.Heads = append(res.Heads, AuditHead{Replica: h.ReplicaID, Seq: h.Seq, Hash: h.Hash})
	}
	for _, h := range rep.ResumedFrom {
		res.ResumedFrom = append(res.ResumedFrom, AuditHead{Replica: h.ReplicaID, Seq: h.Seq, Hash: h.Hash})
	}
	if rep.FirstBroken != nil {
		res.FirstBroken = &AuditBroken{Replica: rep.FirstBroken.ReplicaID, Seq: rep.FirstBroken.Seq, Reason: rep.FirstBroken.Reason}
	}
	return res, nil
}
