package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// Intent-first audit of state changes.
//
// A state-changing route (every non-GET route except the crypto ones, see
// changes) writes two records in this replica's chain: before the core is
// called, an intent record (Result audit.ResultIntent: action, caller,
// request id, key, sanitized parameters); after it, the usual outcome
// record, which names the intent in Details[audit.DetailIntent]. If the
// intent cannot be made durable the request is answered 503
// AuditUnavailable and nothing is changed. If the outcome cannot be
// written after the change was made, the answer is also 503
// AuditUnavailable, the change stays, and the intent proves the attempt:
// Verify lists such intents as "outcome unknown". Clients retry: the
// changes are idempotent (enable, disable, ...) or take an idempotency
// token (CreateKey, CreateAccessKey).
//
// One transaction spanning the change and the audit insert was not chosen:
// the audit chain is appended by one writer per replica with group commit
// (many requests' records in one transaction), so a request's change
// cannot join that transaction without serializing all writes behind it.

// writeIntent appends the intent record of rc's state change. An error is
// ErrAuditUnavailable: nothing may be changed then.
func (rc *reqCtx) writeIntent(in any) error {
	s, c := rc.srv, rc.c
	rec := audit.Record{
		Time: time.Now(), AccessKeyID: rc.principal.AccessKeyID, Action: rc.action,
		Result: audit.ResultIntent, RequestID: c.GetString(ctxRequestID), SourceAddr: truncUTF8(c.ClientIP(), 128),
	}
	rec.KeyID = keyOf(rc.resources)
	details := rc.newDetails()
	if len(rc.resources) > 0 {
		details["resources"] = sanitize(strings.Join(rc.resources, ","), 256)
	}
	intentParams(in, details)
	rec.Details = details
	actx, cancel := context.WithTimeout(context.WithoutCancel(rc.ctx), s.opts.AuditTimeout)
	h, err := s.opts.Audit.AppendHead(actx, rec)
	cancel()
	if err != nil {
		s.log.Error("audit intent append failed; nothing changed", "request_id", rec.RequestID, "error", err.Error())
		return ErrAuditUnavailable
	}
	rc.intentSeq = h.Seq
	return nil
}

// keyOf returns the first key id among resources, "" if none.
func keyOf(resources []string) string {
	for _, r := range resources {
		if id, ok := strings.CutPrefix(r, "key/"); ok {
			return id
		}
	}
	return ""
}

// intentParams records the non-secret parameters of a state change.
// Free text (descriptions, tag values, policies) is recorded as a SHA-256
// digest only.
func intentParams(in any, d map[string]string) {
	set := func(k, v string) {
		if v != "" {
			d[k] = sanitize(v, 256)
		}
	}
	digest := func(k string, b []byte) {
		if len(b) > 0 {
			sum := sha256.Sum256(b)
			d[k] = hex.EncodeToString(sum[:])
		}
	}
	switch v := in.(type) {
	case *kmsapi.CreateKeyRequest:
		set("key_spec", string(v.KeySpec))
		set("protection_level", string(v.ProtectionLevel))
		set("origin", string(v.Origin))
		set("alias", v.Alias)
		set("idempotency_token", v.IdempotencyToken)
		if len(v.Tags) > 0 {
			d["tags"] = strconv.Itoa(len(v.Tags))
		}
	case *kmsapi.CreateAccessKeyRequest:
		set("idempotency_token", v.IdempotencyToken)
		digest("policy_sha256", v.Policy)
	case *kmsapi.PolicyRequest:
		digest("policy_sha256", v.Policy)
	case *kmsapi.ScheduleDeletionRequest:
		if v.PendingWindowDays != nil {
			d["pending_window_days"] = strconv.Itoa(*v.PendingWindowDays)
		}
	case *kmsapi.RotationPolicyRequest:
		if v.Enabled != nil {
			d["enabled"] = strconv.FormatBool(*v.Enabled)
		}
		if v.PeriodDays != nil {
			d["period_days"] = strconv.Itoa(*v.PeriodDays)
		}
	case *kmsapi.Alias:
		set("alias_name", v.AliasName)
		set("target_key_id", v.KeyID)
	case *kmsapi.UpdateAliasRequest:
		set("target_key_id", v.KeyID)
	case *kmsapi.UntagRequest:
		d["tag_keys"] = strconv.Itoa(len(v.TagKeys))
	case *kmsapi.Tags:
		d["tags"] = strconv.Itoa(len(v.Tags))
	}
}
