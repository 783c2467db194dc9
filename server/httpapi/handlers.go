package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/kmsgo/kmsgo/hsm"
)

// keyParam reads the :id path segment (a key id, never an alias), resolves
// it and authorizes action on the key's resources.
func (rc *reqCtx) keyParam(action string) (KeyRef, error) {
	id := rc.c.Param("id")
	if err := checkIDParam("key id", id); err != nil {
		rc.resources = appendUnique(rc.resources, "key/"+sanitize(id, 64))
		return KeyRef{}, err
	}
	if id == "" || strings.HasPrefix(id, "alias/") {
		return KeyRef{}, fmt.Errorf("%w: path takes a key id; resolve aliases with GET /v1/aliases/:name", ErrValidation)
	}
	rc.resources = appendUnique(rc.resources, "key/"+id)
	return rc.authorizeKey(action, id)
}

func (s *Server) createKey(rc *reqCtx) (int, any, error) {
	var in CreateKeyRequest
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if err := rc.authorize(rc.action); err != nil {
		return 0, nil, err
	}
	if in.Alias != "" {
		// Naming the new key needs the alias permission too.
		if err := rc.authorize("kms:CreateAlias", in.Alias); err != nil {
			return 0, nil, err
		}
	}
	md, err := s.opts.Keys.CreateKey(rc.ctx, in)
	if err != nil {
		return 0, nil, err
	}
	rc.resources = appendUnique(rc.resources, "key/"+md.KeyID)
	return http.StatusCreated, md, nil
}

func (s *Server) listKeys(rc *reqCtx) (int, any, error) {
	q := rc.c.Request.URL.Query()
	for k := range q {
		switch k {
		case "limit", "marker", "state", "alias", "tag":
		default:
			return 0, nil, fmt.Errorf("%w: unknown query parameter %q", ErrValidation, k)
		}
	}
	in := ListKeysRequest{Marker: q.Get("marker"), State: q.Get("state"), Alias: q.Get("alias")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, fmt.Errorf("%w: limit must be an integer 1-1000", ErrValidation)
		}
		in.Limit = n
	}
	if v := q.Get("tag"); v != "" {
		k, val, ok := strings.Cut(v, ":")
		if !ok || k == "" {
			return 0, nil, fmt.Errorf("%w: tag must be key:value", ErrValidation)
		}
		in.TagKey, in.TagValue, in.HasTag = k, val, true
	}
	if err := rc.authorize(rc.action); err != nil {
		return 0, nil, err
	}
	out, err := s.opts.Keys.ListKeys(rc.ctx, in)
	if out.Keys == nil {
		out.Keys = []KeyMetadata{}
	}
	return http.StatusOK, out, err
}

func (s *Server) describeKey(rc *reqCtx) (int, any, error) {
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	md, err := s.opts.Keys.DescribeKey(rc.ctx, k.KeyID)
	return http.StatusOK, md, err
}

func (s *Server) updateKey(rc *reqCtx) (int, any, error) {
	var in descriptionBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Description == nil {
		return 0, nil, fmt.Errorf("%w: description is required", ErrValidation)
	}
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	md, err := s.opts.Keys.UpdateKeyDescription(rc.ctx, k.KeyID, *in.Description)
	return http.StatusOK, md, err
}

// keyStateOp builds the handler of a body-less key operation.
func (s *Server) keyStateOp(action string, op func(context.Context, string) (KeyMetadata, error)) handlerFunc {
	return func(rc *reqCtx) (int, any, error) {
		if err := rc.decode(&struct{}{}); err != nil {
			return 0, nil, err
		}
		k, err := rc.keyParam(action)
		if err != nil {
			return 0, nil, err
		}
		md, err := op(rc.ctx, k.KeyID)
		return http.StatusOK, md, err
	}
}

func (s *Server) scheduleDeletion(rc *reqCtx) (int, any, error) {
	var in scheduleDeletionBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	days := 30
	if in.PendingWindowDays != nil {
		days = *in.PendingWindowDays
	}
	if days < 7 || days > 30 {
		return 0, nil, fmt.Errorf("%w: pending_window_days must be 7-30", ErrValidation)
	}
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	md, err := s.opts.Keys.ScheduleKeyDeletion(rc.ctx, k.KeyID, days)
	return http.StatusOK, md, err
}

