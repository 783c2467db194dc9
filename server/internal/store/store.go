package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Store runs the key service's queries on one GORM database. It is safe for
// concurrent use; several Stores (replicas) may share one database.
type Store struct {
	db *gorm.DB
}

// New returns a Store on db. Apply Migrations first.
func New(db *gorm.DB) *Store { return &Store{db: db} }

// DB returns the underlying handle (for tests and for wiring).
func (s *Store) DB() *gorm.DB { return s.db }

func (s *Store) with(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// isDuplicate recognises unique-constraint violations on every dialect.
func isDuplicate(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || // SQLite
		strings.Contains(msg, "Error 1062") || strings.Contains(msg, "Duplicate entry") || // MySQL/MariaDB
		strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "duplicate key value") // PostgreSQL
}

func wrapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case isDuplicate(err):
		return fmt.Errorf("%w: %v", ErrDuplicate, err)
	}
	return err
}

// CreateKey inserts a key with its initial versions, aliases and tags in one
// transaction. A taken alias fails with ErrDuplicate and nothing is written.
func (s *Store) CreateKey(ctx context.Context, k *Key, versions []KeyVersion, aliases []Alias, tags []Tag) error {
	return s.CreateKeyIdempotent(ctx, nil, k, versions, aliases, tags)
}

// CreateKeyIdempotent is CreateKey that also inserts idem (when not nil)
// first in the same transaction: a second key for the same owner and token
// fails with ErrDuplicate and nothing is written.
func (s *Store) CreateKeyIdempotent(ctx context.Context, idem *KeyIdempotency, k *Key, versions []KeyVersion, aliases []Alias, tags []Tag) error {
	return wrapErr(s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if idem != nil {
			if err := tx.Create(idem).Error; err != nil {
				return err
			}
		}
		if err := tx.Create(k).Error; err != nil {
			return err
		}
		if err := completeIntents(tx, versions...); err != nil {
			return err
		}
		for _, batch := range []any{versions, aliases, tags} {
			switch b := batch.(type) {
			case []KeyVersion:
				if len(b) > 0 {
					if err := tx.Create(&b).Error; err != nil {
						return err
					}
				}
			case []Alias:
				for i := range b {
					if err := createAlias(tx, &b[i]); err != nil {
						return err
					}
				}
			case []Tag:
				if len(b) > 0 {
					if err := tx.Create(&b).Error; err != nil {
						return err
					}
				}
			}
		}
		return nil
	}))
}

// GetKeyIdempotency returns the record of owner's token, or ErrNotFound.
func (s *Store) GetKeyIdempotency(ctx context.Context, owner, token string) (KeyIdempotency, error) {
	var r KeyIdempotency
	err := s.with(ctx).Where("owner = ? AND token = ?", owner, token).Take(&r).Error
	return r, wrapErr(err)
}

// GetKey returns the key with id, or ErrNotFound.
func (s *Store) GetKey(ctx context.Context, id string) (Key, error) {
	var k Key
	err := s.with(ctx).Where("id = ?", id).Take(&k).Error
	return k, wrapErr(err)
}

// Versions returns the versions of key id in ascending order.
func (s *Store) Versions(ctx context.Context, id string) ([]KeyVersion, error) {
	var vs []KeyVersion
	err := s.with(ctx).Where("key_id = ?", id).Order("version").Find(&vs).Error
	return vs, wrapErr(err)
}

// LoadKey returns the key with id and all its versions.
func (s *Store) LoadKey(ctx context.Context, id string) (Key, []KeyVersion, error) {
	k, err := s.GetKey(ctx, id)
	if err != nil {
		return Key{}, nil, err
	}
	vs, err := s.Versions(ctx, id)
	return k, vs, err
}

