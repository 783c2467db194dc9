package httpapi

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/kmsgo/kmsgo/server/ciphertext"
	"github.com/kmsgo/kmsgo/server/kms"
)

// KMSAdapter adapts *kms.Service to KeyService. Key references (id or
// alias, with the key's aliases for policy checks) are cached for TTL, the
// same bound the service applies to key state.
type KMSAdapter struct {
	S   *kms.Service
	TTL time.Duration // default kms.DefaultMetadataTTL; negative disables

	mu    sync.Mutex
	cache map[string]refEntry

	// DescribeKey answers, cached for TTL like the service's key state and
	// dropped by every change made through this adapter. gen counts those
	// changes so that a read racing a change is not cached.
	metaMu  sync.Mutex
	meta    map[string]metaEntry
	metaGen uint64
}

type metaEntry struct {
	md     KeyMetadata
	loaded time.Time
}

type refEntry struct {
	ref    KeyRef
	loaded time.Time
}

var _ KeyService = (*KMSAdapter)(nil)

// mappedError carries an API sentinel and the service's error, showing the
// service's message without its package prefix.
type mappedError struct {
	sentinel error
	cause    error
}

func (e *mappedError) Error() string {
	return strings.TrimPrefix(e.cause.Error(), "kms: ")
}
func (e *mappedError) Is(target error) bool { return target == e.sentinel }
func (e *mappedError) Unwrap() error        { return e.cause }

func kmsErr(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range []struct{ from, to error }{
		{kms.ErrInvalidCiphertext, ErrInvalidCiphertext},
		{kms.ErrValidation, ErrValidation},
		{kms.ErrNotFound, ErrNotFound},
		{kms.ErrAlreadyExists, ErrAlreadyExists},
		{kms.ErrInvalidKeyState, ErrInvalidKeyState},
	} {
		if errors.Is(err, m.from) {
			return &mappedError{sentinel: m.to, cause: err}
		}
	}
	return err
}

func (a *KMSAdapter) ttl() time.Duration {
	if a.TTL == 0 {
		return kms.DefaultMetadataTTL
	}
	return a.TTL
}

// ResolveKey implements KeyService.
func (a *KMSAdapter) ResolveKey(ctx context.Context, ref string) (KeyRef, error) {
	ttl := a.ttl()
	if ttl > 0 {
		a.mu.Lock()
		e, ok := a.cache[ref]
		a.mu.Unlock()
		if ok && time.Since(e.loaded) < ttl {
			return e.ref, nil
		}
	}
	id := ref
	if strings.HasPrefix(ref, kms.AliasPrefix) {
		al, err := a.S.GetAlias(ctx, ref)
		if err != nil {
			return KeyRef{}, kmsErr(err)
		}
		id = al.KeyID
	} else if !ciphertext.ValidKeyID(ref) {
		return KeyRef{}, &mappedError{sentinel: ErrNotFound, cause: errors.New("key " + quote(ref) + " not found")}
	}
	as, err := a.S.ListAliases(ctx, id)
	if err != nil {
		return KeyRef{}, kmsErr(err)
	}
	if len(as) == 0 {
		// ListAliases does not prove the key exists; DescribeKey does.
		if _, err := a.S.DescribeKey(ctx, id); err != nil {
			return KeyRef{}, kmsErr(err)
		}
	}
	kr := KeyRef{KeyID: id}
	for _, al := range as {
		kr.Aliases = append(kr.Aliases, al.AliasName)
	}
	if ttl > 0 {
		a.mu.Lock()
		if a.cache == nil || len(a.cache) > 10000 {
			a.cache = map[string]refEntry{}
		}
		a.cache[ref] = refEntry{ref: kr, loaded: time.Now()}
		a.mu.Unlock()
	}
	return kr, nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return "\"" + strings.ToValidUTF8(s, "?") + "\""
}

// forget drops cached references after alias changes.
func (a *KMSAdapter) forget() {
	a.mu.Lock()
	a.cache = nil
	a.mu.Unlock()
	a.changed()
}

// CiphertextKeyID implements KeyService.
func (a *KMSAdapter) CiphertextKeyID(blob []byte) (string, error) {
	b, err := ciphertext.Parse(blob)
	if err != nil {
		return "", ErrInvalidCiphertext
	}
	return b.KeyID, nil
}

