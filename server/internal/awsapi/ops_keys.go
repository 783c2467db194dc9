package awsapi

import (
	"context"
	"encoding/base64"
	"sort"
	"strconv"
	"strings"

	"github.com/kmsgo/kmsgo/server/internal/kms"
)

type opFunc func(c *call) (any, error)

// operation is one supported TrentService operation: its policy action
// and its implementation.
type operation struct {
	action string
	run    opFunc
}

// decoded builds an opFunc that decodes the body into a fresh In first.
func decoded[In any](f func(c *call, in *In) (any, error)) opFunc {
	return func(c *call) (any, error) {
		in := new(In)
		if err := decodeBody(c.body, in); err != nil {
			return nil, err
		}
		return f(c, in)
	}
}

// Operations lists the supported operation names, sorted.
func (h *Handler) Operations() []string {
	out := make([]string, 0, len(h.ops))
	for k := range h.ops {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (h *Handler) operations() map[string]operation {
	return map[string]operation{
		"CreateKey":                       {"kms:CreateKey", decoded(h.createKey)},
		"DescribeKey":                     {"kms:DescribeKey", decoded(h.describeKey)},
		"ListKeys":                        {"kms:ListKeys", decoded(h.listKeys)},
		"UpdateKeyDescription":            {"kms:UpdateKey", decoded(h.updateKeyDescription)},
		"EnableKey":                       {"kms:EnableKey", decoded(h.keyOp(h.o.KMS.EnableKey))},
		"DisableKey":                      {"kms:DisableKey", decoded(h.keyOp(h.o.KMS.DisableKey))},
		"ScheduleKeyDeletion":             {"kms:ScheduleKeyDeletion", decoded(h.scheduleKeyDeletion)},
		"CancelKeyDeletion":               {"kms:CancelKeyDeletion", decoded(h.cancelKeyDeletion)},
		"EnableKeyRotation":               {"kms:SetRotationPolicy", decoded(h.enableKeyRotation)},
		"DisableKeyRotation":              {"kms:SetRotationPolicy", decoded(h.disableKeyRotation)},
		"GetKeyRotationStatus":            {"kms:GetRotationPolicy", decoded(h.getKeyRotationStatus)},
		"RotateKeyOnDemand":               {"kms:RotateKey", decoded(h.rotateKeyOnDemand)},
		"ListKeyRotations":                {"kms:ListKeyVersions", decoded(h.listKeyRotations)},
		"CreateAlias":                     {"kms:CreateAlias", decoded(h.createAlias)},
		"UpdateAlias":                     {"kms:UpdateAlias", decoded(h.updateAlias)},
		"DeleteAlias":                     {"kms:DeleteAlias", decoded(h.deleteAlias)},
		"ListAliases":                     {"kms:ListAliases", decoded(h.listAliases)},
		"TagResource":                     {"kms:TagKey", decoded(h.tagResource)},
		"UntagResource":                   {"kms:UntagKey", decoded(h.untagResource)},
		"ListResourceTags":                {"kms:ListTags", decoded(h.listResourceTags)},
		"Encrypt":                         {"kms:Encrypt", decoded(h.encrypt)},
		"Decrypt":                         {"kms:Decrypt", decoded(h.decrypt)},
		"ReEncrypt":                       {"kms:ReEncrypt", decoded(h.reEncrypt)},
		"GenerateDataKey":                 {"kms:GenerateDataKey", decoded(h.generateDataKey(true))},
		"GenerateDataKeyWithoutPlaintext": {"kms:GenerateDataKeyWithoutPlaintext", decoded(h.generateDataKey(false))},
		"GenerateRandom":                  {"kms:GenerateRandom", decoded(h.generateRandom)},
		"GetParametersForImport":          {"kms:GetParametersForImport", decoded(h.getParametersForImport)},
		"ImportKeyMaterial":               {"kms:ImportKeyMaterial", decoded(h.importKeyMaterial)},
	}
}

// Values kmsd's keys have in AWS's vocabulary.
const (
	symmetricDefault = "SYMMETRIC_DEFAULT"
	encryptDecrypt   = "ENCRYPT_DECRYPT"
)

func (h *Handler) metadata(md *kms.KeyMetadata) KeyMetadata {
	spec := string(md.KeySpec)
	if md.KeySpec == kms.KeySpecAES256 {
		spec = symmetricDefault
	}
	origin := "AWS_KMS"
	expiration := ""
	if md.Origin == kms.OriginExternal {
		origin, expiration = "EXTERNAL", "KEY_MATERIAL_DOES_NOT_EXPIRE"
	}
	return KeyMetadata{
		AWSAccountID: h.arns.Account, KeyID: md.KeyID, Arn: h.arns.Key(md.KeyID),
		CreationDate: epoch(md.CreationDate), Enabled: md.KeyState == kms.KeyStateEnabled,
		Description: md.Description, KeyUsage: encryptDecrypt, KeyState: string(md.KeyState),
		DeletionDate: epochPtr(md.DeletionDate), Origin: origin, ExpirationModel: expiration,
		KeyManager: "CUSTOMER", CustomerMasterKeySpec: spec, KeySpec: spec,
		EncryptionAlgorithms: []string{symmetricDefault},
	}
}

// checkTags applies AWS's tag rules and returns the tags as a map.
func checkTags(tags []Tag) (map[string]string, error) {
	if len(tags) > kms.MaxTagsPerKey {
		return nil, awsErr(ExcLimitExceeded, "a key can have at most %d tags", kms.MaxTagsPerKey)
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		switch {
		case t.TagKey == "" || len(t.TagKey) > kms.MaxTagKeyLen:
			return nil, awsErr(ExcTag, "TagKey must be 1-%d characters", kms.MaxTagKeyLen)
		case len(t.TagValue) > kms.MaxTagValueLen:
			return nil, awsErr(ExcTag, "TagValue must be at most %d characters", kms.MaxTagValueLen)
		case strings.HasPrefix(strings.ToLower(t.TagKey), "aws:"):
			return nil, awsErr(ExcTag, "tag keys beginning with aws: are reserved")
		}
		if _, dup := m[t.TagKey]; dup {
			return nil, awsErr(ExcTag, "duplicate TagKey %s", quote(t.TagKey))
		}
		m[t.TagKey] = t.TagValue
	}
	return m, nil
}

// tagErr maps the core's tag validation failures to TagException.
func tagErr(err error) error {
	if e := toAWS(err); e.Type == ExcValidation {
		e.Type = ExcTag
		return e
	}
	return err
}

func (h *Handler) createKey(c *call, in *createKeyInput) (any, error) {
	switch {
	case in.Policy != nil:
		return nil, unsupported("key policies are not supported: access is governed by kmsd access-key policies")
	case in.CustomKeyStoreID != "" || in.XksKeyID != "":
		return nil, unsupported("custom key stores are not supported")
	case in.MultiRegion:
		return nil, unsupported("multi-Region keys are not supported")
	}
	switch in.KeyUsage {
	case "", encryptDecrypt:
	case "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT":
		return nil, unsupported("KeyUsage %s is not supported; kmsd keys are ENCRYPT_DECRYPT", in.KeyUsage)
	default:
		return nil, validationErr("KeyUsage %s is not valid", quote(in.KeyUsage))
	}
	spec := in.KeySpec
	if spec == "" {
		spec = in.CustomerMasterKeySpec
	} else if in.CustomerMasterKeySpec != "" && in.CustomerMasterKeySpec != spec {
		return nil, validationErr("KeySpec and CustomerMasterKeySpec differ")
	}
	if spec != "" && spec != symmetricDefault {
		return nil, unsupported("KeySpec %s is not supported; kmsd keys are %s", quote(spec), symmetricDefault)
	}
	origin := kms.OriginKMS
	switch in.Origin {
	case "", "AWS_KMS":
	case "EXTERNAL":
		origin = kms.OriginExternal
	case "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE":
		return nil, unsupported("Origin %s is not supported", in.Origin)
	default:
		return nil, validationErr("Origin %s is not valid", quote(in.Origin))
	}
	tags, err := checkTags(in.Tags)
	if err != nil {
		return nil, err
	}
	if err := c.authorize(c.action); err != nil {
		return nil, err
	}
	md, err := h.o.KMS.CreateKey(c.ctx, kms.CreateKeyInput{Description: in.Description, KeySpec: kms.KeySpecAES256, Origin: origin, Tags: tags})
	if err != nil {
		return nil, tagErr(err)
	}
	h.changed()
	c.resources = appendUnique(c.resources, "key/"+md.KeyID)
	return keyMetadataOutput{KeyMetadata: h.metadata(md)}, nil
}

func refuseGrants(tokens []string) error {
	if len(tokens) > 0 {
		return unsupported("grants are not supported")
	}
	return nil
}

func (h *Handler) describeKey(c *call, in *describeKeyInput) (any, error) {
	if err := refuseGrants(in.GrantTokens); err != nil {
		return nil, err
	}
	k, err := c.key(in.KeyID, true, c.action)
	if err != nil {
		return nil, err
	}
	md, err := h.describeFresh(c.ctx, k.KeyID)
	if err != nil {
		return nil, notFound(in.KeyID, err)
	}
	return keyMetadataOutput{KeyMetadata: h.metadata(md)}, nil
}

// limit returns the page size: def when unset, else it must be 1-max.
func limit(l *int, def, max int) (int, error) {
	if l == nil {
		return def, nil
	}
	if *l < 1 || *l > max {
		return 0, validationErr("Limit must be 1-%d", max)
	}
	return *l, nil
}

// Markers of the lists this package pages itself (aliases, tags,
// rotations) are opaque: base64url of "<kind>:<last item>".
func encodeMarker(kind, last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + last))
}