func casUpdate(tx *gorm.DB, id string, rev int64, fields map[string]any, now time.Time) error {
	upd := make(map[string]any, len(fields)+2)
	for k, v := range fields {
		upd[k] = v
	}
	upd["revision"] = rev + 1
	upd["updated_at"] = now
	res := tx.Model(&Key{}).Where("id = ? AND revision = ?", id, rev).Updates(upd)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		var n int64
		if err := tx.Model(&Key{}).Where("id = ?", id).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return ErrConflict
	}
	return nil
}

// UpdateKey sets fields (column name to value) on key id if its revision is
// still rev, and bumps the revision. It fails with ErrConflict when another
// writer changed the key first, ErrNotFound when there is no such key.
func (s *Store) UpdateKey(ctx context.Context, id string, rev int64, fields map[string]any, now time.Time) error {
	return wrapErr(casUpdate(s.with(ctx), id, rev, fields, now))
}

// AddVersion inserts v and, in the same transaction, applies fields to its
// key under the revision check (as UpdateKey). A version number that already
// exists or a changed revision fails with ErrConflict and writes nothing.
func (s *Store) AddVersion(ctx context.Context, v *KeyVersion, rev int64, fields map[string]any, now time.Time) error {
	err := s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(v).Error; err != nil {
			return err
		}
		if err := completeIntents(tx, *v); err != nil {
			return err
		}
		return casUpdate(tx, v.KeyID, rev, fields, now)
	})
	if isDuplicate(err) {
		return fmt.Errorf("%w: version %d of %s exists", ErrConflict, v.Version, v.KeyID)
	}
	return wrapErr(err)
}

// MarkVersionDestroyed erases the wrapped material of a version and marks it
// destroyed.
func (s *Store) MarkVersionDestroyed(ctx context.Context, keyID string, version int64, now time.Time) error {
	res := s.with(ctx).Model(&KeyVersion{}).Where("key_id = ? AND version = ?", keyID, version).
		Updates(map[string]any{"state": VersionDestroyed, "wrapped_material": nil, "destroyed_at": now})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// ListFilter selects keys for ListKeys. Zero fields do not filter.
type ListFilter struct {
	State    KeyState
	Alias    string // full alias name
	TagKey   string
	TagValue string // with TagKey
	Marker   string // return keys with id > Marker
	Limit    int    // at most this many (required, > 0)
}

// ListKeys returns keys ordered by id.
func (s *Store) ListKeys(ctx context.Context, f ListFilter) ([]Key, error) {
	q := s.with(ctx).Model(&Key{})
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.Alias != "" {
		q = q.Where("id IN (?)", s.db.Model(&Alias{}).Select("key_id").Where("name = ?", f.Alias))
	}
	if f.TagKey != "" {
		q = q.Where("id IN (?)", s.db.Model(&Tag{}).Select("key_id").Where("tag_key = ? AND value = ?", f.TagKey, f.TagValue))
	}
	if f.Marker != "" {
		q = q.Where("id > ?", f.Marker)
	}
	var ks []Key
	err := q.Order("id").Limit(f.Limit).Find(&ks).Error
	return ks, wrapErr(err)
}

// AliasNames returns the alias names of each given key, sorted.
func (s *Store) AliasNames(ctx context.Context, keyIDs []string) (map[string][]string, error) {
	out := make(map[string][]string, len(keyIDs))
	if len(keyIDs) == 0 {
		return out, nil
	}
	var as []Alias
	if err := s.with(ctx).Where("key_id IN ?", keyIDs).Order("name").Find(&as).Error; err != nil {
		return nil, err
	}
	for _, a := range as {
		out[a.KeyID] = append(out[a.KeyID], a.Name)
	}
	return out, nil
}

// Tags returns the tags of each given key.
func (s *Store) Tags(ctx context.Context, keyIDs []string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(keyIDs))
	if len(keyIDs) == 0 {
		return out, nil
	}
	var ts []Tag
	if err := s.with(ctx).Where("key_id IN ?", keyIDs).Find(&ts).Error; err != nil {
		return nil, err
	}
	for _, t := range ts {
		if out[t.KeyID] == nil {
			out[t.KeyID] = map[string]string{}
		}
		out[t.KeyID][t.TagKey] = t.Value
	}
	return out, nil
}

