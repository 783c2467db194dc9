package httpapi

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/internal/auth"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// The route handlers: each is the generic op with where the key is and
// which core call answers. Only the shape of the JSON is checked here;
// every rule lives in the core.

type empty struct{}

// keyOp is a body-less operation on the key of the path.
func keyOp[Out any](call func(*kms.Service, context.Context, string) (Out, error)) handlerFunc {
	return op(pathKey, func(rc *reqCtx, k kms.KeyRef, _ *empty) (Out, error) {
		return call(rc.srv.kms, rc.ctx, k.KeyID)
	})
}

var createKey = op(noKey, func(rc *reqCtx, _ kms.KeyRef, in *kmsapi.CreateKeyRequest) (*kmsapi.KeyMetadata, error) {
	if in.Alias != "" {
		// Naming the new key needs the alias permission too.
		if err := rc.authorize("kms:CreateAlias", in.Alias); err != nil {
			return nil, err
		}
	}
	md, err := rc.srv.kms.CreateKeyAs(rc.ctx, rc.principal.AccessKeyID, *in)
	if err == nil {
		rc.resources = appendUnique(rc.resources, "key/"+md.KeyID)
	}
	return md, err
})

// query reads the allowed query parameters, refusing any other.
func query(rc *reqCtx, allowed ...string) (map[string]string, error) {
	q := rc.c.Request.URL.Query()
	out := make(map[string]string, len(q))
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return nil, validationf("unknown query parameter %q", k)
		}
		out[k] = q.Get(k)
	}
	return out, nil
}

func queryLimit(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, validationf("limit must be an integer")
	}
	return n, nil
}

var listKeys = op(noKey, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*kmsapi.ListKeysResponse, error) {
	q, err := query(rc, "limit", "marker", "state", "alias", "tag")
	if err != nil {
		return nil, err
	}
	in := kms.ListKeysInput{Marker: q["marker"], State: kmsapi.KeyState(q["state"]), Alias: q["alias"], Tag: q["tag"]}
	if in.Limit, err = queryLimit(q["limit"]); err != nil {
		return nil, err
	}
	return rc.srv.kms.ListKeys(rc.ctx, in)
})

var updateKey = op(pathKey, func(rc *reqCtx, k kms.KeyRef, in *kmsapi.DescriptionRequest) (*kmsapi.KeyMetadata, error) {
	if in.Description == nil {
		return nil, validationf("description is required")
	}
	return rc.srv.kms.UpdateKey(rc.ctx, kms.UpdateKeyInput{KeyID: k.KeyID, Description: *in.Description})
})

var scheduleDeletion = op(pathKey, func(rc *reqCtx, k kms.KeyRef, in *kmsapi.ScheduleDeletionRequest) (*kmsapi.KeyMetadata, error) {
	days := kms.DefaultDeletionDays
	if in.PendingWindowDays != nil {
		days = *in.PendingWindowDays
	}
	return rc.srv.kms.ScheduleKeyDeletion(rc.ctx, kms.ScheduleKeyDeletionInput{KeyID: k.KeyID, PendingWindowDays: days})
})

var getRotationPolicy = keyOp((*kms.Service).GetRotationPolicy)

var setRotationPolicy = op(pathKey, func(rc *reqCtx, k kms.KeyRef, in *kmsapi.RotationPolicyRequest) (*kmsapi.RotationPolicy, error) {
	if in.Enabled == nil {
		return nil, validationf("enabled is required")
	}
	days := 0
	if in.PeriodDays != nil {
		days = *in.PeriodDays
	}
	return rc.srv.kms.SetRotationPolicy(rc.ctx, kms.SetRotationPolicyInput{KeyID: k.KeyID, Enabled: *in.Enabled, PeriodDays: days})
})

var listVersions = op(pathKey, func(rc *reqCtx, k kms.KeyRef, _ *empty) (*kmsapi.VersionsResponse, error) {
	vs, err := rc.srv.kms.ListKeyVersions(rc.ctx, k.KeyID)
	if vs == nil {
		vs = []kmsapi.KeyVersion{}
	}
	return &kmsapi.VersionsResponse{Versions: vs}, err
})