func decodeMarker(kind, m string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(m)
	if err != nil || !strings.HasPrefix(string(b), kind+":") {
		return "", awsErr(ExcInvalidMarker, "the Marker is not valid")
	}
	return string(b[len(kind)+1:]), nil
}

func (h *Handler) listKeys(c *call, in *listInput) (any, error) {
	n, err := limit(in.Limit, 100, 1000)
	if err != nil {
		return nil, err
	}
	if in.Marker != "" && !kms.ValidKeyID(in.Marker) {
		return nil, awsErr(ExcInvalidMarker, "the Marker is not valid")
	}
	if err := c.authorize(c.action); err != nil {
		return nil, err
	}
	page, err := h.o.KMS.ListKeys(c.ctx, kms.ListKeysInput{Limit: n, Marker: in.Marker})
	if err != nil {
		return nil, err
	}
	out := listKeysOutput{Keys: make([]keyListEntry, 0, len(page.Keys)), NextMarker: page.NextMarker, Truncated: page.NextMarker != ""}
	for _, k := range page.Keys {
		if k.KeyState == kms.KeyStateDestroyed {
			continue // deleted keys are not listed, as in AWS
		}
		out.Keys = append(out.Keys, keyListEntry{KeyID: k.KeyID, KeyArn: h.arns.Key(k.KeyID)})
	}
	return out, nil
}

