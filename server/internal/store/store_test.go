package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"gorm.io/gorm"
)

// TestFrozenEnumValues pins the stored spelling of every enum. Changing one
// breaks existing databases: add a migration instead.
func TestFrozenEnumValues(t *testing.T) {
	cases := []struct{ got, want string }{
		{string(store.KeyStateEnabled), "Enabled"},
		{string(store.KeyStateDisabled), "Disabled"},
		{string(store.KeyStatePendingDeletion), "PendingDeletion"},
		{string(store.KeyStatePendingImport), "PendingImport"},
		{string(store.KeyStateDestroyed), "Destroyed"},
		{string(store.KeySpecAES256), "AES_256"},
		{string(store.KeySpecAES128), "AES_128"},
		{string(store.ProtectionHSM), "HSM"},
		{string(store.ProtectionSoftware), "SOFTWARE"},
		{string(store.OriginKMS), "KMS"},
		{string(store.OriginExternal), "EXTERNAL"},
		{string(store.VersionEnabled), "Enabled"},
		{string(store.VersionDestroyed), "Destroyed"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("stored enum %q changed, want %q", c.got, c.want)
		}
	}
	for spec, bits := range map[store.KeySpec]int{store.KeySpecAES256: 256, store.KeySpecAES128: 128, "RSA": 0} {
		if spec.Bits() != bits {
			t.Errorf("%s.Bits() = %d", spec, spec.Bits())
		}
	}
}

func TestTableNames(t *testing.T) {
	for _, c := range []struct {
		m    interface{ TableName() string }
		want string
	}{
		{store.Key{}, "kms_keys"}, {store.KeyVersion{}, "kms_key_versions"}, {store.Alias{}, "kms_aliases"},
		{store.Tag{}, "kms_tags"}, {store.ImportToken{}, "kms_import_tokens"},
	} {
		if c.m.TableName() != c.want {
			t.Errorf("%T table %s", c.m, c.m.TableName())
		}
	}
}

func open(t *testing.T, db *gorm.DB) *store.Store {
	t.Helper()
	if err := migrate.Apply(db, store.Migrations()...); err != nil {
		t.Fatal(err)
	}
	return store.New(db)
}

func TestMigrations(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		open(t, db)
		if err := migrate.Apply(db, store.Migrations()...); err != nil {
			t.Fatalf("second apply: %v", err)
		}
		ids, err := migrate.Applied(db)
		if err != nil || len(ids) != len(store.Migrations()) || ids[0] != "store/0001_init" {
			t.Fatalf("applied = %v, %v", ids, err)
		}
		for _, m := range []any{&store.Key{}, &store.KeyVersion{}, &store.Alias{}, &store.Tag{}, &store.ImportToken{}} {
			if !db.Migrator().HasTable(m) {
				t.Fatalf("table of %T missing", m)
			}
		}
		// The migrated schema has every column of the current models: a
		// model change without a migration step fails here.
		for _, m := range []any{&store.Key{}, &store.KeyVersion{}, &store.Alias{}, &store.Tag{}, &store.ImportToken{}} {
			stmt := &gorm.Statement{DB: db}
			if err := stmt.Parse(m); err != nil {
				t.Fatal(err)
			}
			if len(stmt.Schema.DBNames) < 3 {
				t.Fatalf("%T: parsed %v", m, stmt.Schema.DBNames)
			}
			for _, col := range stmt.Schema.DBNames {
				if !db.Migrator().HasColumn(m, col) {
					t.Errorf("%T: column %s missing after migrations", m, col)
				}
			}
		}
	})
}

func newKey(id string, now time.Time) *store.Key {
	return &store.Key{ID: id, KeySpec: store.KeySpecAES256, ProtectionLevel: store.ProtectionSoftware, Origin: store.OriginKMS,
		State: store.KeyStateEnabled, PrimaryVersion: 1, RotationPeriodDays: 365, Revision: 1, CreatedAt: now, UpdatedAt: now}
}