// versionParam is the :version path segment, a positive integer.
func versionParam(rc *reqCtx) (int, error) {
	v, err := strconv.Atoi(rc.c.Param("version"))
	if err != nil || v < 1 {
		return 0, validationf("version must be a positive integer")
	}
	return v, nil
}

var disableVersion = op(pathKey, func(rc *reqCtx, k kms.KeyRef, in *kmsapi.DisableKeyVersionRequest) (*kmsapi.KeyVersion, error) {
	v, err := versionParam(rc)
	if err != nil {
		return nil, err
	}
	rc.keyVersion = v
	return rc.srv.kms.DisableKeyVersion(rc.ctx, kms.DisableKeyVersionInput{KeyID: k.KeyID, Version: v, Force: in.Force})
})

var enableVersion = op(pathKey, func(rc *reqCtx, k kms.KeyRef, _ *empty) (*kmsapi.KeyVersion, error) {
	v, err := versionParam(rc)
	if err != nil {
		return nil, err
	}
	rc.keyVersion = v
	return rc.srv.kms.EnableKeyVersion(rc.ctx, k.KeyID, v)
})

func tags(t map[string]string, err error) (*kmsapi.Tags, error) {
	if t == nil {
		t = map[string]string{}
	}
	return &kmsapi.Tags{Tags: t}, err
}

var listTags = op(pathKey, func(rc *reqCtx, k kms.KeyRef, _ *empty) (*kmsapi.Tags, error) {
	return tags(rc.srv.kms.ListTags(rc.ctx, k.KeyID))
})

var tagKey = op(pathKey, func(rc *reqCtx, k kms.KeyRef, in *kmsapi.Tags) (*kmsapi.Tags, error) {
	return tags(rc.srv.kms.TagKey(rc.ctx, kms.TagKeyInput{KeyID: k.KeyID, Tags: in.Tags}))
})

var untagKey = op(pathKey, func(rc *reqCtx, k kms.KeyRef, in *kmsapi.UntagRequest) (*kmsapi.Tags, error) {
	return tags(rc.srv.kms.UntagKey(rc.ctx, kms.UntagKeyInput{KeyID: k.KeyID, TagKeys: in.TagKeys}))
})

var importParams = op(pathKey, func(rc *reqCtx, k kms.KeyRef, in *kmsapi.ImportParametersRequest) (*kmsapi.ImportParameters, error) {
	return rc.srv.kms.GetParametersForImport(rc.ctx, kms.GetParametersForImportInput{KeyID: k.KeyID, WrappingAlgorithm: in.WrappingAlgorithm})
})

var importKey = op(pathKey, func(rc *reqCtx, k kms.KeyRef, in *kmsapi.ImportRequest) (*kmsapi.KeyMetadata, error) {
	return rc.srv.kms.ImportKeyMaterial(rc.ctx, kms.ImportKeyMaterialInput{KeyID: k.KeyID, ImportToken: in.ImportToken, EncryptedKeyMaterial: in.EncryptedKeyMaterial})
})

// aliasParam returns the full alias name of the :name path segment.
func aliasParam(rc *reqCtx) string {
	return kmsapi.AliasPrefix + strings.TrimPrefix(rc.c.Param("name"), kmsapi.AliasPrefix)
}

var listAliases = op(func(rc *reqCtx, _ any) (kms.KeyRef, error) {
	q, err := query(rc, "key_id")
	if err != nil {
		return kms.KeyRef{}, err
	}
	if q["key_id"] == "" {
		return kms.KeyRef{}, rc.authorize(rc.action)
	}
	return rc.authorizeKey(rc.action, q["key_id"])
}, func(rc *reqCtx, k kms.KeyRef, _ *empty) (*kmsapi.AliasesResponse, error) {
	as, err := rc.srv.kms.ListAliases(rc.ctx, k.KeyID)
	if as == nil {
		as = []kmsapi.Alias{}
	}
	return &kmsapi.AliasesResponse{Aliases: as}, err
})

// aliasKey: the key the :name alias names.
func aliasKey(rc *reqCtx, _ any) (kms.KeyRef, error) {
	return rc.authorizeKey(rc.action, aliasParam(rc))
}