func (s *Server) getRotationPolicy(rc *reqCtx) (int, any, error) {
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	p, err := s.opts.Keys.GetRotationPolicy(rc.ctx, k.KeyID)
	return http.StatusOK, p, err
}

func (s *Server) setRotationPolicy(rc *reqCtx) (int, any, error) {
	var in rotationPolicyBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.Enabled == nil {
		return 0, nil, fmt.Errorf("%w: enabled is required", ErrValidation)
	}
	days := 0
	if in.PeriodDays != nil {
		days = *in.PeriodDays
	}
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	p, err := s.opts.Keys.SetRotationPolicy(rc.ctx, k.KeyID, *in.Enabled, days)
	return http.StatusOK, p, err
}

func (s *Server) listVersions(rc *reqCtx) (int, any, error) {
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	v, err := s.opts.Keys.ListKeyVersions(rc.ctx, k.KeyID)
	if v == nil {
		v = []KeyVersion{}
	}
	return http.StatusOK, versionsResponse{Versions: v}, err
}

func tagsOut(t map[string]string, err error) (int, any, error) {
	if t == nil {
		t = map[string]string{}
	}
	return http.StatusOK, tagsBody{Tags: t}, err
}

func (s *Server) listTags(rc *reqCtx) (int, any, error) {
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	return tagsOut(s.opts.Keys.ListTags(rc.ctx, k.KeyID))
}

func (s *Server) tagKey(rc *reqCtx) (int, any, error) {
	var in tagsBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if len(in.Tags) == 0 {
		return 0, nil, fmt.Errorf("%w: tags is required", ErrValidation)
	}
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	return tagsOut(s.opts.Keys.TagKey(rc.ctx, k.KeyID, in.Tags))
}

func (s *Server) untagKey(rc *reqCtx) (int, any, error) {
	var in untagBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if len(in.TagKeys) == 0 {
		return 0, nil, fmt.Errorf("%w: tag_keys is required", ErrValidation)
	}
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	return tagsOut(s.opts.Keys.UntagKey(rc.ctx, k.KeyID, in.TagKeys))
}

func (s *Server) importParams(rc *reqCtx) (int, any, error) {
	var in importParamsBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.WrappingAlgorithm == "" {
		in.WrappingAlgorithm = "RSAES_OAEP_SHA_256"
	}
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	p, err := s.opts.Keys.GetParametersForImport(rc.ctx, k.KeyID, in.WrappingAlgorithm)
	return http.StatusOK, p, err
}

func (s *Server) importKey(rc *reqCtx) (int, any, error) {
	var in importBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if len(in.ImportToken) == 0 || len(in.EncryptedKeyMaterial) == 0 {
		return 0, nil, fmt.Errorf("%w: import_token and encrypted_key_material are required", ErrValidation)
	}
	k, err := rc.keyParam(rc.action)
	if err != nil {
		return 0, nil, err
	}
	md, err := s.opts.Keys.ImportKeyMaterial(rc.ctx, k.KeyID, in.ImportToken, in.EncryptedKeyMaterial)
	return http.StatusOK, md, err
}

// aliasParam returns the full alias name of the :name path segment.
func aliasParam(rc *reqCtx) (string, error) {
	n := rc.c.Param("name")
	n = strings.TrimPrefix(n, "alias/")
	if n == "" {
		return "", fmt.Errorf("%w: alias name is required", ErrValidation)
	}
	return "alias/" + n, nil
}

func (s *Server) listAliases(rc *reqCtx) (int, any, error) {
	keyID := rc.c.Query("key_id")
	for k := range rc.c.Request.URL.Query() {
		if k != "key_id" {
			return 0, nil, fmt.Errorf("%w: unknown query parameter %q", ErrValidation, k)
		}
	}
	if keyID != "" {
		k, err := rc.authorizeKey(rc.action, keyID)
		if err != nil {
			return 0, nil, err
		}
		keyID = k.KeyID
	} else if err := rc.authorize(rc.action); err != nil {
		return 0, nil, err
	}
	as, err := s.opts.Keys.ListAliases(rc.ctx, keyID)
	if as == nil {
		as = []Alias{}
	}
	return http.StatusOK, aliasesResponse{Aliases: as}, err
}