func (h *Handler) updateKeyDescription(c *call, in *updateKeyDescriptionInput) (any, error) {
	if in.Description == nil {
		return nil, validationErr("Description is required")
	}
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	_, err = h.o.KMS.UpdateKey(c.ctx, kms.UpdateKeyInput{KeyID: k.KeyID, Description: *in.Description})
	h.changed()
	return nil, c.stateError(err, k.KeyID)
}

func (h *Handler) keyOp(f func(context.Context, string) (*kms.KeyMetadata, error)) func(c *call, in *keyIDInput) (any, error) {
	return func(c *call, in *keyIDInput) (any, error) {
		k, err := c.key(in.KeyID, false, c.action)
		if err != nil {
			return nil, err
		}
		_, err = f(c.ctx, k.KeyID)
		h.changed()
		return nil, c.stateError(err, k.KeyID)
	}
}

func (h *Handler) scheduleKeyDeletion(c *call, in *scheduleKeyDeletionInput) (any, error) {
	days := kms.DefaultDeletionDays
	if in.PendingWindowInDays != nil {
		days = *in.PendingWindowInDays
	}
	if days < kms.MinDeletionWindowDays || days > kms.MaxDeletionWindowDays {
		return nil, validationErr("PendingWindowInDays must be %d-%d", kms.MinDeletionWindowDays, kms.MaxDeletionWindowDays)
	}
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	md, err := h.o.KMS.ScheduleKeyDeletion(c.ctx, kms.ScheduleKeyDeletionInput{KeyID: k.KeyID, PendingWindowDays: days})
	h.changed()
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	return scheduleKeyDeletionOutput{KeyID: h.arns.Key(md.KeyID), DeletionDate: epochPtr(md.DeletionDate),
		KeyState: string(md.KeyState), PendingWindowInDays: days}, nil
}

func (h *Handler) cancelKeyDeletion(c *call, in *keyIDInput) (any, error) {
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	_, err = h.o.KMS.CancelKeyDeletion(c.ctx, k.KeyID)
	h.changed()
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	return keyIDOutput{KeyID: h.arns.Key(k.KeyID)}, nil
}