func TestKeysVersionsAndCAS(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		s := open(t, db)
		v1 := store.KeyVersion{KeyID: "k1", Version: 1, State: store.VersionEnabled, WrappedMaterial: []byte{1, 2, 3}, CreatedAt: now}
		err := s.CreateKey(ctx, newKey("k1", now), []store.KeyVersion{v1},
			[]store.Alias{{Name: "alias/one", KeyID: "k1", CreatedAt: now, UpdatedAt: now}},
			[]store.Tag{{KeyID: "k1", TagKey: "team", Value: "pay"}})
		if err != nil {
			t.Fatal(err)
		}
		// Alias taken: the whole key is rolled back.
		err = s.CreateKey(ctx, newKey("k2", now), nil, []store.Alias{{Name: "alias/one", KeyID: "k2"}}, nil)
		if !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("taken alias: %v", err)
		}
		if _, err := s.GetKey(ctx, "k2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("k2 exists after rollback: %v", err)
		}
		if err := s.CreateKey(ctx, newKey("k1", now), nil, nil, nil); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("duplicate key id: %v", err)
		}
		// Enums are stored as their frozen strings.
		var state, spec, level, origin, vstate string
		if err := db.Raw("SELECT k.state, k.key_spec, k.protection_level, k.origin, v.state FROM kms_keys k JOIN kms_key_versions v ON v.key_id = k.id WHERE k.id = ?", "k1").
			Row().Scan(&state, &spec, &level, &origin, &vstate); err != nil {
			t.Fatal(err)
		}
		if state != "Enabled" || spec != "AES_256" || level != "SOFTWARE" || origin != "KMS" || vstate != "Enabled" {
			t.Fatalf("stored enums: %s %s %s %s %s", state, spec, level, origin, vstate)
		}
		k, vs, err := s.LoadKey(ctx, "k1")
		if err != nil || k.Revision != 1 || len(vs) != 1 || string(vs[0].WrappedMaterial) != "\x01\x02\x03" {
			t.Fatalf("load: %+v %+v %v", k, vs, err)
		}
		// Compare-and-swap.
		if err := s.UpdateKey(ctx, "k1", 1, map[string]any{"state": store.KeyStateDisabled}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateKey(ctx, "k1", 1, map[string]any{"state": store.KeyStateEnabled}, now); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale revision: %v", err)
		}
		if err := s.UpdateKey(ctx, "nope", 1, map[string]any{"state": store.KeyStateEnabled}, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing key: %v", err)
		}
		k, _ = s.GetKey(ctx, "k1")
		if k.State != store.KeyStateDisabled || k.Revision != 2 {
			t.Fatalf("after CAS: %+v", k)
		}
		// AddVersion: duplicate version number and stale revision both conflict, atomically.
		v2 := store.KeyVersion{KeyID: "k1", Version: 2, State: store.VersionEnabled, WrappedMaterial: []byte{9}, CreatedAt: now}
		if err := s.AddVersion(ctx, &v2, 1, map[string]any{"primary_version": 2}, now); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale add: %v", err)
		}
		if vs, _ := s.Versions(ctx, "k1"); len(vs) != 1 {
			t.Fatal("version row kept after a failed CAS")
		}
		dup := v1
		if err := s.AddVersion(ctx, &dup, 2, map[string]any{"primary_version": 1}, now); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate version: %v", err)
		}
		if err := s.AddVersion(ctx, &v2, 2, map[string]any{"primary_version": 2}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkVersionDestroyed(ctx, "k1", 1, now); err != nil {
			t.Fatal(err)
		}
		vs, _ = s.Versions(ctx, "k1")
		if len(vs) != 2 || vs[0].State != store.VersionDestroyed || vs[0].WrappedMaterial != nil || vs[1].Version != 2 {
			t.Fatalf("versions: %+v", vs)
		}
	})
}

