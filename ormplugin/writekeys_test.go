package ormplugin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"gorm.io/gorm"
)

// freshProcess opens the plugin on db's pool with empty caches, as a new
// process would.
func freshProcess(t *testing.T, db *gorm.DB, kms KMS, cfg Config) *gorm.DB {
	t.Helper()
	fresh, err := gorm.Open(db.Dialector, &gorm.Config{Logger: db.Logger, ConnPool: db.ConnPool})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KeyID == "" {
		cfg.KeyID = testKeyID
	}
	if err := fresh.Use(New(kms, cfg)); err != nil {
		t.Fatal(err)
	}
	return fresh
}

func keyRows(t *testing.T, db *gorm.DB) map[string]int64 {
	t.Helper()
	var rows []dataKeyRow
	if err := db.Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Col]++
	}
	return out
}

// TestWritesReserveKeysOnlyForWrittenColumns: item 3.
func TestWritesReserveKeysOnlyForWrittenColumns(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		_, kms, calls := setup(t, db, Config{})
		c := sample("keys")
		if err := db.Create(&c).Error; err != nil {
			t.Fatal(err)
		}
		before := keyRows(t, db)

		// A fresh process with kmsd down updates a non-encrypted column.
		kms.SetReachable(false)
		fresh := freshProcess(t, db, kms, Config{})
		g0 := calls.generate.Load()
		cases := []struct {
			name string
			run  func() error
		}{
			{"Update", func() error { return fresh.Model(&Customer{ID: c.ID}).Update("name", "n1").Error }},
			{"UpdateColumn", func() error { return fresh.Model(&Customer{ID: c.ID}).UpdateColumn("name", "n2").Error }},
			{"UpdatesMap", func() error { return fresh.Model(&Customer{ID: c.ID}).Updates(map[string]any{"name": "n3"}).Error }},
			{"UpdatesStruct", func() error { return fresh.Model(&Customer{ID: c.ID}).Updates(Customer{Name: "n4"}).Error }},
			{"SelectUpdates", func() error {
				return fresh.Model(&Customer{ID: c.ID}).Select("name").Updates(Customer{Name: "n5", Email: "ignored@example.com"}).Error
			}},
			{"CreateWithNulls", func() error { // only the non-NULL column needs a key: kmsd is still needed for it
				err := fresh.Create(&Customer{Name: "nulls", Email: "x@example.com"}).Error
				if !errors.Is(err, ErrKMS) {
					return errors.New("create with kmsd down succeeded without a key")
				}
				return nil
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.run(); err != nil {
					t.Fatalf("with kmsd down: %v", err)
				}
			})
		}
		if g := calls.generate.Load() - g0; g != 0 {
			t.Fatalf("%d GenerateDataKey calls for non-encrypted updates", g)
		}
		var got Customer
		if err := db.First(&got, c.ID).Error; err != nil || got.Name != "n5" || got.Email != c.Email {
			t.Fatalf("after updates: %v %+v", err, got)
		}
		kms.SetReachable(true)

		// Writing one encrypted column creates (or adopts) one key, not seven.
		// The same master key by id rather than alias: a plugin adopts only
		// keys created under its own KeyID, so this one creates keys.
		byID := Config{KeyID: kms.(*realKMS).keyID}
		fresh = freshProcess(t, db, kms, byID)
		g0 = calls.generate.Load()
		if err := fresh.Model(&Customer{ID: c.ID}).Update("phone", "+1").Error; err != nil {
			t.Fatal(err)
		}
		if g := calls.generate.Load() - g0; g != 1 {
			t.Fatalf("Update(phone) in a fresh process: %d GenerateDataKey calls, want 1", g)
		}
		after := keyRows(t, db)
		for col, n := range after {
			want := before[col]
			if col == "phone" {
				want++
			}
			if n != want {
				t.Fatalf("key rows of %s: %d -> %d", col, before[col], n)
			}
		}
		// A create whose optional fields are NULL reserves no key for them.
		g0 = calls.generate.Load()
		fresh = freshProcess(t, db, kms, byID)
		if err := fresh.Create(&Customer{Name: "only-email", Email: "oe@example.com"}).Error; err != nil {
			t.Fatal(err)
		}
		// Email and Profile (a struct, never NULL) are written; the others are NULL.
		if g := calls.generate.Load() - g0; g != 2 {
			t.Fatalf("Create with NULL fields: %d GenerateDataKey calls, want 2 (email, profile)", g)
		}
	})
}

// TestRestartAdoptsLiveKeys: item 6, key rows do not grow per process start.
func TestRestartAdoptsLiveKeys(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		_, kms, calls := setup(t, db, Config{})
		c := sample("restart")
		if err := db.Create(&c).Error; err != nil {
			t.Fatal(err)
		}
		before := keyRows(t, db)
		g0 := calls.generate.Load()
		for i := 0; i < 3; i++ { // three restarts
			fresh := freshProcess(t, db, kms, Config{})
			x := sample("restarted")
			if err := fresh.Create(&x).Error; err != nil {
				t.Fatal(err)
			}
			var got Customer
			if err := db.First(&got, x.ID).Error; err != nil || got.Email != x.Email {
				t.Fatalf("read back: %v", err)
			}
		}
		if g := calls.generate.Load() - g0; g != 0 {
			t.Fatalf("%d GenerateDataKey calls across restarts, want 0", g)
		}
		if after := keyRows(t, db); len(after) != len(before) || after["email"] != before["email"] {
			t.Fatalf("key rows grew across restarts: %v -> %v", before, after)
		}
		var rows []dataKeyRow
		db.Find(&rows)
		for _, r := range rows {
			if r.ReqKeyID != testKeyID || r.GenVersion != 1 {
				t.Fatalf("key row %+v", r)
			}
		}
	})
}