func (h *Handler) enableKeyRotation(c *call, in *enableKeyRotationInput) (any, error) {
	days := kms.DefaultRotationDays
	if in.RotationPeriodInDays != nil {
		days = *in.RotationPeriodInDays
	}
	if days < kms.MinRotationDays || days > kms.MaxRotationDays {
		return nil, validationErr("RotationPeriodInDays must be %d-%d", kms.MinRotationDays, kms.MaxRotationDays)
	}
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	if k.Origin == kms.OriginExternal {
		return nil, unsupported("automatic rotation of keys with imported material is not supported")
	}
	_, err = h.o.KMS.SetRotationPolicy(c.ctx, kms.SetRotationPolicyInput{KeyID: k.KeyID, Enabled: true, PeriodDays: days})
	return nil, c.stateError(err, k.KeyID)
}

func (h *Handler) disableKeyRotation(c *call, in *keyIDInput) (any, error) {
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	cur, err := h.o.KMS.GetRotationPolicy(c.ctx, k.KeyID)
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	_, err = h.o.KMS.SetRotationPolicy(c.ctx, kms.SetRotationPolicyInput{KeyID: k.KeyID, Enabled: false, PeriodDays: cur.PeriodDays})
	return nil, c.stateError(err, k.KeyID)
}

func (h *Handler) getKeyRotationStatus(c *call, in *keyIDInput) (any, error) {
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	p, err := h.o.KMS.GetRotationPolicy(c.ctx, k.KeyID)
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	out := getKeyRotationStatusOutput{KeyRotationEnabled: p.Enabled, KeyID: h.arns.Key(k.KeyID)}
	if p.Enabled {
		days := p.PeriodDays
		out.RotationPeriodInDays = &days
		out.NextRotationDate = epochPtr(p.NextRotationAt)
	}
	return out, nil
}

func (h *Handler) rotateKeyOnDemand(c *call, in *keyIDInput) (any, error) {
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	if k.Origin == kms.OriginExternal {
		return nil, unsupported("keys with imported material cannot be rotated")
	}
	_, err = h.o.KMS.RotateKey(c.ctx, k.KeyID)
	h.changed()
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	return keyIDOutput{KeyID: h.arns.Key(k.KeyID)}, nil
}

func (h *Handler) listKeyRotations(c *call, in *listKeyRotationsInput) (any, error) {
	n, err := limit(in.Limit, 100, 1000)
	if err != nil {
		return nil, err
	}
	after := int64(0)
	if in.Marker != "" {
		s, err := decodeMarker("rotation", in.Marker)
		if err != nil {
			return nil, err
		}
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 1 {
			return nil, awsErr(ExcInvalidMarker, "the Marker is not valid")
		}
	}
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	vs, err := h.o.KMS.ListKeyVersions(c.ctx, k.KeyID)
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	out := listKeyRotationsOutput{Rotations: []rotationEntry{}}
	for _, v := range vs {
		// Version 1 is the original material; every later version is a rotation.
		if v.Version <= 1 || int64(v.Version) <= after {
			continue
		}
		if len(out.Rotations) == n {
			out.Truncated = true
			out.NextMarker = encodeMarker("rotation", strconv.Itoa(v.Version-1))
			break
		}
		out.Rotations = append(out.Rotations, rotationEntry{KeyID: k.KeyID, RotationDate: epoch(v.CreationDate)})
	}
	return out, nil
}

// aliasName checks an AliasName parameter.
func aliasName(s string) (string, error) {
	switch {
	case s == "":
		return "", validationErr("AliasName is required")
	case !kms.ValidAliasName(s):
		return "", awsErr(ExcInvalidAliasName, "alias name %s must be alias/ followed by 1-%d letters, digits, '/', '_' or '-'", quote(s), kms.MaxAliasNameLen-len(kms.AliasPrefix))
	}
	return s, nil
}

func (h *Handler) createAlias(c *call, in *aliasInput) (any, error) {
	name, err := aliasName(in.AliasName)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return nil, awsErr(ExcInvalidAliasName, "alias names beginning with alias/aws/ are reserved")
	}
	if in.TargetKeyID == "" {
		return nil, validationErr("TargetKeyId is required")
	}
	ref, err := h.arns.ParseKeyRef(in.TargetKeyID, false)
	if err != nil {
		return nil, err
	}
	k, err := h.describe(c.ctx, ref.String())
	if err != nil {
		return nil, notFound(in.TargetKeyID, err)
	}
	// Naming a key needs the permission on the key or on the alias name.
	if err := c.authorize(c.action, append(resources(k), name)...); err != nil {
		return nil, err
	}
	_, err = h.o.KMS.CreateAlias(c.ctx, kms.CreateAliasInput{AliasName: name, KeyID: k.KeyID})
	h.changed()
	return nil, c.stateError(err, k.KeyID)
}

