package kms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

func validateTags(tags map[string]string) error {
	if len(tags) > MaxTagsPerKey {
		return validationf("at most %d tags per key", MaxTagsPerKey)
	}
	for k, v := range tags {
		if k == "" || len(k) > MaxTagKeyLen || !utf8.ValidString(k) {
			return validationf("tag keys must be 1-%d bytes of UTF-8", MaxTagKeyLen)
		}
		if len(v) > MaxTagValueLen || !utf8.ValidString(v) {
			return validationf("tag values must be at most %d bytes of UTF-8", MaxTagValueLen)
		}
	}
	return nil
}

func validateDescription(d string) error {
	if len(d) > MaxDescriptionLen || !utf8.ValidString(d) {
		return validationf("description must be at most %d bytes of UTF-8", MaxDescriptionLen)
	}
	return nil
}

func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func metadataOf(k *store.Key, aliases []string, tags map[string]string) *KeyMetadata {
	if aliases == nil {
		aliases = []string{}
	}
	if tags == nil {
		tags = map[string]string{}
	}
	return &KeyMetadata{
		KeyID:           k.ID,
		Description:     k.Description,
		KeySpec:         k.KeySpec,
		ProtectionLevel: k.ProtectionLevel,
		Origin:          k.Origin,
		KeyState:        k.State,
		CreationDate:    k.CreatedAt.UTC(),
		DeletionDate:    copyTime(k.DeletionDate),
		PrimaryVersion:  int(k.PrimaryVersion),
		Aliases:         aliases,
		Tags:            tags,
		Rotation:        RotationPolicy{Enabled: k.RotationEnabled, PeriodDays: k.RotationPeriodDays, NextRotationAt: copyTime(k.NextRotationAt)},
	}
}

// metadata reads aliases and tags of k and builds its KeyMetadata.
func (s *Service) metadata(ctx context.Context, k *store.Key) (*KeyMetadata, error) {
	as, err := s.st.AliasNames(ctx, []string{k.ID})
	if err != nil {
		return nil, err
	}
	ts, err := s.st.Tags(ctx, []string{k.ID})
	if err != nil {
		return nil, err
	}
	return metadataOf(k, as[k.ID], ts[k.ID]), nil
}

// CreateKey creates a master key. With Origin KMS (default) it is Enabled
// with version 1; with Origin EXTERNAL it is PendingImport until
// ImportKeyMaterial. An Alias, if given, is created atomically with the key.
func (s *Service) CreateKey(ctx context.Context, in CreateKeyInput) (*KeyMetadata, error) {
	return s.CreateKeyAs(ctx, "", in)
}