// TestReencryptDeletesUnreferencedKeys: item 6, old key rows go after a
// full re-encryption; status counts keys in use.
func TestReencryptDeletesUnreferencedKeys(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, kms, _ := setup(t, db, Config{})
		fillLegacy(t, db, 9)
		if _, err := p.MigratePlaintext(context.Background(), db, &Account{}, RewriteOptions{BatchSize: 4}); err != nil {
			t.Fatal(err)
		}
		status := func() map[string]ColumnStatus {
			st, err := TableStatus(context.Background(), db, accountSpec)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]ColumnStatus{}
			for _, c := range st {
				out[c.Column] = c
			}
			return out
		}
		s0 := status()
		if s0["email"].KeysInUse != 1 || s0["email"].KeyRows != 1 || s0["email"].Plaintext != 0 {
			t.Fatalf("status after migration: %+v", s0)
		}
		// The grace keeps keys other processes may still use.
		prog, err := p.Reencrypt(context.Background(), db, &Account{}, RewriteOptions{})
		if err != nil || prog.KeysDeleted != 0 {
			t.Fatalf("reencrypt with default grace: %v %+v", err, prog)
		}
		if s := status(); s["email"].KeyRows != 2 || s["email"].KeysInUse != 1 {
			t.Fatalf("status after reencrypt: %+v", s)
		}
		prog, err = p.Reencrypt(context.Background(), db, &Account{}, RewriteOptions{KeyGrace: time.Nanosecond})
		// email, profile and note each have the migration's key and the
		// first re-encryption's key, now unreferenced.
		if err != nil || prog.KeysDeleted != 6 {
			t.Fatalf("reencrypt with pruning: %v %+v", err, prog)
		}
		s := status()
		for col, c := range s {
			if c.KeyRows != c.KeysInUse || c.KeysInUse != 1 {
				t.Fatalf("%s after pruning: %+v", col, c)
			}
		}
		var all []Account
		if err := freshProcess(t, db, kms, Config{}).Order("id").Find(&all).Error; err != nil || len(all) != 9 {
			t.Fatalf("cold read after pruning: %v", err)
		}
	})
}

// TestOlderThanVersionAfterRenewal: item 8, --older-than-version matches the
// version a data key was generated under, not the one wrapping it now.
func TestOlderThanVersionAfterRenewal(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, kms, _ := setup(t, db, Config{})
		seed(t, db, 3)
		kms.Rotate()
		if _, err := RenewDataKeys(context.Background(), db, kms, RenewOptions{}); err != nil {
			t.Fatal(err)
		}
		prog, err := p.Reencrypt(context.Background(), db, &Customer{}, RewriteOptions{OlderThanVersion: 2, KeepKeys: true})
		if err != nil || prog.Found != 3*7 || prog.Rewritten != 3*7 {
			t.Fatalf("reencrypt older than 2 after renewal: %v %+v", err, prog)
		}
		prog, err = p.Reencrypt(context.Background(), db, &Customer{}, RewriteOptions{OlderThanVersion: 2, KeepKeys: true})
		if err != nil || prog.Found != 0 {
			t.Fatalf("second run: %v %+v", err, prog)
		}
	})
}

// TestSQLiteMemoryRefused: item 7.
func TestSQLiteMemoryRefused(t *testing.T) {
	kms, _ := newTestKMS(t)
	for _, dsn := range []string{":memory:", "file::memory:", "file:x?mode=memory"} {
		db, err := dbtest.Connect(dbtest.SQLite, dsn)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Use(New(kms, Config{KeyID: testKeyID}))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "cache=shared") {
			t.Fatalf("%s: err = %v, want ErrConfig with advice", dsn, err)
		}
		if s, err := db.DB(); err == nil {
			_ = s.Close()
		}
	}
	// A shared in-memory database works, with one data key per column.
	db, err := dbtest.Connect(dbtest.SQLite, "file:ormplugin_shared_mem?mode=memory&cache=shared&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			_ = s.Close()
		}
	})
	if err := db.Use(New(kms, Config{KeyID: testKeyID})); err != nil {
		t.Fatal(err)
	}
	if err := db.AutoMigrate(&Customer{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		err := db.Transaction(func(tx *gorm.DB) error {
			c := sample("mem")
			return tx.Create(&c).Error
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := keyRows(t, db)["email"]; n != 1 {
		t.Fatalf("%d email data keys for 3 transactions, want 1", n)
	}
	var all []Customer
	if err := db.Find(&all).Error; err != nil || len(all) != 3 {
		t.Fatalf("read: %v", err)
	}
}