var getAlias = op(aliasKey, func(rc *reqCtx, k kms.KeyRef, _ *empty) (*kmsapi.Alias, error) {
	return &kmsapi.Alias{AliasName: aliasParam(rc), KeyID: k.KeyID}, nil
})

var createAlias = op(noKeyYet, func(rc *reqCtx, _ kms.KeyRef, in *kmsapi.Alias) (*kmsapi.Alias, error) {
	k, err := rc.srv.kms.ResolveKey(rc.ctx, in.KeyID)
	if err != nil {
		return nil, err
	}
	if err := rc.authorize(rc.action, append(k.Resources(), in.AliasName)...); err != nil {
		return nil, err
	}
	return rc.srv.kms.CreateAlias(rc.ctx, kms.CreateAliasInput{AliasName: in.AliasName, KeyID: k.KeyID})
})

// noKeyYet: the handler authorizes itself.
func noKeyYet(*reqCtx, any) (kms.KeyRef, error) { return kms.KeyRef{}, nil }

var updateAlias = op(aliasKey, func(rc *reqCtx, _ kms.KeyRef, in *kmsapi.UpdateAliasRequest) (*kmsapi.Alias, error) {
	// Both the key the alias names now (located) and the new target must
	// be allowed.
	k, err := rc.authorizeKey(rc.action, in.KeyID)
	if err != nil {
		return nil, err
	}
	return rc.srv.kms.UpdateAlias(rc.ctx, kms.UpdateAliasInput{AliasName: aliasParam(rc), KeyID: k.KeyID})
})

var deleteAlias = op(aliasKey, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*empty, error) {
	return nil, rc.srv.kms.DeleteAlias(rc.ctx, aliasParam(rc))
})

var encrypt = op(bodyKey, func(rc *reqCtx, k kms.KeyRef, in *kmsapi.EncryptRequest) (*kmsapi.EncryptResponse, error) {
	out, err := rc.srv.kms.Encrypt(rc.ctx, *in)
	rc.srv.metrics.cryptoOp("Encrypt", k.KeyID, err)
	return out, err
})

var decrypt = op(ciphertextKey("", "Decrypt"), func(rc *reqCtx, k kms.KeyRef, in *kmsapi.DecryptRequest) (*kmsapi.DecryptResponse, error) {
	out, err := rc.srv.kms.DecryptCiphertext(rc.ctx, rc.ct, in.EncryptionContext, in.KeyID)
	rc.srv.metrics.cryptoOp("Decrypt", k.KeyID, err)
	return out, err
})

var decryptBatch = op(noKeyYet, func(rc *reqCtx, _ kms.KeyRef, in *kmsapi.DecryptBatchRequest) (*kmsapi.DecryptBatchResponse, error) {
	if len(in.Items) == 0 || len(in.Items) > kms.MaxBatchDecrypt {
		return nil, validationf("items must hold 1-%d entries", kms.MaxBatchDecrypt)
	}
	out := &kmsapi.DecryptBatchResponse{Results: make([]kmsapi.DecryptBatchResult, len(in.Items))}
	rc.onDone(func() {
		for _, r := range out.Results {
			zero(r.Plaintext)
		}
	})
	for i, it := range in.Items {
		k, err := rc.authorizeCiphertext(rc.action, it.CiphertextBlob)
		if err == nil {
			var res *kmsapi.DecryptResponse
			res, err = rc.srv.kms.DecryptCiphertext(rc.ctx, rc.ct, it.EncryptionContext, it.KeyID)
			if err == nil {
				out.Results[i] = kmsapi.DecryptBatchResult{KeyID: res.KeyID, KeyVersion: res.KeyVersion, Plaintext: res.Plaintext}
			}
		}
		rc.srv.metrics.cryptoOp("Decrypt", k.KeyID, err)
		if err != nil {
			code, msg := classify(err)
			if code == kmsapi.CodeInternal || code == kmsapi.CodeHSMUnavailable {
				// Server faults fail the whole batch so clients retry it.
				return nil, err
			}
			out.Results[i] = kmsapi.DecryptBatchResult{Error: &kmsapi.Error{Code: code, Message: msg}}
		}
	}
	return out, nil
})