// CreateKeyAs is CreateKey on behalf of owner (the caller's access key id),
// which scopes in.IdempotencyToken: the first CreateKeyAs with a token
// creates the key and records (owner, token, parameters) in the same
// transaction; a later one with the same owner, token and parameters
// creates nothing and returns that key's current metadata, and one with
// other parameters fails with ErrIdempotencyMismatch. Concurrent requests
// with one token create one key (the record's primary key decides; the
// losers return the winner's key). Records are kept with the key.
func (s *Service) CreateKeyAs(ctx context.Context, owner string, in CreateKeyInput) (*KeyMetadata, error) {
	if in.KeySpec == "" {
		in.KeySpec = KeySpecAES256
	}
	if in.ProtectionLevel == "" {
		in.ProtectionLevel = ProtectionSoftware
	}
	if in.Origin == "" {
		in.Origin = OriginKMS
	}
	switch {
	case in.KeySpec != KeySpecAES256 && in.KeySpec != KeySpecAES128:
		return nil, validationf("key_spec must be AES_256 or AES_128")
	case in.ProtectionLevel != ProtectionSoftware && in.ProtectionLevel != ProtectionHSM:
		return nil, validationf("protection_level must be SOFTWARE or HSM")
	case in.Origin != OriginKMS && in.Origin != OriginExternal:
		return nil, validationf("origin must be KMS or EXTERNAL")
	case in.KeySpec == KeySpecAES128 && in.Origin != OriginExternal:
		return nil, validationf("AES_128 is only allowed for imported (EXTERNAL) keys")
	}
	if err := validateDescription(in.Description); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	if in.Alias != "" {
		if err := validateAliasName(in.Alias); err != nil {
			return nil, err
		}
	}
	var idem *store.KeyIdempotency
	if in.IdempotencyToken != "" {
		if !kmsapi.ValidIdempotencyToken(in.IdempotencyToken) {
			return nil, validationf("idempotency_token must be 1-%d characters of A-Z a-z 0-9 - _ . :", kmsapi.MaxIdempotencyToken)
		}
		if len(owner) > 64 || !utf8.ValidString(owner) {
			return nil, validationf("owner too long")
		}
		idem = &store.KeyIdempotency{Owner: owner, Token: in.IdempotencyToken, ParamsHash: createKeyHash(in)}
		if md, err, ok := s.replayCreate(ctx, idem); ok {
			return md, err
		}
	}
	id, err := newKeyID()
	if err != nil {
		return nil, err
	}
	now := s.now()
	if idem != nil {
		idem.KeyID, idem.CreatedAt = id, now
	}
	k := store.Key{
		ID: id, Description: in.Description, KeySpec: in.KeySpec, ProtectionLevel: in.ProtectionLevel,
		Origin: in.Origin, State: KeyStatePendingImport, RotationPeriodDays: DefaultRotationDays,
		Revision: 1, CreatedAt: now, UpdatedAt: now,
	}
	var versions []store.KeyVersion
	var mat []byte
	if in.Origin == OriginKMS {
		v, m, err := s.newVersion(ctx, &k, 1, nil, now)
		if err != nil {
			return nil, err
		}
		versions, mat = []store.KeyVersion{v}, m
		k.State, k.PrimaryVersion = KeyStateEnabled, 1
	}
	var aliases []store.Alias
	if in.Alias != "" {
		aliases = []store.Alias{{Name: in.Alias, KeyID: id, CreatedAt: now, UpdatedAt: now}}
	}
	var tags []store.Tag
	for tk, tv := range in.Tags {
		tags = append(tags, store.Tag{KeyID: id, TagKey: tk, Value: tv})
	}
	if err := s.st.CreateKeyIdempotent(ctx, idem, &k, versions, aliases, tags); err != nil {
		for _, v := range versions {
			s.discardVersion(ctx, v, mat)
		}
		hsm.Zero(mat)
		if idem != nil {
			// A concurrent request with the same token may have won.
			if md, rerr, ok := s.replayCreate(ctx, idem); ok {
				return md, rerr
			}
		}
		return nil, storeErr(err)
	}
	if mat != nil {
		s.material.put(id, 1, mat)
		hsm.Zero(mat)
	}
	var an []string
	if in.Alias != "" {
		an = []string{in.Alias}
	}
	tm := make(map[string]string, len(in.Tags))
	for tk, tv := range in.Tags {
		tm[tk] = tv
	}
	return metadataOf(&k, an, tm), nil
}

// createKeyHash is the hex SHA-256 of the normalized CreateKey parameters
// (defaults applied, token left out): what a replay must repeat.
func createKeyHash(in CreateKeyInput) string {
	in.IdempotencyToken = ""
	b, _ := json.Marshal(in) // map keys sorted: deterministic
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// replayCreate answers a CreateKey whose token was recorded before: ok is
// false when it was not (create the key), else the recorded key's
// metadata or ErrIdempotencyMismatch.
func (s *Service) replayCreate(ctx context.Context, want *store.KeyIdempotency) (*KeyMetadata, error, bool) {
	r, err := s.st.GetKeyIdempotency(ctx, want.Owner, want.Token)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, false
	}
	if err != nil {
		return nil, storeErr(err), true
	}
	if r.ParamsHash != want.ParamsHash {
		return nil, ErrIdempotencyMismatch, true
	}
	k, err := s.st.GetKey(ctx, r.KeyID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: key %s (created with this idempotency token) no longer exists", ErrNotFound, r.KeyID), true
		}
		return nil, storeErr(err), true
	}
	md, err := s.metadata(ctx, &k)
	return md, err, true
}