// PutTags inserts or overwrites tags of key keyID.
func (s *Store) PutTags(ctx context.Context, keyID string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	rows := make([]Tag, 0, len(tags))
	for k, v := range tags {
		rows = append(rows, Tag{KeyID: keyID, TagKey: k, Value: v})
	}
	err := s.with(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "key_id"}, {Name: "tag_key"}},
		DoUpdates: clause.AssignmentColumns([]string{"value"}),
	}).Create(&rows).Error
	return wrapErr(err)
}

// DeleteTags removes the named tags of key keyID; missing ones are ignored.
func (s *Store) DeleteTags(ctx context.Context, keyID string, tagKeys []string) error {
	if len(tagKeys) == 0 {
		return nil
	}
	return wrapErr(s.with(ctx).Where("key_id = ? AND tag_key IN ?", keyID, tagKeys).Delete(&Tag{}).Error)
}

func createAlias(tx *gorm.DB, a *Alias) error {
	var n int64
	if err := tx.Model(&Alias{}).Where("name = ?", a.Name).Count(&n).Error; err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: alias %s", ErrDuplicate, a.Name)
	}
	return tx.Create(a).Error
}

// CreateAlias inserts a. A taken name fails with ErrDuplicate.
func (s *Store) CreateAlias(ctx context.Context, a *Alias) error {
	return wrapErr(createAlias(s.with(ctx), a))
}

// GetAlias returns the alias name, or ErrNotFound.
func (s *Store) GetAlias(ctx context.Context, name string) (Alias, error) {
	var a Alias
	err := s.with(ctx).Where("name = ?", name).Take(&a).Error
	return a, wrapErr(err)
}

// ListAliases returns aliases ordered by name, of one key when keyID is set.
func (s *Store) ListAliases(ctx context.Context, keyID string) ([]Alias, error) {
	q := s.with(ctx).Order("name")
	if keyID != "" {
		q = q.Where("key_id = ?", keyID)
	}
	var as []Alias
	return as, wrapErr(q.Find(&as).Error)
}

