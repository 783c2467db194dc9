package ormplugin

import (
	"context"
	"reflect"
	"testing"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"gorm.io/gorm"
)

// coldRead reads every customer through a new plugin instance (empty caches).
func coldRead(t *testing.T, db *gorm.DB, kms KMS) []Customer {
	t.Helper()
	fresh, err := gorm.Open(db.Dialector, &gorm.Config{Logger: db.Logger, ConnPool: db.ConnPool})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Use(New(kms, Config{KeyID: testKeyID})); err != nil {
		t.Fatal(err)
	}
	var out []Customer
	if err := fresh.Order("id").Find(&out).Error; err != nil {
		t.Fatalf("cold read: %v", err)
	}
	return out
}

func versionsOf(t *testing.T, db *gorm.DB) map[int]int64 {
	t.Helper()
	vs, err := DataKeyVersions(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, v := range vs {
		out[v.KeyVersion] += v.Keys
	}
	return out
}

func seed(t *testing.T, db *gorm.DB, n int) []Customer {
	t.Helper()
	cs := make([]Customer, n)
	for i := range cs {
		cs[i] = sample("renew")
	}
	if err := db.Create(&cs).Error; err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestRenewDataKeys(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		_, kms, calls := setup(t, db, Config{})
		seed(t, db, 12)
		before := rawEmails(t, db, "customers")
		if got := versionsOf(t, db); !reflect.DeepEqual(got, map[int]int64{1: 8}) {
			t.Fatalf("versions before: %v", got)
		}
		kms.Rotate()
		var progress []RenewProgress
		prog, err := RenewDataKeys(context.Background(), db, kms, RenewOptions{BatchSize: 3, Progress: func(p RenewProgress) { progress = append(progress, p) }})
		if err != nil {
			t.Fatal(err)
		}
		if prog.Checked != 8 || prog.Rewrapped != 8 || len(progress) != 4 {
			t.Fatalf("renew: %+v, %d progress calls", prog, len(progress))
		}
		if got := versionsOf(t, db); !reflect.DeepEqual(got, map[int]int64{2: 8}) {
			t.Fatalf("versions after: %v", got)
		}
		if after := rawEmails(t, db, "customers"); !reflect.DeepEqual(before, after) {
			t.Fatal("renewal rewrote stored values")
		}
		for _, c := range coldRead(t, db, kms) {
			if c.Email != "renew@example.com" {
				t.Fatalf("cold read after renewal: %q", c.Email)
			}
		}
		// Nothing left to do: kmsd is asked for the first key only (which
		// tells the primary version), the other 7 are current; nothing is
		// rewritten.
		n := calls.reencrypt.Load()
		prog, err = RenewDataKeys(context.Background(), db, kms, RenewOptions{})
		if err != nil || prog.Rewrapped != 0 || prog.Checked != 1 || prog.Current != 7 || calls.reencrypt.Load()-n != 1 {
			t.Fatalf("second renew: %+v %v", prog, err)
		}
		// kmsd down: error, nothing changed.
		kms.Rotate()
		kms.SetReachable(false)
		if _, err := RenewDataKeys(context.Background(), db, kms, RenewOptions{}); err == nil {
			t.Fatal("renew with kms down succeeded")
		}
		if got := versionsOf(t, db); !reflect.DeepEqual(got, map[int]int64{2: 8}) {
			t.Fatalf("versions after failed renew: %v", got)
		}
	})
}

func storedKeyIDs(t *testing.T, db *gorm.DB) map[int64]bool {
	t.Helper()
	out := map[int64]bool{}
	for _, e := range rawEmails(t, db, "customers") {
		v, err := parseValue([]byte(e))
		if err != nil {
			t.Fatal(err)
		}
		out[v.dkID] = true
	}
	return out
}

func TestReencrypt(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, kms, _ := setup(t, db, Config{})
		cs := seed(t, db, 9)
		oldIDs := storedKeyIDs(t, db)
		kms.Rotate()

		// Only values under version < 2: all of them here.
		prog, err := p.Reencrypt(context.Background(), db, &Customer{}, RewriteOptions{BatchSize: 4, OlderThanVersion: 2})
		if err != nil {
			t.Fatal(err)
		}
		if prog.Scanned != 9 || prog.Rewritten != 9*7 {
			t.Fatalf("reencrypt progress %+v", prog)
		}
		newIDs := storedKeyIDs(t, db)
		for id := range newIDs {
			if oldIDs[id] {
				t.Fatal("value still under an old data key")
			}
			var row dataKeyRow
			if err := db.First(&row, id).Error; err != nil || row.KeyVersion != 2 {
				t.Fatalf("new data key %d: version %d, %v", id, row.KeyVersion, err)
			}
		}
		// Nothing is older than version 2 any more.
		prog, err = p.Reencrypt(context.Background(), db, &Customer{}, RewriteOptions{OlderThanVersion: 2})
		if err != nil || prog.Rewritten != 0 {
			t.Fatalf("second reencrypt: %+v %v", prog, err)
		}
		// Full re-encryption: every value under a fresh data key.
		if _, err := p.Reencrypt(context.Background(), db, &Customer{}, RewriteOptions{}); err != nil {
			t.Fatal(err)
		}
		for id := range storedKeyIDs(t, db) {
			if newIDs[id] || oldIDs[id] {
				t.Fatal("full re-encryption kept a data key")
			}
		}
		got := coldRead(t, db, kms)
		for i := range got {
			assertPlain(t, got[i], cs[i])
		}
		var found []Customer
		if err := db.Where(Equal("Email", "renew@example.com")).Find(&found).Error; err != nil || len(found) != 9 {
			t.Fatalf("blind index after reencrypt: %v %d", err, len(found))
		}
	})
}