// getKey resolves idOrAlias and reads the key from the database (not the
// cache), checking op against its state.
func (s *Service) getKey(ctx context.Context, idOrAlias string, op Operation) (store.Key, error) {
	id, err := s.resolve(ctx, idOrAlias, false)
	if err != nil {
		return store.Key{}, err
	}
	k, err := s.st.GetKey(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return k, fmt.Errorf("%w: key %s", ErrNotFound, id)
		}
		return k, err
	}
	return k, checkState(op, k.State)
}

// DescribeKey returns the metadata of a key (id or alias).
func (s *Service) DescribeKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	k, err := s.getKey(ctx, keyID, OpDescribeKey)
	if err != nil {
		return nil, err
	}
	return s.metadata(ctx, &k)
}

// ListKeys returns one page of keys ordered by id.
func (s *Service) ListKeys(ctx context.Context, in ListKeysInput) (*ListKeysOutput, error) {
	if in.Limit == 0 {
		in.Limit = 100
	}
	if in.Limit < 1 || in.Limit > 1000 {
		return nil, validationf("limit must be 1-1000")
	}
	f := store.ListFilter{State: in.State, Alias: in.Alias, Marker: in.Marker, Limit: in.Limit + 1}
	if in.State != "" && stateIndex(in.State) < 0 {
		return nil, validationf("unknown state %q", in.State)
	}
	if in.Alias != "" {
		if err := validateAliasName(in.Alias); err != nil {
			return nil, err
		}
	}
	if in.Tag != "" {
		k, v, ok := strings.Cut(in.Tag, ":")
		if !ok || k == "" {
			return nil, validationf("tag filter must be key:value")
		}
		f.TagKey, f.TagValue = k, v
	}
	ks, err := s.st.ListKeys(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &ListKeysOutput{Keys: []KeyMetadata{}}
	if len(ks) > in.Limit {
		ks = ks[:in.Limit]
		out.NextMarker = ks[len(ks)-1].ID
	}
	ids := make([]string, len(ks))
	for i := range ks {
		ids[i] = ks[i].ID
	}
	as, err := s.st.AliasNames(ctx, ids)
	if err != nil {
		return nil, err
	}
	ts, err := s.st.Tags(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range ks {
		out.Keys = append(out.Keys, *metadataOf(&ks[i], as[ks[i].ID], ts[ks[i].ID]))
	}
	return out, nil
}

// mutate reads key idOrAlias fresh, checks op, lets change compute the
// column updates and applies them with compare-and-swap, retrying a few
// times when another writer got there first. change may return nil fields
// for "nothing to do".
func (s *Service) mutate(ctx context.Context, idOrAlias string, op Operation, change func(k *store.Key, now time.Time) (map[string]any, error)) (*KeyMetadata, error) {
	id, err := s.resolve(ctx, idOrAlias, false)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		k, err := s.st.GetKey(ctx, id)
		if err != nil {
			return nil, storeErr(err)
		}
		if err := checkState(op, k.State); err != nil {
			return nil, err
		}
		now := s.now()
		fields, err := change(&k, now)
		if err != nil {
			return nil, err
		}
		if fields != nil {
			err = s.st.UpdateKey(ctx, id, k.Revision, fields, now)
			if errors.Is(err, store.ErrConflict) && attempt < 5 {
				continue
			}
			if err != nil {
				return nil, storeErr(err)
			}
			s.invalidate(id)
			if k, err = s.st.GetKey(ctx, id); err != nil {
				return nil, storeErr(err)
			}
		}
		return s.metadata(ctx, &k)
	}
}

// UpdateKey changes a key's description.
func (s *Service) UpdateKey(ctx context.Context, in UpdateKeyInput) (*KeyMetadata, error) {
	if err := validateDescription(in.Description); err != nil {
		return nil, err
	}
	return s.mutate(ctx, in.KeyID, OpUpdateKey, func(*store.Key, time.Time) (map[string]any, error) {
		return map[string]any{"description": in.Description}, nil
	})
}

// EnableKey sets a Disabled (or Enabled) key to Enabled.
func (s *Service) EnableKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	return s.mutate(ctx, keyID, OpEnableKey, func(k *store.Key, _ time.Time) (map[string]any, error) {
		if k.State == KeyStateEnabled {
			return nil, nil
		}
		return map[string]any{"state": KeyStateEnabled}, nil
	})
}