func toMeta(m *kms.KeyMetadata, err error) (KeyMetadata, error) {
	if err != nil {
		return KeyMetadata{}, kmsErr(err)
	}
	aliases := m.Aliases
	if aliases == nil {
		aliases = []string{}
	}
	tags := m.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return KeyMetadata{
		KeyID: m.KeyID, Description: m.Description, KeySpec: string(m.KeySpec),
		ProtectionLevel: string(m.ProtectionLevel), Origin: string(m.Origin), KeyState: string(m.KeyState),
		CreationDate: m.CreationDate, DeletionDate: m.DeletionDate, PrimaryVersion: int(m.PrimaryVersion),
		Aliases: aliases, Tags: tags,
		Rotation: RotationPolicy{Enabled: m.Rotation.Enabled, PeriodDays: m.Rotation.PeriodDays, NextRotationAt: m.Rotation.NextRotationAt},
	}, nil
}

// CreateKey implements KeyService.
func (a *KMSAdapter) CreateKey(ctx context.Context, in CreateKeyRequest) (KeyMetadata, error) {
	defer a.changed()
	return toMeta(a.S.CreateKey(ctx, kms.CreateKeyInput{
		Description: in.Description, KeySpec: kms.KeySpec(in.KeySpec), ProtectionLevel: kms.ProtectionLevel(in.ProtectionLevel),
		Origin: kms.Origin(in.Origin), Tags: in.Tags, Alias: in.Alias,
	}))
}

// ListKeys implements KeyService.
func (a *KMSAdapter) ListKeys(ctx context.Context, in ListKeysRequest) (ListKeysResponse, error) {
	li := kms.ListKeysInput{Limit: in.Limit, Marker: in.Marker, State: kms.KeyState(in.State), Alias: in.Alias}
	if in.HasTag {
		li.Tag = in.TagKey + ":" + in.TagValue
	}
	out, err := a.S.ListKeys(ctx, li)
	if err != nil {
		return ListKeysResponse{}, kmsErr(err)
	}
	res := ListKeysResponse{Keys: make([]KeyMetadata, 0, len(out.Keys)), NextMarker: out.NextMarker}
	for i := range out.Keys {
		m, _ := toMeta(&out.Keys[i], nil)
		res.Keys = append(res.Keys, m)
	}
	return res, nil
}

// DescribeKey implements KeyService. Answers are cached for TTL (the bound
// within which a change on another replica shows), so that describing a key
// does not read the database on every request.
func (a *KMSAdapter) DescribeKey(ctx context.Context, keyID string) (KeyMetadata, error) {
	ttl := a.ttl()
	if ttl <= 0 {
		return toMeta(a.S.DescribeKey(ctx, keyID))
	}
	a.metaMu.Lock()
	e, ok := a.meta[keyID]
	gen := a.metaGen
	a.metaMu.Unlock()
	if ok && time.Since(e.loaded) < ttl {
		return cloneMeta(e.md), nil
	}
	loaded := time.Now()
	md, err := toMeta(a.S.DescribeKey(ctx, keyID))
	if err != nil {
		return md, err
	}
	a.metaMu.Lock()
	if a.metaGen == gen {
		if a.meta == nil || len(a.meta) > 10000 {
			a.meta = map[string]metaEntry{}
		}
		a.meta[keyID] = metaEntry{md: cloneMeta(md), loaded: loaded}
	}
	a.metaMu.Unlock()
	return md, nil
}

// cloneMeta copies the reference fields of md so that a cached answer is
// never shared with a caller.
func cloneMeta(md KeyMetadata) KeyMetadata {
	md.Aliases = append([]string{}, md.Aliases...)
	md.Tags = maps.Clone(md.Tags)
	if md.Tags == nil {
		md.Tags = map[string]string{}
	}
	if md.DeletionDate != nil {
		d := *md.DeletionDate
		md.DeletionDate = &d
	}
	if md.Rotation.NextRotationAt != nil {
		d := *md.Rotation.NextRotationAt
		md.Rotation.NextRotationAt = &d
	}
	return md
}

// changed drops the cached DescribeKey answers after a change made here.
func (a *KMSAdapter) changed() {
	a.metaMu.Lock()
	a.meta = nil
	a.metaGen++
	a.metaMu.Unlock()
}

// UpdateKeyDescription implements KeyService.
func (a *KMSAdapter) UpdateKeyDescription(ctx context.Context, keyID, description string) (KeyMetadata, error) {
	defer a.changed()
	return toMeta(a.S.UpdateKey(ctx, kms.UpdateKeyInput{KeyID: keyID, Description: description}))
}

// EnableKey implements KeyService.
func (a *KMSAdapter) EnableKey(ctx context.Context, keyID string) (KeyMetadata, error) {
	defer a.changed()
	return toMeta(a.S.EnableKey(ctx, keyID))
}

// DisableKey implements KeyService.
func (a *KMSAdapter) DisableKey(ctx context.Context, keyID string) (KeyMetadata, error) {
	defer a.changed()
	return toMeta(a.S.DisableKey(ctx, keyID))
}