func generateDataKey(withPlaintext bool) handlerFunc {
	name, call := "GenerateDataKey", (*kms.Service).GenerateDataKey
	if !withPlaintext {
		name, call = "GenerateDataKeyWithoutPlaintext", (*kms.Service).GenerateDataKeyWithoutPlaintext
	}
	return op(bodyKey, func(rc *reqCtx, k kms.KeyRef, in *kmsapi.GenerateDataKeyRequest) (*kmsapi.GenerateDataKeyResponse, error) {
		out, err := call(rc.srv.kms, rc.ctx, *in)
		rc.srv.metrics.cryptoOp(name, k.KeyID, err)
		return out, err
	})
}

var reEncrypt = op(ciphertextKey("kms:ReEncryptFrom", "ReEncrypt"), func(rc *reqCtx, src kms.KeyRef, in *kmsapi.ReEncryptRequest) (*kmsapi.ReEncryptResponse, error) {
	dst := src
	if in.DestinationKeyID != "" {
		var err error
		if dst, err = rc.authorizeKey("kms:ReEncryptTo", in.DestinationKeyID); err != nil {
			return nil, err
		}
	} else if err := rc.authorize("kms:ReEncryptTo", src.Resources()...); err != nil {
		return nil, err
	}
	in.DestinationKeyID = dst.KeyID
	out, err := rc.srv.kms.ReEncryptCiphertext(rc.ctx, rc.ct, *in)
	rc.srv.metrics.cryptoOp("ReEncrypt", src.KeyID, err)
	return out, err
})

var random = op(noKey, func(rc *reqCtx, _ kms.KeyRef, in *kmsapi.RandomRequest) (*kmsapi.RandomResponse, error) {
	b, err := rc.srv.kms.GenerateRandom(rc.ctx, in.NumberOfBytes)
	if err != nil {
		return nil, err
	}
	return &kmsapi.RandomResponse{Plaintext: b}, nil
})

// Access keys: the wire AccessKey carries the policy as JSON.

func toAccessKey(k auth.AccessKey, secret string) (*kmsapi.AccessKey, error) {
	pol, err := json.Marshal(k.Policy)
	if err != nil {
		return nil, err
	}
	return &kmsapi.AccessKey{AccessKeyID: k.ID, SecretAccessKey: secret, Description: k.Description,
		Status: string(k.Status), Policy: pol, CreationDate: k.CreationDate}, nil
}

func oneAccessKey(k auth.AccessKey, err error) (*kmsapi.AccessKey, error) {
	if err != nil {
		return nil, err
	}
	return toAccessKey(k, "")
}

// accessKeyParam: the access key of the :id path segment.
func accessKeyParam(rc *reqCtx, _ any) (kms.KeyRef, error) {
	id := rc.c.Param("id")
	if err := checkIDParam("access key id", id); err != nil {
		rc.resources = appendUnique(rc.resources, "access-key/"+sanitize(id, 64))
		return kms.KeyRef{}, err
	}
	rc.resources = appendUnique(rc.resources, "access-key/"+id)
	return kms.KeyRef{}, rc.authorize(rc.action)
}

var createAccessKey = op(noKey, func(rc *reqCtx, _ kms.KeyRef, in *kmsapi.CreateAccessKeyRequest) (*kmsapi.AccessKey, error) {
	p, err := auth.ParsePolicy(in.Policy)
	if err != nil {
		return nil, err
	}
	k, secret, replay, err := rc.srv.opts.Auth.CreateAccessKeyIdempotent(rc.ctx, rc.principal.AccessKeyID, in.IdempotencyToken, in.Description, p)
	if err != nil {
		return nil, err
	}
	rc.resources = appendUnique(rc.resources, "access-key/"+k.ID)
	ak, err := toAccessKey(k, secret)
	if ak != nil {
		ak.IdempotentReplay = replay
	}
	return ak, err
})

var listAccessKeys = op(noKey, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*kmsapi.AccessKeysResponse, error) {
	ks, err := rc.srv.opts.Auth.ListAccessKeys(rc.ctx)
	if err != nil {
		return nil, err
	}
	out := &kmsapi.AccessKeysResponse{AccessKeys: make([]kmsapi.AccessKey, 0, len(ks))}
	for _, k := range ks {
		ak, err := toAccessKey(k, "")
		if err != nil {
			return nil, err
		}
		out.AccessKeys = append(out.AccessKeys, *ak)
	}
	return out, nil
})

