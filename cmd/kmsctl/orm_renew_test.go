package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/driver/sqlite"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/ormplugin"
)

func TestORMRenew(t *testing.T) {
	srv, c := configured(t)
	c.ok("", "keys", "create", "--alias", "alias/orders")
	dsn, raw := sqliteFile(t)
	app := appDB(t, srv, sqlite.Open(dsn))
	if err := app.AutoMigrate(&ormUser{}); err != nil {
		t.Fatal(err)
	}
	for i := range ormRows {
		if err := app.Create(&ormUser{ID: int64(i + 1), Email: ormEmail(i), Note: ormNote(i)}).Error; err != nil {
			t.Fatal(err)
		}
	}
	values := int64(ormRows)
	for i := range ormRows {
		if ormNote(i) != nil {
			values++
		}
	}
	before := rawRows(t, raw)
	c.ok("", "keys", "rotate", "alias/orders")
	c.env[envORMDSN] = dsn
	reArgs := []string{"orm", "renew", "--mode", "reencrypt", "--table", "users", "--key-id", "alias/orders",
		"--column", "email:string:index=email_bidx", "--column", "note", "--batch-size", "10"}

	// Dry run: counts, writes nothing, takes no lease.
	var rep renewReport
	c.json(&rep, append(reArgs, "--dry-run")...)
	// 2 data keys (email, note) + 1 blind-index key.
	if !rep.DryRun || rep.KeysRenewed != 3 || rep.ValuesRenewed != values || rep.ValuesScanned != values || rep.Rows != ormRows {
		t.Fatalf("dry run %+v", rep)
	}
	if fmt.Sprint(rawRows(t, raw)) != fmt.Sprint(before) || raw.Migrator().HasTable(&jobs.State{}) {
		t.Fatal("dry run wrote")
	}

	// Interrupted after the first batch of rows (as Ctrl-C does).
	code, stderr := c.runCancelled("users: 10 rows", reArgs...)
	if code != 1 || !strings.Contains(stderr, "keys: 3 scanned, 3 re-wrapped, 0 already current") || !strings.Contains(stderr, "resumes where this one stopped") {
		t.Fatalf("interrupted: exit %d\n%s", code, stderr)
	}
	var st jobs.State
	if err := raw.Where("job = ?", ormplugin.RenewalJob).Take(&st).Error; err != nil || !strings.Contains(st.Cursor, `"after":"10"`) || st.Holder != "" {
		t.Fatalf("job state after interruption: %+v %v", st, err)
	}
	// The next run resumes after row 10.
	code, out, stderr := c.run("", append(reArgs, "-o", "json")...)
	if code != 0 || !strings.Contains(stderr, "resuming an interrupted renewal") {
		t.Fatalf("resume: exit %d\n%s", code, stderr)
	}
	c.json(&rep, "orm", "renew", "--dry-run") // keys are current now
	if rep.KeysScanned < 3 || rep.KeysRenewed != 0 || rep.KeysSkipped != rep.KeysScanned || rep.KMSCalls != 1 {
		t.Fatalf("rewrap dry run after renewal %+v", rep)
	}
	if !strings.Contains(out, `"resumed": true`) || !strings.Contains(out, `"rows": 15`) {
		t.Fatalf("resumed report %s", out)
	}
	after := rawRows(t, raw)
	for i := range after {
		if *after[i].Email == *before[i].Email {
			t.Fatalf("row %d not re-encrypted", i+1)
		}
	}
	var users []ormUser
	if err := app.Order("id").Find(&users).Error; err != nil || len(users) != ormRows {
		t.Fatalf("read back: %v", err)
	}
	for i, u := range users {
		if u.Email != ormEmail(i) || fmt.Sprint(u.Note) != fmt.Sprint(ormNote(i)) && (u.Note == nil || *u.Note != *ormNote(i)) {
			t.Fatalf("user %d: %+v", i+1, u)
		}
	}

	// Another runner holds the lease: refused, nothing written.
	if err := raw.Model(&jobs.State{}).Where("job = ?", ormplugin.RenewalJob).
		Updates(map[string]any{"holder": "app-1", "lease_until_ms": time.Now().Add(time.Hour).UnixMilli()}).Error; err != nil {
		t.Fatal(err)
	}
	c.fail(1, "another runner", "", "orm", "renew")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"orm", "renew", "--table", "users"}, "need --mode reencrypt"},
		{[]string{"orm", "renew", "--mode", "shred"}, "rewrap or reencrypt"},
		{[]string{"orm", "renew", "--mode", "reencrypt"}, "--table and at least one --column"},
		{[]string{"orm", "renew", "--lease-ttl", "0s"}, "must be positive"},
	} {
		c.fail(1, tc.want, "", tc.args...)
	}
}
