package awsapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// describe returns the metadata of ref (key id or alias name), served from
// a cache for MetadataTTL. It is used to authorize (key id and aliases are
// the policy resources) and to pick exceptions; operations read the core
// for anything they return. A destroyed key is NotFound, as a deleted key
// is in AWS.
func (h *Handler) describe(ctx context.Context, ref string) (*kms.KeyMetadata, error) {
	ttl := h.o.MetadataTTL
	if ttl > 0 {
		h.mu.Lock()
		e, ok := h.cache[ref]
		gen := h.gen
		h.mu.Unlock()
		if ok && time.Since(e.loaded) < ttl {
			return e.md, nil
		}
		loaded := time.Now()
		md, err := h.describeFresh(ctx, ref)
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		if h.gen == gen {
			if h.cache == nil || len(h.cache) > 10000 {
				h.cache = map[string]cachedKey{}
			}
			h.cache[ref] = cachedKey{md: md, loaded: loaded}
		}
		h.mu.Unlock()
		return md, nil
	}
	return h.describeFresh(ctx, ref)
}

func (h *Handler) describeFresh(ctx context.Context, ref string) (*kms.KeyMetadata, error) {
	md, err := h.o.KMS.DescribeKey(ctx, ref)
	if err != nil {
		return nil, err
	}
	if md.KeyState == kms.KeyStateDestroyed {
		return nil, fmt.Errorf("%w: key %s", kms.ErrNotFound, md.KeyID)
	}
	return md, nil
}

// changed drops cached references after a change made through this handler.
func (h *Handler) changed() {
	h.mu.Lock()
	h.cache = nil
	h.gen++
	h.mu.Unlock()
}

// notFound turns the core's not-found answer for a reference into AWS's
// message, naming the reference the caller gave.
func notFound(given string, err error) error {
	if errors.Is(err, kms.ErrNotFound) {
		return &Error{Type: ExcNotFound, Message: fmt.Sprintf("%s is not found", quote(given)), Cause: err}
	}
	return err
}

// resources returns the policy resources of a key: key/<id> and its aliases.
func resources(md *kms.KeyMetadata) []string {
	out := make([]string, 0, 1+len(md.Aliases))
	out = append(out, "key/"+md.KeyID)
	return append(out, md.Aliases...)
}

// authorize checks the caller's policy for action on any of resources and
// remembers them for the audit record. Actions not about one key pass no
// resources; then only statements with resource "*" apply.
func (c *call) authorize(action string, res ...string) error {
	c.resources = appendUnique(c.resources, res...)
	if !c.x.Allowed(action, res...) {
		target := "*"
		if len(res) > 0 {
			target = c.h.resourceARN(res[0])
		}
		return &Error{Type: ExcAccessDenied, Message: fmt.Sprintf("access key %s is not authorized to perform %s on resource %s",
			c.x.AccessKeyID(), action, target)}
	}
	return nil
}

func (h *Handler) resourceARN(res string) string {
	if id, ok := cutPrefix(res, "key/"); ok {
		return h.arns.Key(id)
	}
	return h.arns.Alias(res)
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// key parses a KeyId parameter, resolves it and authorizes action on the
// key. allowAlias says whether the operation accepts aliases.
func (c *call) key(given string, allowAlias bool, action string) (*kms.KeyMetadata, error) {
	ref, err := c.h.arns.ParseKeyRef(given, allowAlias)
	if err != nil {
		return nil, err
	}
	if ref.KeyID != "" {
		c.resources = appendUnique(c.resources, "key/"+ref.KeyID)
	}
	md, err := c.h.describe(c.ctx, ref.String())
	if err != nil {
		return nil, notFound(given, err)
	}
	return md, c.authorize(action, resources(md)...)
}

// coreOp names the core operation (its key-state table row) behind each
// AWS operation that the table governs.
var coreOp = map[string]kms.Operation{
	"UpdateKeyDescription": kms.OpUpdateKey, "EnableKey": kms.OpEnableKey, "DisableKey": kms.OpDisableKey,
	"ScheduleKeyDeletion": kms.OpScheduleKeyDeletion, "CancelKeyDeletion": kms.OpCancelKeyDeletion,
	"EnableKeyRotation": kms.OpSetRotationPolicy, "DisableKeyRotation": kms.OpSetRotationPolicy,
	"RotateKeyOnDemand": kms.OpRotateKey, "CreateAlias": kms.OpCreateAlias, "UpdateAlias": kms.OpCreateAlias,
	"TagResource": kms.OpTagKey, "UntagResource": kms.OpTagKey,
	"GetParametersForImport": kms.OpGetParametersForImport, "ImportKeyMaterial": kms.OpImportKeyMaterial,
	"Encrypt": kms.OpEncrypt, "Decrypt": kms.OpDecrypt, "ReEncrypt": kms.OpReEncrypt,
	"GenerateDataKey": kms.OpGenerateDataKey, "GenerateDataKeyWithoutPlaintext": kms.OpGenerateDataKeyWithoutPlaintext,
}

// stateError refines the core's invalid-state answer as AWS does: a
// Disabled key gives DisabledException when the operation needs an Enabled
// key, otherwise KMSInvalidStateException, naming the key. keyIDs are the keys the
// operation used; their current state is read fresh.
func (c *call) stateError(err error, keyIDs ...string) error {
	if !errors.Is(err, kms.ErrInvalidKeyState) {
		return err
	}
	for _, id := range keyIDs {
		md, derr := c.h.o.KMS.DescribeKey(c.ctx, id)
		if derr != nil {
			continue
		}
		arn := c.h.arns.Key(id)
		switch md.KeyState {
		case kms.KeyStateEnabled:
			continue
		case kms.KeyStateDisabled:
			if op, ok := coreOp[c.op]; ok && kms.Allowed(op, kms.KeyStateEnabled) {
				return &Error{Type: ExcDisabled, Message: arn + " is disabled.", Cause: err}
			}
			return &Error{Type: ExcInvalidState, Message: arn + " is disabled.", Cause: err}
		case kms.KeyStatePendingDeletion:
			return &Error{Type: ExcInvalidState, Message: arn + " is pending deletion.", Cause: err}
		case kms.KeyStatePendingImport:
			return &Error{Type: ExcInvalidState, Message: arn + " is pending import.", Cause: err}
		}
	}
	return &Error{Type: ExcInvalidState, Message: trimPrefix(err.Error()), Cause: err}
}

// usable is the state check of a dry run: the operation would be refused
// for a key that is not Enabled.
func (c *call) usable(md *kms.KeyMetadata) error {
	if md.KeyState != kms.KeyStateEnabled {
		return c.stateError(kms.ErrInvalidKeyState, md.KeyID)
	}
	return nil
}

func appendUnique(dst []string, src ...string) []string {
outer:
	for _, s := range src {
		for _, d := range dst {
			if d == s {
				continue outer
			}
		}
		dst = append(dst, s)
	}
	return dst
}