// UpdateAlias points alias name at keyID.
func (s *Store) UpdateAlias(ctx context.Context, name, keyID string, now time.Time) error {
	res := s.with(ctx).Model(&Alias{}).Where("name = ?", name).Updates(map[string]any{"key_id": keyID, "updated_at": now})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteAlias removes alias name, or fails with ErrNotFound.
func (s *Store) DeleteAlias(ctx context.Context, name string) error {
	res := s.with(ctx).Where("name = ?", name).Delete(&Alias{})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteAliasesOf removes every alias of key keyID.
func (s *Store) DeleteAliasesOf(ctx context.Context, keyID string) error {
	return wrapErr(s.with(ctx).Where("key_id = ?", keyID).Delete(&Alias{}).Error)
}

// CreateImportToken stores t.
func (s *Store) CreateImportToken(ctx context.Context, t *ImportToken) error {
	return wrapErr(s.with(ctx).Create(t).Error)
}

// GetImportToken returns the token with id, or ErrNotFound.
func (s *Store) GetImportToken(ctx context.Context, id string) (ImportToken, error) {
	var t ImportToken
	err := s.with(ctx).Where("id = ?", id).Take(&t).Error
	return t, wrapErr(err)
}

// DeleteImportTokens removes every import token of keyID, and every
// token (of any key) that expired before now.
func (s *Store) DeleteImportTokens(ctx context.Context, keyID string, now time.Time) error {
	return wrapErr(s.with(ctx).Where("key_id = ? OR expires_at < ?", keyID, now).Delete(&ImportToken{}).Error)
}

// DueForDeletion returns PendingDeletion keys whose deletion date is not
// after now.
func (s *Store) DueForDeletion(ctx context.Context, now time.Time) ([]Key, error) {
	var ks []Key
	err := s.with(ctx).Where("state = ? AND deletion_date <= ?", KeyStatePendingDeletion, now).Order("id").Find(&ks).Error
	return ks, wrapErr(err)
}

// DueForRotation returns Enabled keys with automatic rotation on whose next
// rotation time is not after now.
func (s *Store) DueForRotation(ctx context.Context, now time.Time) ([]Key, error) {
	var ks []Key
	err := s.with(ctx).Where("state = ? AND rotation_enabled = ? AND next_rotation_at <= ?", KeyStateEnabled, true, now).
		Order("id").Find(&ks).Error
	return ks, wrapErr(err)
}

// UndestroyedVersionsOfDestroyedKeys returns versions whose material still
// exists although their key is destroyed (work left by an interrupted
// destruction).
func (s *Store) UndestroyedVersionsOfDestroyedKeys(ctx context.Context) ([]KeyVersion, error) {
	var vs []KeyVersion
	err := s.with(ctx).Where("state <> ? AND key_id IN (?)", VersionDestroyed,
		s.db.Model(&Key{}).Select("id").Where("state = ?", KeyStateDestroyed)).
		Order("key_id, version").Find(&vs).Error
	return vs, wrapErr(err)
}

// HSMObjectInUse reports whether a live (not destroyed) version references
// the HSM object id.
func (s *Store) HSMObjectInUse(ctx context.Context, objectID string) (bool, error) {
	var n int64
	err := s.with(ctx).Model(&KeyVersion{}).Where("hsm_object_id = ? AND state <> ?", objectID, VersionDestroyed).Count(&n).Error
	return n > 0, err
}

// VersionUsage is decryption usage of one key version to add to the stored
// counters: Count more decryptions, the last at LastUsed.
type VersionUsage struct {
	KeyID    string
	Version  int64
	Count    int64
	LastUsed time.Time
}

// AddVersionUsage adds each item's count to its version's decrypt_count and
// raises its last_used_at to the item's LastUsed if that is later (a zero
// LastUsed leaves it as it is), in one transaction. Replicas add, never overwrite: several may flush the same
// version at once. Versions that no longer exist are skipped.
func (s *Store) AddVersionUsage(ctx context.Context, usage []VersionUsage) error {
	if len(usage) == 0 {
		return nil
	}
	return wrapErr(s.with(ctx).Transaction(func(tx *gorm.DB) error {
		for _, u := range usage {
			cols := map[string]any{"decrypt_count": gorm.Expr("decrypt_count + ?", u.Count)}
			if !u.LastUsed.IsZero() {
				last := u.LastUsed.UTC()
				cols["last_used_at"] = gorm.Expr("CASE WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END", last, last)
			}
			err := tx.Model(&KeyVersion{}).Where("key_id = ? AND version = ?", u.KeyID, u.Version).UpdateColumns(cols).Error
			if err != nil {
				return err
			}
		}
		return nil
	}))
}

// SetVersionState changes the state of version of key keyID from one state
// to another, together with a compare-and-swap update of the key's
// revision (as UpdateKey), in one transaction. It fails with ErrConflict
// when the key's revision moved or the version is no longer in state from,
// ErrNotFound when there is no such key or version.
func (s *Store) SetVersionState(ctx context.Context, keyID string, version int64, from, to VersionState, rev int64, now time.Time) error {
	return wrapErr(s.with(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&KeyVersion{}).Where("key_id = ? AND version = ? AND state = ?", keyID, version, from).
			UpdateColumn("state", to)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			var n int64
			if err := tx.Model(&KeyVersion{}).Where("key_id = ? AND version = ?", keyID, version).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return ErrNotFound
			}
			return ErrConflict
		}
		return casUpdate(tx, keyID, rev, nil, now)
	}))
}