// RotateKey implements KeyService.
func (a *KMSAdapter) RotateKey(ctx context.Context, keyID string) (KeyMetadata, error) {
	defer a.changed()
	return toMeta(a.S.RotateKey(ctx, keyID))
}

// ScheduleKeyDeletion implements KeyService.
func (a *KMSAdapter) ScheduleKeyDeletion(ctx context.Context, keyID string, days int) (KeyMetadata, error) {
	defer a.changed()
	return toMeta(a.S.ScheduleKeyDeletion(ctx, kms.ScheduleKeyDeletionInput{KeyID: keyID, PendingWindowDays: days}))
}

// CancelKeyDeletion implements KeyService.
func (a *KMSAdapter) CancelKeyDeletion(ctx context.Context, keyID string) (KeyMetadata, error) {
	defer a.changed()
	return toMeta(a.S.CancelKeyDeletion(ctx, keyID))
}

func toRotation(p *kms.RotationPolicy, err error) (RotationPolicy, error) {
	if err != nil {
		return RotationPolicy{}, kmsErr(err)
	}
	return RotationPolicy{Enabled: p.Enabled, PeriodDays: p.PeriodDays, NextRotationAt: p.NextRotationAt}, nil
}

// GetRotationPolicy implements KeyService.
func (a *KMSAdapter) GetRotationPolicy(ctx context.Context, keyID string) (RotationPolicy, error) {
	return toRotation(a.S.GetRotationPolicy(ctx, keyID))
}

// SetRotationPolicy implements KeyService.
func (a *KMSAdapter) SetRotationPolicy(ctx context.Context, keyID string, enabled bool, periodDays int) (RotationPolicy, error) {
	defer a.changed()
	return toRotation(a.S.SetRotationPolicy(ctx, kms.SetRotationPolicyInput{KeyID: keyID, Enabled: enabled, PeriodDays: periodDays}))
}

// ListKeyVersions implements KeyService.
func (a *KMSAdapter) ListKeyVersions(ctx context.Context, keyID string) ([]KeyVersion, error) {
	vs, err := a.S.ListKeyVersions(ctx, keyID)
	if err != nil {
		return nil, kmsErr(err)
	}
	out := make([]KeyVersion, 0, len(vs))
	for _, v := range vs {
		out = append(out, KeyVersion{Version: int(v.Version), State: string(v.State), Primary: v.Primary, CreationDate: v.CreationDate})
	}
	return out, nil
}

func tagsErr(t map[string]string, err error) (map[string]string, error) { return t, kmsErr(err) }

// ListTags implements KeyService.
func (a *KMSAdapter) ListTags(ctx context.Context, keyID string) (map[string]string, error) {
	return tagsErr(a.S.ListTags(ctx, keyID))
}

// TagKey implements KeyService.
func (a *KMSAdapter) TagKey(ctx context.Context, keyID string, tags map[string]string) (map[string]string, error) {
	defer a.changed()
	return tagsErr(a.S.TagKey(ctx, kms.TagKeyInput{KeyID: keyID, Tags: tags}))
}

// UntagKey implements KeyService.
func (a *KMSAdapter) UntagKey(ctx context.Context, keyID string, tagKeys []string) (map[string]string, error) {
	defer a.changed()
	return tagsErr(a.S.UntagKey(ctx, kms.UntagKeyInput{KeyID: keyID, TagKeys: tagKeys}))
}

// GetParametersForImport implements KeyService.
func (a *KMSAdapter) GetParametersForImport(ctx context.Context, keyID, alg string) (ImportParameters, error) {
	p, err := a.S.GetParametersForImport(ctx, kms.GetParametersForImportInput{KeyID: keyID, WrappingAlgorithm: alg})
	if err != nil {
		return ImportParameters{}, kmsErr(err)
	}
	return ImportParameters{ImportToken: p.ImportToken, PublicKey: p.PublicKey, ValidTo: p.ValidTo}, nil
}

// ImportKeyMaterial implements KeyService.
func (a *KMSAdapter) ImportKeyMaterial(ctx context.Context, keyID string, token, material []byte) (KeyMetadata, error) {
	defer a.changed()
	return toMeta(a.S.ImportKeyMaterial(ctx, kms.ImportKeyMaterialInput{KeyID: keyID, ImportToken: token, EncryptedKeyMaterial: material}))
}

func toAlias(a *kms.AliasInfo, err error) (Alias, error) {
	if err != nil {
		return Alias{}, kmsErr(err)
	}
	return Alias{AliasName: a.AliasName, KeyID: a.KeyID}, nil
}