var describeAccessKey = op(accessKeyParam, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*kmsapi.AccessKey, error) {
	return oneAccessKey(rc.srv.opts.Auth.GetAccessKey(rc.ctx, rc.c.Param("id")))
})

var setAccessKeyPolicy = op(accessKeyParam, func(rc *reqCtx, _ kms.KeyRef, in *kmsapi.PolicyRequest) (*kmsapi.AccessKey, error) {
	p, err := auth.ParsePolicy(in.Policy)
	if err != nil {
		return nil, err
	}
	return oneAccessKey(rc.srv.opts.Auth.UpdatePolicy(rc.ctx, rc.c.Param("id"), p))
})

func setAccessKeyEnabled(enabled bool) handlerFunc {
	call := (*auth.Service).DisableAccessKey
	if enabled {
		call = (*auth.Service).EnableAccessKey
	}
	return op(accessKeyParam, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*kmsapi.AccessKey, error) {
		return oneAccessKey(call(rc.srv.opts.Auth, rc.ctx, rc.c.Param("id")))
	})
}

var rotateAccessKeySecret = op(accessKeyParam, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*kmsapi.AccessKey, error) {
	k, secret, err := rc.srv.opts.Auth.RotateSecret(rc.ctx, rc.c.Param("id"))
	if err != nil {
		return nil, err
	}
	return toAccessKey(k, secret)
})

var deleteAccessKey = op(accessKeyParam, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*empty, error) {
	return nil, rc.srv.opts.Auth.DeleteAccessKey(rc.ctx, rc.c.Param("id"))
})

var listAudit = op(noKey, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*kmsapi.AuditResponse, error) {
	q, err := query(rc, "limit", "after")
	if err != nil {
		return nil, err
	}
	limit := 100
	if q["limit"] != "" {
		if limit, err = queryLimit(q["limit"]); err != nil || limit < 1 || limit > 1000 {
			return nil, validationf("limit must be an integer 1-1000")
		}
	}
	page, err := rc.srv.opts.Audit.List(rc.ctx, audit.ListOptions{Limit: limit, After: q["after"]})
	if err != nil {
		return nil, err
	}
	out := &kmsapi.AuditResponse{Records: make([]json.RawMessage, 0, len(page.Records)), Next: page.Next}
	for _, r := range page.Records {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		out.Records = append(out.Records, b)
	}
	return out, nil
})

var verifyAudit = op(noKey, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*kmsapi.AuditVerifyResult, error) {
	if _, err := query(rc, "anchor", "resume"); err != nil {
		return nil, err
	}
	q := rc.c.Request.URL.Query()
	anchors, err := parseAuditAnchors(q["anchor"])
	if err != nil {
		return nil, err
	}
	opts := audit.VerifyOptions{Anchors: anchors}
	if q.Get("resume") == "true" {
		opts.From = rc.srv.verified.heads()
	}
	rep, err := rc.srv.opts.Audit.VerifyWith(rc.ctx, opts)
	if err != nil {
		return nil, err
	}
	if rep.OK {
		rc.srv.verified.set(rep.Heads)
	}
	res := &kmsapi.AuditVerifyResult{OK: rep.OK, Checked: int64(rep.Checked), Heads: auditHeads(rep.Heads),
		ResumedFrom: auditHeads(rep.ResumedFrom)}
	if len(res.ResumedFrom) == 0 {
		res.ResumedFrom = nil
	}
	res.OutcomeUnknownCount = int64(rep.OutcomeUnknownCount)
	for _, in := range rep.OutcomeUnknown {
		res.OutcomeUnknown = append(res.OutcomeUnknown, kmsapi.AuditIntent{Replica: in.ReplicaID, Seq: in.Seq, Time: in.Time,
			Action: in.Action, KeyID: in.KeyID, RequestID: in.RequestID})
	}
	if rep.FirstBroken != nil {
		res.FirstBroken = &kmsapi.AuditBroken{Replica: rep.FirstBroken.ReplicaID, Seq: rep.FirstBroken.Seq, Reason: rep.FirstBroken.Reason}
	}
	return res, nil
})