// DisableKey sets an Enabled (or Disabled) key to Disabled. Other replicas
// refuse it within Config.MetadataTTL.
func (s *Service) DisableKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	return s.mutate(ctx, keyID, OpDisableKey, func(k *store.Key, _ time.Time) (map[string]any, error) {
		if k.State == KeyStateDisabled {
			return nil, nil
		}
		return map[string]any{"state": KeyStateDisabled}, nil
	})
}

// ScheduleKeyDeletion puts a key in PendingDeletion; its material is
// destroyed by DestroyDueKeys once the window (7–30 days, default 30) ends.
func (s *Service) ScheduleKeyDeletion(ctx context.Context, in ScheduleKeyDeletionInput) (*KeyMetadata, error) {
	days := in.PendingWindowDays
	if days == 0 {
		days = DefaultDeletionDays
	}
	if days < MinDeletionWindowDays || days > MaxDeletionWindowDays {
		return nil, validationf("pending_window_days must be %d-%d", MinDeletionWindowDays, MaxDeletionWindowDays)
	}
	return s.mutate(ctx, in.KeyID, OpScheduleKeyDeletion, func(_ *store.Key, now time.Time) (map[string]any, error) {
		return map[string]any{"state": KeyStatePendingDeletion, "deletion_date": now.Add(time.Duration(days) * 24 * time.Hour)}, nil
	})
}

// CancelKeyDeletion returns a PendingDeletion key to Disabled (or to
// PendingImport if it never received material).
func (s *Service) CancelKeyDeletion(ctx context.Context, keyID string) (*KeyMetadata, error) {
	return s.mutate(ctx, keyID, OpCancelKeyDeletion, func(k *store.Key, _ time.Time) (map[string]any, error) {
		state := KeyStateDisabled
		if k.PrimaryVersion == 0 {
			state = KeyStatePendingImport
		}
		return map[string]any{"state": state, "deletion_date": nil}, nil
	})
}

// GetRotationPolicy returns a key's automatic rotation policy.
func (s *Service) GetRotationPolicy(ctx context.Context, keyID string) (*RotationPolicy, error) {
	k, err := s.getKey(ctx, keyID, OpGetRotationPolicy)
	if err != nil {
		return nil, err
	}
	return &RotationPolicy{Enabled: k.RotationEnabled, PeriodDays: k.RotationPeriodDays, NextRotationAt: copyTime(k.NextRotationAt)}, nil
}

// SetRotationPolicy turns automatic rotation on (next rotation one period
// from now) or off. Imported keys cannot be rotated.
func (s *Service) SetRotationPolicy(ctx context.Context, in SetRotationPolicyInput) (*RotationPolicy, error) {
	days := in.PeriodDays
	if days == 0 {
		days = DefaultRotationDays
	}
	if days < MinRotationDays || days > MaxRotationDays {
		return nil, validationf("period_days must be %d-%d", MinRotationDays, MaxRotationDays)
	}
	md, err := s.mutate(ctx, in.KeyID, OpSetRotationPolicy, func(k *store.Key, now time.Time) (map[string]any, error) {
		if k.Origin == OriginExternal && in.Enabled {
			return nil, validationf("keys with imported material cannot be rotated automatically")
		}
		f := map[string]any{"rotation_enabled": in.Enabled, "rotation_period_days": days, "next_rotation_at": nil}
		if in.Enabled {
			f["next_rotation_at"] = now.Add(time.Duration(days) * 24 * time.Hour)
		}
		return f, nil
	})
	if err != nil {
		return nil, err
	}
	return &md.Rotation, nil
}

// RotateKey adds a new primary version to an Enabled key now (on demand).
// Older versions keep decrypting. Two concurrent rotations of one key (even
// on different replicas) create exactly one version; the loser gets
// ErrConcurrentUpdate.
func (s *Service) RotateKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	id, err := s.resolve(ctx, keyID, false)
	if err != nil {
		return nil, err
	}
	k, _, err := s.rotate(ctx, id, false)
	if err != nil {
		return nil, err
	}
	return s.metadata(ctx, k)
}