// ListAliases implements KeyService.
func (a *KMSAdapter) ListAliases(ctx context.Context, keyID string) ([]Alias, error) {
	as, err := a.S.ListAliases(ctx, keyID)
	if err != nil {
		return nil, kmsErr(err)
	}
	out := make([]Alias, 0, len(as))
	for _, al := range as {
		out = append(out, Alias{AliasName: al.AliasName, KeyID: al.KeyID})
	}
	return out, nil
}

// GetAlias implements KeyService.
func (a *KMSAdapter) GetAlias(ctx context.Context, name string) (Alias, error) {
	return toAlias(a.S.GetAlias(ctx, name))
}

// CreateAlias implements KeyService.
func (a *KMSAdapter) CreateAlias(ctx context.Context, name, keyID string) (Alias, error) {
	defer a.forget()
	return toAlias(a.S.CreateAlias(ctx, kms.CreateAliasInput{AliasName: name, KeyID: keyID}))
}

// UpdateAlias implements KeyService.
func (a *KMSAdapter) UpdateAlias(ctx context.Context, name, keyID string) (Alias, error) {
	defer a.forget()
	return toAlias(a.S.UpdateAlias(ctx, kms.UpdateAliasInput{AliasName: name, KeyID: keyID}))
}

// DeleteAlias implements KeyService.
func (a *KMSAdapter) DeleteAlias(ctx context.Context, name string) error {
	defer a.forget()
	return kmsErr(a.S.DeleteAlias(ctx, name))
}

// Encrypt implements KeyService.
func (a *KMSAdapter) Encrypt(ctx context.Context, in EncryptRequest) (EncryptResponse, error) {
	out, err := a.S.Encrypt(ctx, kms.EncryptInput{KeyID: in.KeyID, Plaintext: in.Plaintext, EncryptionContext: in.EncryptionContext})
	if err != nil {
		return EncryptResponse{}, kmsErr(err)
	}
	return EncryptResponse{KeyID: out.KeyID, KeyVersion: int(out.KeyVersion), CiphertextBlob: out.CiphertextBlob}, nil
}

// Decrypt implements KeyService.
func (a *KMSAdapter) Decrypt(ctx context.Context, in DecryptRequest) (DecryptResponse, error) {
	out, err := a.S.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: in.CiphertextBlob, EncryptionContext: in.EncryptionContext, KeyID: in.KeyID})
	if err != nil {
		return DecryptResponse{}, kmsErr(err)
	}
	return DecryptResponse{KeyID: out.KeyID, KeyVersion: int(out.KeyVersion), Plaintext: out.Plaintext}, nil
}

// GenerateDataKey implements KeyService.
func (a *KMSAdapter) GenerateDataKey(ctx context.Context, in GenerateDataKeyRequest, withPlaintext bool) (GenerateDataKeyResponse, error) {
	gi := kms.GenerateDataKeyInput{KeyID: in.KeyID, KeySpec: kms.KeySpec(in.KeySpec), NumberOfBytes: in.NumberOfBytes, EncryptionContext: in.EncryptionContext}
	op := a.S.GenerateDataKey
	if !withPlaintext {
		op = a.S.GenerateDataKeyWithoutPlaintext
	}
	out, err := op(ctx, gi)
	if err != nil {
		return GenerateDataKeyResponse{}, kmsErr(err)
	}
	return GenerateDataKeyResponse{KeyID: out.KeyID, KeyVersion: int(out.KeyVersion), Plaintext: out.Plaintext, CiphertextBlob: out.CiphertextBlob}, nil
}

// ReEncrypt implements KeyService.
func (a *KMSAdapter) ReEncrypt(ctx context.Context, in ReEncryptRequest) (ReEncryptResponse, error) {
	out, err := a.S.ReEncrypt(ctx, kms.ReEncryptInput{
		CiphertextBlob: in.CiphertextBlob, SourceEncryptionContext: in.SourceEncryptionContext,
		DestinationKeyID: in.DestinationKeyID, DestinationEncryptionContext: in.DestinationEncryptionContext,
	})
	if err != nil {
		return ReEncryptResponse{}, kmsErr(err)
	}
	return ReEncryptResponse{SourceKeyID: out.SourceKeyID, SourceKeyVersion: int(out.SourceKeyVersion),
		KeyID: out.KeyID, KeyVersion: int(out.KeyVersion), CiphertextBlob: out.CiphertextBlob}, nil
}

// GenerateRandom implements KeyService.
func (a *KMSAdapter) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	b, err := a.S.GenerateRandom(ctx, n)
	return b, kmsErr(err)
}