func (s *Server) getAlias(rc *reqCtx) (int, any, error) {
	name, err := aliasParam(rc)
	if err != nil {
		return 0, nil, err
	}
	k, err := rc.authorizeKey(rc.action, name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, Alias{AliasName: name, KeyID: k.KeyID}, nil
}

func (s *Server) createAlias(rc *reqCtx) (int, any, error) {
	var in createAliasBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.AliasName == "" || in.KeyID == "" {
		return 0, nil, fmt.Errorf("%w: alias_name and key_id are required", ErrValidation)
	}
	k, err := s.opts.Keys.ResolveKey(rc.ctx, in.KeyID)
	if err != nil {
		return 0, nil, err
	}
	if err := rc.authorize(rc.action, append(k.Resources(), in.AliasName)...); err != nil {
		return 0, nil, err
	}
	a, err := s.opts.Keys.CreateAlias(rc.ctx, in.AliasName, k.KeyID)
	return http.StatusCreated, a, err
}

func (s *Server) updateAlias(rc *reqCtx) (int, any, error) {
	var in updateAliasBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	name, err := aliasParam(rc)
	if err != nil {
		return 0, nil, err
	}
	if in.KeyID == "" {
		return 0, nil, fmt.Errorf("%w: key_id is required", ErrValidation)
	}
	// Both the key the alias names now and the new target must be allowed.
	if _, err := rc.authorizeKey(rc.action, name); err != nil {
		return 0, nil, err
	}
	k, err := rc.authorizeKey(rc.action, in.KeyID)
	if err != nil {
		return 0, nil, err
	}
	a, err := s.opts.Keys.UpdateAlias(rc.ctx, name, k.KeyID)
	return http.StatusOK, a, err
}

func (s *Server) deleteAlias(rc *reqCtx) (int, any, error) {
	name, err := aliasParam(rc)
	if err != nil {
		return 0, nil, err
	}
	if _, err := rc.authorizeKey(rc.action, name); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, s.opts.Keys.DeleteAlias(rc.ctx, name)
}

func (s *Server) encrypt(rc *reqCtx) (int, any, error) {
	var in EncryptRequest
	rc.onDone(func() { hsm.Zero(in.Plaintext) })
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	k, err := rc.authorizeKey(rc.action, in.KeyID)
	if err != nil {
		return 0, nil, err
	}
	in.KeyID = k.KeyID
	out, err := s.opts.Keys.Encrypt(rc.ctx, in)
	rc.keyVersion = out.KeyVersion
	s.metrics.cryptoOp("Encrypt", k.KeyID, err)
	return http.StatusOK, out, err
}

// authorizeCiphertext finds the key inside blob and authorizes action on
// it. Any failure to identify the key is the opaque ErrInvalidCiphertext.
func (rc *reqCtx) authorizeCiphertext(action string, blob []byte) (KeyRef, error) {
	if len(blob) == 0 {
		return KeyRef{}, fmt.Errorf("%w: ciphertext_blob is required", ErrValidation)
	}
	id, err := rc.srv.opts.Keys.CiphertextKeyID(blob)
	if err != nil {
		return KeyRef{}, ErrInvalidCiphertext
	}
	k, err := rc.srv.opts.Keys.ResolveKey(rc.ctx, id)
	if err != nil {
		if isNotFound(err) {
			return KeyRef{}, ErrInvalidCiphertext
		}
		return KeyRef{}, err
	}
	return k, rc.authorize(action, k.Resources()...)
}

func (s *Server) decrypt(rc *reqCtx) (int, any, error) {
	var in DecryptRequest
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	k, err := rc.authorizeCiphertext(rc.action, in.CiphertextBlob)
	if err != nil {
		s.metrics.cryptoOp("Decrypt", k.KeyID, err)
		return 0, nil, err
	}
	if in.KeyID != "" {
		want, err := s.opts.Keys.ResolveKey(rc.ctx, in.KeyID)
		if err != nil || want.KeyID != k.KeyID {
			s.metrics.cryptoOp("Decrypt", k.KeyID, ErrInvalidCiphertext)
			return 0, nil, ErrInvalidCiphertext
		}
	}
	in.KeyID = k.KeyID
	out, err := s.opts.Keys.Decrypt(rc.ctx, in)
	rc.keyVersion = out.KeyVersion
	rc.onDone(func() { hsm.Zero(out.Plaintext) })
	s.metrics.cryptoOp("Decrypt", k.KeyID, err)
	return http.StatusOK, out, err
}

func (s *Server) decryptBatch(rc *reqCtx) (int, any, error) {
	var in batchDecryptBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if len(in.Items) == 0 || len(in.Items) > MaxBatchItems {
		return 0, nil, fmt.Errorf("%w: items must hold 1-%d entries", ErrValidation, MaxBatchItems)
	}
	out := batchDecryptResponse{Results: make([]batchDecryptResult, len(in.Items))}
	rc.onDone(func() {
		for _, r := range out.Results {
			hsm.Zero(r.Plaintext)
		}
	})
	for i, it := range in.Items {
		k, err := rc.authorizeCiphertext(rc.action, it.CiphertextBlob)
		if err == nil {
			var res DecryptResponse
			res, err = s.opts.Keys.Decrypt(rc.ctx, DecryptRequest{CiphertextBlob: it.CiphertextBlob, EncryptionContext: it.EncryptionContext, KeyID: k.KeyID})
			if err == nil {
				out.Results[i] = batchDecryptResult{KeyID: res.KeyID, KeyVersion: res.KeyVersion, Plaintext: res.Plaintext}
			}
		}
		s.metrics.cryptoOp("Decrypt", k.KeyID, err)
		if err != nil {
			code, msg := classify(err)
			if code == CodeInternal || code == CodeHSMUnavailable {
				// Server faults fail the whole batch so clients retry it.
				return 0, nil, err
			}
			out.Results[i] = batchDecryptResult{Error: &apiError{Code: code, Message: msg}}
		}
	}
	return http.StatusOK, out, nil
}

func (s *Server) generateDataKey(withPlaintext bool) handlerFunc {
	op := "GenerateDataKey"
	if !withPlaintext {
		op = "GenerateDataKeyWithoutPlaintext"
	}
	return func(rc *reqCtx) (int, any, error) {
		var in GenerateDataKeyRequest
		if err := rc.decode(&in); err != nil {
			return 0, nil, err
		}
		k, err := rc.authorizeKey(rc.action, in.KeyID)
		if err != nil {
			return 0, nil, err
		}
		in.KeyID = k.KeyID
		out, err := s.opts.Keys.GenerateDataKey(rc.ctx, in, withPlaintext)
		rc.keyVersion = out.KeyVersion
		pt := out.Plaintext // zeroed even though out.Plaintext is cleared below
		rc.onDone(func() { hsm.Zero(pt) })
		s.metrics.cryptoOp(op, k.KeyID, err)
		if !withPlaintext {
			out.Plaintext = nil
		}
		return http.StatusOK, out, err
	}
}

func (s *Server) reEncrypt(rc *reqCtx) (int, any, error) {
	var in ReEncryptRequest
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	src, err := rc.authorizeCiphertext("kms:ReEncryptFrom", in.CiphertextBlob)
	if err != nil {
		return 0, nil, err
	}
	if in.DestinationKeyID == "" {
		in.DestinationKeyID = src.KeyID // re-encrypt under the source key's newest version
	}
	dst, err := rc.authorizeKey("kms:ReEncryptTo", in.DestinationKeyID)
	if err != nil {
		return 0, nil, err
	}
	in.DestinationKeyID = dst.KeyID
	out, err := s.opts.Keys.ReEncrypt(rc.ctx, in)
	s.metrics.cryptoOp("ReEncrypt", src.KeyID, err)
	return http.StatusOK, out, err
}

func (s *Server) random(rc *reqCtx) (int, any, error) {
	var in randomBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if in.NumberOfBytes < 1 || in.NumberOfBytes > 1024 {
		return 0, nil, fmt.Errorf("%w: number_of_bytes must be 1-1024", ErrValidation)
	}
	if err := rc.authorize(rc.action); err != nil {
		return 0, nil, err
	}
	b, err := s.opts.Keys.GenerateRandom(rc.ctx, in.NumberOfBytes)
	rc.onDone(func() { hsm.Zero(b) })
	return http.StatusOK, randomResponse{Plaintext: b}, err
}

func (s *Server) createAccessKey(rc *reqCtx) (int, any, error) {
	var in createAccessKeyBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if len(in.Policy) == 0 {
		return 0, nil, fmt.Errorf("%w: policy is required", ErrValidation)
	}
	if err := rc.authorize(rc.action); err != nil {
		return 0, nil, err
	}
	ak, err := s.opts.AccessKeys.CreateAccessKey(rc.ctx, in.Description, in.Policy)
	if ak.AccessKeyID != "" {
		rc.resources = appendUnique(rc.resources, "access-key/"+ak.AccessKeyID)
	}
	return http.StatusCreated, ak, err
}

func (s *Server) listAccessKeys(rc *reqCtx) (int, any, error) {
	if err := rc.authorize(rc.action); err != nil {
		return 0, nil, err
	}
	aks, err := s.opts.AccessKeys.ListAccessKeys(rc.ctx)
	for i := range aks {
		aks[i].SecretAccessKey = ""
	}
	if aks == nil {
		aks = []AccessKey{}
	}
	return http.StatusOK, accessKeysResponse{AccessKeys: aks}, err
}

func (rc *reqCtx) accessKeyParam() (string, error) {
	id := rc.c.Param("id")
	if err := checkIDParam("access key id", id); err != nil {
		rc.resources = appendUnique(rc.resources, "access-key/"+sanitize(id, 64))
		return "", err
	}
	rc.resources = appendUnique(rc.resources, "access-key/"+id)
	return id, rc.authorize(rc.action)
}

func (s *Server) describeAccessKey(rc *reqCtx) (int, any, error) {
	id, err := rc.accessKeyParam()
	if err != nil {
		return 0, nil, err
	}
	ak, err := s.opts.AccessKeys.GetAccessKey(rc.ctx, id)
	ak.SecretAccessKey = ""
	return http.StatusOK, ak, err
}

func (s *Server) setAccessKeyPolicy(rc *reqCtx) (int, any, error) {
	var in policyBody
	if err := rc.decode(&in); err != nil {
		return 0, nil, err
	}
	if len(in.Policy) == 0 {
		return 0, nil, fmt.Errorf("%w: policy is required", ErrValidation)
	}
	id, err := rc.accessKeyParam()
	if err != nil {
		return 0, nil, err
	}
	ak, err := s.opts.AccessKeys.SetAccessKeyPolicy(rc.ctx, id, in.Policy)
	ak.SecretAccessKey = ""
	return http.StatusOK, ak, err
}

func (s *Server) setAccessKeyEnabled(enabled bool) handlerFunc {
	return func(rc *reqCtx) (int, any, error) {
		if err := rc.decode(&struct{}{}); err != nil {
			return 0, nil, err
		}
		id, err := rc.accessKeyParam()
		if err != nil {
			return 0, nil, err
		}
		ak, err := s.opts.AccessKeys.SetAccessKeyEnabled(rc.ctx, id, enabled)
		ak.SecretAccessKey = ""
		return http.StatusOK, ak, err
	}
}

func (s *Server) rotateAccessKeySecret(rc *reqCtx) (int, any, error) {
	if err := rc.decode(&struct{}{}); err != nil {
		return 0, nil, err
	}
	id, err := rc.accessKeyParam()
	if err != nil {
		return 0, nil, err
	}
	ak, err := s.opts.AccessKeys.RotateAccessKeySecret(rc.ctx, id)
	return http.StatusOK, ak, err
}

func (s *Server) deleteAccessKey(rc *reqCtx) (int, any, error) {
	id, err := rc.accessKeyParam()
	if err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, s.opts.AccessKeys.DeleteAccessKey(rc.ctx, id)
}

func (s *Server) listAudit(rc *reqCtx) (int, any, error) {
	q := rc.c.Request.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, fmt.Errorf("%w: limit must be an integer 1-1000", ErrValidation)
		}
		limit = n
	}
	if err := rc.authorize(rc.action); err != nil {
		return 0, nil, err
	}
	recs, next, err := s.opts.Audit.List(rc.ctx, limit, q.Get("after"))
	if recs == nil {
		recs = []AuditRecord{}
	}
	return http.StatusOK, auditResponse{Records: recs, Next: next}, err
}

func (s *Server) verifyAudit(rc *reqCtx) (int, any, error) {
	if err := rc.authorize(rc.action); err != nil {
		return 0, nil, err
	}
	anchors, err := parseAuditAnchors(rc.c.Request.URL.Query()["anchor"])
	if err != nil {
		return 0, nil, err
	}
	resume := rc.c.Request.URL.Query().Get("resume") == "true"
	res, err := s.opts.Audit.Verify(rc.ctx, AuditVerifyRequest{Anchors: anchors, Resume: resume})
	return http.StatusOK, res, err
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