// rotate is the atomic rotation: compute the new version, validate the
// version invariants, persist version and key together under
// compare-and-swap, and only then touch in-memory state. If persisting
// fails, the new material is destroyed (or left for CleanupOrphans) and
// the caches are invalidated, so the key keeps working on its old primary.
// It returns the key as rotated and its primary version before.
func (s *Service) rotate(ctx context.Context, id string, scheduled bool) (*store.Key, int64, error) {
	k, vs, err := s.st.LoadKey(ctx, id)
	if err != nil {
		return nil, 0, storeErr(err)
	}
	if err := checkState(OpRotateKey, k.State); err != nil {
		return nil, 0, err
	}
	if k.Origin == OriginExternal {
		return nil, 0, validationf("keys with imported material cannot be rotated")
	}
	oldPrimary := k.PrimaryVersion
	existing := make(map[int64]store.KeyVersion, len(vs))
	var max int64
	for _, v := range vs {
		existing[v.Version] = v
		if v.Version > max {
			max = v.Version
		}
	}
	now := s.now()
	v, mat, err := s.newVersion(ctx, &k, max+1, nil, now)
	if err != nil {
		return nil, 0, err
	}
	if err := checkVersionInvariants(&k, existing, v); err != nil {
		s.discardVersion(ctx, v, mat)
		return nil, 0, err
	}
	fields := map[string]any{"primary_version": v.Version}
	if k.RotationEnabled && (scheduled || k.NextRotationAt == nil) {
		fields["next_rotation_at"] = now.Add(time.Duration(k.RotationPeriodDays) * 24 * time.Hour)
	}
	if err := s.st.AddVersion(ctx, &v, k.Revision, fields, now); err != nil {
		s.discardVersion(ctx, v, mat)
		s.invalidate(id)
		return nil, 0, storeErr(err)
	}
	if mat != nil {
		s.material.put(id, v.Version, mat)
		hsm.Zero(mat)
	}
	s.invalidate(id)
	k, err = s.st.GetKey(ctx, id)
	if err != nil {
		return nil, 0, storeErr(err)
	}
	return &k, oldPrimary, nil
}