func (h *Handler) updateAlias(c *call, in *aliasInput) (any, error) {
	name, err := aliasName(in.AliasName)
	if err != nil {
		return nil, err
	}
	if in.TargetKeyID == "" {
		return nil, validationErr("TargetKeyId is required")
	}
	// Both the key the alias names now and the new target must be allowed.
	if _, err := c.key(name, true, c.action); err != nil {
		return nil, err
	}
	k, err := c.key(in.TargetKeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	_, err = h.o.KMS.UpdateAlias(c.ctx, kms.UpdateAliasInput{AliasName: name, KeyID: k.KeyID})
	h.changed()
	return nil, c.stateError(err, k.KeyID)
}

func (h *Handler) deleteAlias(c *call, in *deleteAliasInput) (any, error) {
	name, err := aliasName(in.AliasName)
	if err != nil {
		return nil, err
	}
	if _, err := c.key(name, true, c.action); err != nil {
		return nil, err
	}
	err = h.o.KMS.DeleteAlias(c.ctx, name)
	h.changed()
	return nil, notFound(name, err)
}

func (h *Handler) listAliases(c *call, in *listAliasesInput) (any, error) {
	n, err := limit(in.Limit, 50, 100)
	if err != nil {
		return nil, err
	}
	after := ""
	if in.Marker != "" {
		if after, err = decodeMarker("alias", in.Marker); err != nil {
			return nil, err
		}
	}
	keyID := ""
	if in.KeyID != "" {
		k, err := c.key(in.KeyID, false, c.action)
		if err != nil {
			return nil, err
		}
		keyID = k.KeyID
	} else if err := c.authorize(c.action); err != nil {
		return nil, err
	}
	as, err := h.o.KMS.ListAliases(c.ctx, keyID)
	if err != nil {
		return nil, err
	}
	out := listAliasesOutput{Aliases: []aliasListEntry{}}
	for _, a := range as { // sorted by name
		if a.AliasName <= after {
			continue
		}
		if len(out.Aliases) == n {
			out.Truncated = true
			out.NextMarker = encodeMarker("alias", out.Aliases[n-1].AliasName)
			break
		}
		out.Aliases = append(out.Aliases, aliasListEntry{AliasName: a.AliasName, AliasArn: h.arns.Alias(a.AliasName), TargetKeyID: a.KeyID})
	}
	return out, nil
}

func (h *Handler) tagResource(c *call, in *tagResourceInput) (any, error) {
	if len(in.Tags) == 0 {
		return nil, validationErr("Tags is required")
	}
	tags, err := checkTags(in.Tags)
	if err != nil {
		return nil, err
	}
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	cur, err := h.o.KMS.ListTags(c.ctx, k.KeyID)
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	total := len(cur)
	for t := range tags {
		if _, ok := cur[t]; !ok {
			total++
		}
	}
	if total > kms.MaxTagsPerKey {
		return nil, awsErr(ExcLimitExceeded, "a key can have at most %d tags", kms.MaxTagsPerKey)
	}
	_, err = h.o.KMS.TagKey(c.ctx, kms.TagKeyInput{KeyID: k.KeyID, Tags: tags})
	if err != nil {
		return nil, c.stateError(tagErr(err), k.KeyID)
	}
	return nil, nil
}

func (h *Handler) untagResource(c *call, in *untagResourceInput) (any, error) {
	if len(in.TagKeys) == 0 {
		return nil, validationErr("TagKeys is required")
	}
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	_, err = h.o.KMS.UntagKey(c.ctx, kms.UntagKeyInput{KeyID: k.KeyID, TagKeys: in.TagKeys})
	if err != nil {
		return nil, c.stateError(tagErr(err), k.KeyID)
	}
	return nil, nil
}

func (h *Handler) listResourceTags(c *call, in *listKeyRotationsInput) (any, error) {
	n, err := limit(in.Limit, 50, 50)
	if err != nil {
		return nil, err
	}
	after := ""
	if in.Marker != "" {
		if after, err = decodeMarker("tag", in.Marker); err != nil {
			return nil, err
		}
	}
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	tags, err := h.o.KMS.ListTags(c.ctx, k.KeyID)
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	keys := make([]string, 0, len(tags))
	for t := range tags {
		keys = append(keys, t)
	}
	sort.Strings(keys)
	out := listResourceTagsOutput{Tags: []Tag{}}
	for _, t := range keys {
		if in.Marker != "" && t <= after {
			continue
		}
		if len(out.Tags) == n {
			out.Truncated = true
			out.NextMarker = encodeMarker("tag", out.Tags[n-1].TagKey)
			break
		}
		out.Tags = append(out.Tags, Tag{TagKey: t, TagValue: tags[t]})
	}
	return out, nil
}