func TestAliasesTagsAndQueries(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		s := open(t, db)
		for _, id := range []string{"a", "b", "c"} {
			if err := s.CreateKey(ctx, newKey(id, now), nil, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateAlias(ctx, &store.Alias{Name: "alias/x", KeyID: "a"}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAlias(ctx, &store.Alias{Name: "alias/x", KeyID: "b"}); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("dup alias: %v", err)
		}
		if err := s.UpdateAlias(ctx, "alias/x", "b", now); err != nil {
			t.Fatal(err)
		}
		if a, err := s.GetAlias(ctx, "alias/x"); err != nil || a.KeyID != "b" {
			t.Fatalf("get: %+v %v", a, err)
		}
		if err := s.UpdateAlias(ctx, "alias/none", "b", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if err := s.PutTags(ctx, "a", map[string]string{"t": "1", "u": "2"}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutTags(ctx, "a", map[string]string{"t": "3"}); err != nil {
			t.Fatalf("upsert: %v", err)
		}
		if err := s.DeleteTags(ctx, "a", []string{"u"}); err != nil {
			t.Fatal(err)
		}
		tags, _ := s.Tags(ctx, []string{"a", "b"})
		if len(tags["a"]) != 1 || tags["a"]["t"] != "3" || tags["b"] != nil {
			t.Fatalf("tags: %v", tags)
		}
		names, _ := s.AliasNames(ctx, []string{"a", "b"})
		if len(names["a"]) != 0 || len(names["b"]) != 1 {
			t.Fatalf("alias names: %v", names)
		}
		for _, c := range []struct {
			f    store.ListFilter
			want []string
		}{
			{store.ListFilter{Limit: 10}, []string{"a", "b", "c"}},
			{store.ListFilter{Limit: 1, Marker: "a"}, []string{"b"}},
			{store.ListFilter{Limit: 10, Alias: "alias/x"}, []string{"b"}},
			{store.ListFilter{Limit: 10, TagKey: "t", TagValue: "3"}, []string{"a"}},
			{store.ListFilter{Limit: 10, State: store.KeyStateDisabled}, nil},
		} {
			ks, err := s.ListKeys(ctx, c.f)
			if err != nil || len(ks) != len(c.want) {
				t.Fatalf("%+v: %d keys, %v", c.f, len(ks), err)
			}
			for i := range ks {
				if ks[i].ID != c.want[i] {
					t.Fatalf("%+v: got %s", c.f, ks[i].ID)
				}
			}
		}
		if err := s.DeleteAlias(ctx, "alias/x"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAlias(ctx, "alias/x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		// Due queries.
		past := now.Add(-time.Hour)
		if err := s.UpdateKey(ctx, "a", 1, map[string]any{"state": store.KeyStatePendingDeletion, "deletion_date": past}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateKey(ctx, "b", 1, map[string]any{"state": store.KeyStatePendingDeletion, "deletion_date": now.Add(time.Hour)}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateKey(ctx, "c", 1, map[string]any{"rotation_enabled": true, "next_rotation_at": past}, now); err != nil {
			t.Fatal(err)
		}
		if ks, err := s.DueForDeletion(ctx, now); err != nil || len(ks) != 1 || ks[0].ID != "a" {
			t.Fatalf("due for deletion: %v %v", ks, err)
		}
		if ks, err := s.DueForRotation(ctx, now); err != nil || len(ks) != 1 || ks[0].ID != "c" {
			t.Fatalf("due for rotation: %v %v", ks, err)
		}
		// Import tokens.
		tok := store.ImportToken{ID: "t1", KeyID: "b", WrappedPrivateKey: []byte{1}, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
		if err := s.CreateImportToken(ctx, &tok); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetImportToken(ctx, "t1"); err != nil || got.KeyID != "b" {
			t.Fatalf("token: %+v %v", got, err)
		}
		if err := s.DeleteImportTokens(ctx, "b", now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetImportToken(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		// HSM object references.
		hv := store.KeyVersion{KeyID: "c", Version: 1, State: store.VersionEnabled, HSMObjectID: "obj-1", CreatedAt: now}
		if err := s.AddVersion(ctx, &hv, 2, map[string]any{"primary_version": 1}, now); err != nil {
			t.Fatal(err)
		}
		if used, err := s.HSMObjectInUse(ctx, "obj-1"); err != nil || !used {
			t.Fatalf("in use: %v %v", used, err)
		}
		if used, _ := s.HSMObjectInUse(ctx, "obj-2"); used {
			t.Fatal("unknown object in use")
		}
		_ = s.MarkVersionDestroyed(ctx, "c", 1, now)
		if used, _ := s.HSMObjectInUse(ctx, "obj-1"); used {
			t.Fatal("destroyed version still holds its object")
		}
	})
}