// ListKeyVersions returns the versions of a key in ascending order, with
// their decryption usage: the counts stored by every replica plus this
// replica's unflushed ones.
func (s *Service) ListKeyVersions(ctx context.Context, keyID string) ([]KeyVersionInfo, error) {
	k, err := s.getKey(ctx, keyID, OpListKeyVersions)
	if err != nil {
		return nil, err
	}
	// Hold the flush lock: a flush in progress has taken its counts out of
	// memory but not yet stored them, and would otherwise be missing from
	// both halves of the sum.
	s.usage.flushMu.Lock()
	defer s.usage.flushMu.Unlock()
	vs, err := s.st.Versions(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	out := make([]KeyVersionInfo, 0, len(vs))
	for i := range vs {
		out = append(out, s.versionInfo(&k, &vs[i]))
	}
	return out, nil
}

// ListTags returns a key's tags.
func (s *Service) ListTags(ctx context.Context, keyID string) (map[string]string, error) {
	k, err := s.getKey(ctx, keyID, OpListTags)
	if err != nil {
		return nil, err
	}
	return s.tagsOf(ctx, k.ID)
}

func (s *Service) tagsOf(ctx context.Context, id string) (map[string]string, error) {
	ts, err := s.st.Tags(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if ts[id] == nil {
		return map[string]string{}, nil
	}
	return ts[id], nil
}

// TagKey adds or overwrites tags and returns all tags of the key.
func (s *Service) TagKey(ctx context.Context, in TagKeyInput) (map[string]string, error) {
	if len(in.Tags) == 0 {
		return nil, validationf("tags must not be empty")
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	k, err := s.getKey(ctx, in.KeyID, OpTagKey)
	if err != nil {
		return nil, err
	}
	cur, err := s.tagsOf(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	n := len(cur)
	for tk := range in.Tags {
		if _, ok := cur[tk]; !ok {
			n++
		}
	}
	if n > MaxTagsPerKey {
		return nil, validationf("at most %d tags per key", MaxTagsPerKey)
	}
	if err := s.st.PutTags(ctx, k.ID, in.Tags); err != nil {
		return nil, storeErr(err)
	}
	return s.tagsOf(ctx, k.ID)
}

// UntagKey removes tags by key and returns the remaining tags.
func (s *Service) UntagKey(ctx context.Context, in UntagKeyInput) (map[string]string, error) {
	if len(in.TagKeys) == 0 {
		return nil, validationf("tag_keys must not be empty")
	}
	k, err := s.getKey(ctx, in.KeyID, OpTagKey)
	if err != nil {
		return nil, err
	}
	if err := s.st.DeleteTags(ctx, k.ID, in.TagKeys); err != nil {
		return nil, storeErr(err)
	}
	return s.tagsOf(ctx, k.ID)
}

// CreateAlias creates a unique alias ("alias/...") for a key.
func (s *Service) CreateAlias(ctx context.Context, in CreateAliasInput) (*AliasInfo, error) {
	if err := validateAliasName(in.AliasName); err != nil {
		return nil, err
	}
	if strings.HasPrefix(in.KeyID, AliasPrefix) {
		return nil, validationf("key_id of an alias must be a key id")
	}
	k, err := s.getKey(ctx, in.KeyID, OpCreateAlias)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if err := s.st.CreateAlias(ctx, &store.Alias{Name: in.AliasName, KeyID: k.ID, CreatedAt: now, UpdatedAt: now}); err != nil {
		return nil, storeErr(err)
	}
	s.invalidateAlias(in.AliasName)
	return &AliasInfo{AliasName: in.AliasName, KeyID: k.ID}, nil
}

// UpdateAlias points an existing alias at another key. Other replicas
// follow within Config.MetadataTTL.
func (s *Service) UpdateAlias(ctx context.Context, in UpdateAliasInput) (*AliasInfo, error) {
	if err := validateAliasName(in.AliasName); err != nil {
		return nil, err
	}
	if strings.HasPrefix(in.KeyID, AliasPrefix) {
		return nil, validationf("key_id of an alias must be a key id")
	}
	k, err := s.getKey(ctx, in.KeyID, OpCreateAlias)
	if err != nil {
		return nil, err
	}
	if err := s.st.UpdateAlias(ctx, in.AliasName, k.ID, s.now()); err != nil {
		return nil, storeErr(err)
	}
	s.invalidateAlias(in.AliasName)
	return &AliasInfo{AliasName: in.AliasName, KeyID: k.ID}, nil
}

// DeleteAlias removes an alias (in any key state).
func (s *Service) DeleteAlias(ctx context.Context, aliasName string) error {
	if err := validateAliasName(aliasName); err != nil {
		return err
	}
	err := s.st.DeleteAlias(ctx, aliasName)
	s.invalidateAlias(aliasName)
	return storeErr(err)
}

// GetAlias returns one alias.
func (s *Service) GetAlias(ctx context.Context, aliasName string) (*AliasInfo, error) {
	if err := validateAliasName(aliasName); err != nil {
		return nil, err
	}
	a, err := s.st.GetAlias(ctx, aliasName)
	if err != nil {
		return nil, storeErr(err)
	}
	return &AliasInfo{AliasName: a.Name, KeyID: a.KeyID}, nil
}

// ListAliases returns all aliases, or those of one key (id or alias) when
// keyID is set, ordered by name.
func (s *Service) ListAliases(ctx context.Context, keyID string) ([]AliasInfo, error) {
	if keyID != "" {
		id, err := s.resolve(ctx, keyID, false)
		if err != nil {
			return nil, err
		}
		keyID = id
	}
	as, err := s.st.ListAliases(ctx, keyID)
	if err != nil {
		return nil, err
	}
	out := make([]AliasInfo, 0, len(as))
	for _, a := range as {
		out = append(out, AliasInfo{AliasName: a.Name, KeyID: a.KeyID})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AliasName < out[j].AliasName })
	return out, nil
}
