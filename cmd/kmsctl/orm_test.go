package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kmsgo/kmsgo/ormplugin"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// ormUser is the application model of the legacy table "users".
type ormUser struct {
	ID        int64
	Email     string  `gorm:"serializer:kms;size:255" kms:"index=email_bidx"`
	EmailBidx []byte  `gorm:"size:32"`
	Note      *string `gorm:"serializer:kms;size:255"`
}

func (ormUser) TableName() string { return "users" }

const ormRows = 25

func ormEmail(i int) string { return fmt.Sprintf("user%02d@example.com", i) }
func ormNote(i int) *string {
	if i%3 == 0 {
		return nil
	}
	s := fmt.Sprintf("note %d", i)
	return &s
}

// legacyTable creates "users" holding plaintext, as before encryption.
func legacyTable(t *testing.T, db *gorm.DB, emailType string) {
	t.Helper()
	if err := db.Exec("CREATE TABLE users (id BIGINT PRIMARY KEY, email " + emailType + ", email_bidx " + blobType(db) + ", note VARCHAR(255))").Error; err != nil {
		t.Fatal(err)
	}
	for i := range ormRows {
		if err := db.Exec("INSERT INTO users (id, email, note) VALUES (?, ?, ?)", i+1, ormEmail(i), ormNote(i)).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func blobType(db *gorm.DB) string {
	switch db.Dialector.Name() {
	case "postgres":
		return "BYTEA"
	case "mysql":
		return "VARBINARY(32)"
	}
	return "BLOB"
}

type rawRow struct {
	ID    int64
	Email *string
	Bidx  []byte
	Note  *string
}

func rawRows(t *testing.T, db *gorm.DB) []rawRow {
	t.Helper()
	var out []rawRow
	if err := db.Raw("SELECT id, email, email_bidx AS bidx, note FROM users ORDER BY id").Scan(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

// String prints the values, not the pointers.
func (r rawRow) String() string {
	deref := func(s *string) string {
		if s == nil {
			return "NULL"
		}
		return fmt.Sprintf("%q", *s)
	}
	return fmt.Sprintf("%d|%s|%x|%s", r.ID, deref(r.Email), r.Bidx, deref(r.Note))
}

func isCiphertext(s *string) bool { return s != nil && strings.HasPrefix(*s, "kms1:") }

func sqliteFile(t *testing.T) (string, *gorm.DB) {
	dsn := filepath.Join(t.TempDir(), "app.db") + "?_busy_timeout=5000"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeDB(db) })
	return dsn, db
}

// cancelWriter cancels after the first line containing trigger.
type cancelWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	trigger string
	cancel  context.CancelFunc
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.trigger) {
		w.cancel()
	}
	return len(p), nil
}

// runCancelled runs kmsctl and cancels its context (as Ctrl-C does) once
// stderr shows trigger.
func (c *ctl) runCancelled(trigger string, args ...string) (int, string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errw := &cancelWriter{trigger: trigger, cancel: cancel}
	var out bytes.Buffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: errw, Getenv: func(k string) string {
		if k == "HOME" {
			return c.home
		}
		return c.env[k]
	}}
	code := Execute(ctx, env, args)
	errw.mu.Lock()
	defer errw.mu.Unlock()
	return code, errw.buf.String()
}

// appDB opens the database as the application does: with the plugin.
func appDB(t *testing.T, srv *kmstest.Server, dialector gorm.Dialector) *gorm.DB {
	t.Helper()
	client, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID,
		SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	db, err := gorm.Open(dialector, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeDB(db) })
	if err := db.Use(ormplugin.New(client, ormplugin.Config{KeyID: "alias/orders"})); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestORMMigrateEndToEnd(t *testing.T) {
	srv, c := configured(t)
	c.ok("", "keys", "create", "--alias", "alias/orders")
	dsn, db := sqliteFile(t)
	legacyTable(t, db, "VARCHAR(255)")
	c.env[envORMDSN] = dsn // the DSN from the environment
	args := []string{"orm", "migrate", "--driver", "sqlite", "--table", "users", "--key-id", "alias/orders",
		"--column", "email:string:index=email_bidx", "--column", "note", "--batch-size", "10"}

	// Interrupted after the first batch: those rows are encrypted, the rest untouched.
	code, stderr := c.runCancelled("encrypting 10/25 rows (40%)", args...)
	if code != 1 || !strings.Contains(stderr, "context canceled") || !strings.Contains(stderr, "run the same migrate command again") {
		t.Fatalf("interrupted run: exit %d\n%s", code, stderr)
	}
	rows := rawRows(t, db)
	for i, r := range rows {
		done := i < 10
		if isCiphertext(r.Email) != done || (len(r.Bidx) == 32) != done {
			t.Fatalf("after interruption row %d: email %v bidx %x", r.ID, *r.Email, r.Bidx)
		}
		if !done && *r.Email != ormEmail(i) {
			t.Fatalf("row %d changed: %q", r.ID, *r.Email)
		}
	}

	// Rerun resumes and finishes.
	code, out, stderr := c.run("", append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"checking 25/25 rows (100%): 25 plaintext values to encrypt", // rows 11..25: 15 emails, 10 notes
		"encrypting 10/25 rows (40%): 0 plaintext values found, 0 encrypted",
		"encrypting 20/25 rows (80%): 17 plaintext values found, 17 encrypted",
		"encrypting 25/25 rows (100%): 25 plaintext values found, 25 encrypted",
		"verifying 25/25 rows (100%): 0 plaintext values found and encrypted, 25 encrypted in all",
	} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("progress %q missing in:\n%s", want, stderr)
		}
	}
	var res rewriteResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	wantWritten := int64(0) // rows 11..25: 15 emails plus their non-NULL notes
	for i := 10; i < ormRows; i++ {
		wantWritten++
		if ormNote(i) != nil {
			wantWritten++
		}
	}
	if res.Table != "users" || res.RowsTotal != ormRows || res.RowsScanned != ormRows || res.ValuesWritten != wantWritten || res.PlaintextRemaining != 0 {
		t.Fatalf("resume result %+v, want %d values", res, wantWritten)
	}

	// The table holds ciphertext only; the application reads the originals.
	migrated := rawRows(t, db)
	for i, r := range migrated {
		if !isCiphertext(r.Email) || strings.Contains(*r.Email, ormEmail(i)) || (ormNote(i) == nil) != (r.Note == nil) ||
			(r.Note != nil && !isCiphertext(r.Note)) {
			t.Fatalf("row %d not encrypted: %+v", r.ID, r)
		}
	}
	app := appDB(t, srv, sqlite.Open(dsn))
	var users []ormUser
	if err := app.Order("id").Find(&users).Error; err != nil || len(users) != ormRows {
		t.Fatalf("read through plugin: %v %d", err, len(users))
	}
	for i, u := range users {
		want := ormNote(i)
		if u.Email != ormEmail(i) || (want == nil) != (u.Note == nil) || (want != nil && *u.Note != *want) {
			t.Fatalf("row %d read %+v", i, u)
		}
	}
	var found []ormUser
	if err := app.Where(ormplugin.Equal("Email", ormEmail(17))).Find(&found).Error; err != nil || len(found) != 1 || found[0].ID != 18 {
		t.Fatalf("blind index lookup: %v %+v", err, found)
	}

	// A rerun is a no-op.
	c.json(&res, args...)
	if res.ValuesWritten != 0 || res.RowsScanned != ormRows {
		t.Fatalf("rerun wrote %+v", res)
	}
	if again := rawRows(t, db); fmt.Sprint(again) != fmt.Sprint(migrated) {
		t.Fatal("rerun changed stored values")
	}

	// status, rotation, renew-data-keys, reencrypt.
	type ver struct {
		KeyID      string `json:"key_id"`
		KeyVersion int    `json:"key_version"`
		Keys       int64  `json:"keys"`
	}
	var vs []ver
	c.json(&vs, "orm", "status")
	if len(vs) != 1 || vs[0].KeyVersion != 1 || vs[0].Keys < 2 { // >= 1 data key per column + 1 index key
		t.Fatalf("status %+v", vs)
	}
	c.ok("", "keys", "rotate", "alias/orders")
	var renewed struct{ Checked, Rewrapped int64 }
	c.json(&renewed, "orm", "renew-data-keys")
	if renewed.Checked != vs[0].Keys || renewed.Rewrapped != vs[0].Keys {
		t.Fatalf("renew %+v, want %d", renewed, vs[0].Keys)
	}
	c.json(&vs, "orm", "status")
	if len(vs) != 1 || vs[0].KeyVersion != 2 {
		t.Fatalf("status after renew %+v", vs)
	}
	reArgs := []string{"orm", "reencrypt", "--table", "users", "--key-id", "alias/orders",
		"--column", "email:string:index=email_bidx", "--column", "note", "--older-than-version", "2"}
	allValues := int64(ormRows)
	for i := range ormRows {
		if ormNote(i) != nil {
			allValues++
		}
	}
	// The data keys were generated under version 1: renewal re-wrapped them
	// but they are the same keys, so they are re-encrypted.
	c.json(&res, reArgs...)
	if res.ValuesWritten != allValues {
		t.Fatalf("reencrypt of versions below 2 after renewal wrote %+v, want %d", res, allValues)
	}
	c.json(&res, reArgs...)
	if res.ValuesWritten != 0 {
		t.Fatalf("second reencrypt below 2 wrote %+v", res)
	}
	code, out, stderr = c.run("", append(reArgs[:len(reArgs)-2], "-o", "json")...)
	if code != 0 || !strings.Contains(stderr, "re-encrypting 25/25 rows (100%): 41 values under retired keys found, 41 re-encrypted") {
		t.Fatalf("reencrypt all: exit %d\n%s", code, stderr)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.ValuesWritten != allValues {
		t.Fatalf("reencrypt all %+v %v", res, err)
	}
	after := rawRows(t, db)
	users = nil
	if err := app.Order("id").Find(&users).Error; err != nil || len(users) != ormRows {
		t.Fatalf("read after reencrypt: %v", err)
	}
	for i := range after {
		if *after[i].Email == *migrated[i].Email || users[i].Email != ormEmail(i) {
			t.Fatalf("row %d after reencrypt: %q / %q", i, *after[i].Email, users[i].Email)
		}
	}
}

// TestORMMigrateColumnTooSmall: a column that cannot hold the ciphertext
// fails the migration before anything is written, on every database.
func TestORMMigrateColumnTooSmall(t *testing.T) {
	_, c := configured(t)
	c.ok("", "keys", "create", "--alias", "alias/orders")
	need := fmt.Sprintf("holds 40, needs %d", ormplugin.CiphertextLen(len(ormEmail(0))))
	dialects := dbtest.Dialects(t)
	if len(dialects) < 2 {
		t.Log("only SQLite available: set KMS_TEST_MYSQL_DSN / KMS_TEST_POSTGRES_DSN to test MariaDB and PostgreSQL")
	}
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			dsn, db := dbtest.OpenDSN(t, d)
			legacyTable(t, db, "VARCHAR(40)") // a 20-byte e-mail needs 80
			before := rawRows(t, db)
			code, _, stderr := c.run("", "orm", "migrate", "--driver", d, "--dsn", dsn, "--table", "users",
				"--key-id", "alias/orders", "--column", "email:string:index=email_bidx", "--batch-size", "10")
			if code != 1 || !strings.Contains(stderr, "column too small") || !strings.Contains(stderr, need) {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			if strings.Contains(stderr, "encrypting") {
				t.Fatalf("progress printed before the check failed:\n%s", stderr)
			}
			if after := rawRows(t, db); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatal("rows changed")
			}
			var keys int64
			if err := db.Table(ormplugin.DataKeyTable).Count(&keys).Error; err != nil || keys != 0 {
				t.Fatalf("data keys created: %d %v", keys, err)
			}
		})
	}
}

func TestORMFlagErrors(t *testing.T) {
	_, c := configured(t)
	dsn, _ := sqliteFile(t)
	empty, _ := sqliteFile(t)
	base := []string{"orm", "migrate", "--dsn", dsn}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no table", append(base, "--key-id", "k", "--column", "email"), "--table and at least one --column"},
		{"no column", append(base, "--key-id", "k", "--table", "users"), "--table and at least one --column"},
		{"bad column type", append(base, "--key-id", "k", "--table", "users", "--column", "email:xml"), `unknown type "xml"`},
		{"bad column option", append(base, "--key-id", "k", "--table", "users", "--column", "email:size=3"), `bad option "size=3"`},
		{"no key", append(base, "--table", "users", "--column", "email"), "--key-id is required"},
		{"bad batch", append(base, "--key-id", "k", "--table", "users", "--column", "email", "--batch-size", "0"), "--batch-size must be positive"},
		{"bad driver", []string{"orm", "migrate", "--dsn", dsn, "--driver", "oracle", "--key-id", "k", "--table", "users", "--column", "email"}, `--driver "oracle"`},
		{"no dsn", []string{"orm", "migrate", "--key-id", "k", "--table", "users", "--column", "email"}, "--dsn (or KMS_ORM_DSN) is required"},
		{"status without key tables", []string{"orm", "status", "--dsn", empty}, "no table kms_data_keys"},
		{"bad table name", append(base, "--key-id", "alias/x", "--table", "users;drop", "--column", "email"), "invalid configuration"},
		{"negative version", []string{"orm", "reencrypt", "--dsn", dsn, "--key-id", "k", "--table", "users", "--column", "email", "--older-than-version", "-1"}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) { c.fail(1, tc.want, "", tc.args...) })
	}
}

func TestORMHelp(t *testing.T) {
	c := newCtl(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"orm", "--help"}, []string{"migrate", "reencrypt", "renew-data-keys", "status", "KMS_ORM_DSN"}},
		{[]string{"orm", "migrate", "--help"}, []string{"--column email:string:index=email_bidx", "encrypting 1500/10000 rows (15%)", "resumed by running the same command", "5 + ceil(4*(n+36)/3)", "exits 1 with the\ncount"}},
		{[]string{"orm", "verify", "--help"}, []string{"verify TABLE", "undecryptable", "never by value"}},
		{[]string{"orm", "status", "--help"}, []string{"--table", "plaintext values still there"}},
		{[]string{"orm", "reencrypt", "--help"}, []string{"--older-than-version"}},
		{[]string{"orm", "renew-data-keys", "--help"}, []string{"kmsctl keys rotate alias/orders"}},
	} {
		out := c.ok("", tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%v: %q missing in:\n%s", tc.args, w, out)
			}
		}
	}
}

func TestParseColumnSpec(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    ormplugin.ColumnSpec
		wantErr bool
	}{
		{"email", ormplugin.ColumnSpec{Name: "email", Type: "string"}, false},
		{"email:string:index=email_bidx", ormplugin.ColumnSpec{Name: "email", Type: "string", Index: "email_bidx"}, false},
		{"email:index=email_bidx", ormplugin.ColumnSpec{Name: "email", Type: "string", Index: "email_bidx"}, false},
		{"avatar:bytes", ormplugin.ColumnSpec{Name: "avatar", Type: "bytes"}, false},
		{"profile:json", ormplugin.ColumnSpec{Name: "profile", Type: "json"}, false},
		{"", ormplugin.ColumnSpec{}, true},
		{":string", ormplugin.ColumnSpec{}, true},
		{"index=x", ormplugin.ColumnSpec{}, true},
		{"email:json:bytes", ormplugin.ColumnSpec{}, true},
		{"email:index=a:index=b", ormplugin.ColumnSpec{}, true},
		{"email:index=", ormplugin.ColumnSpec{}, true},
		{"email:xml", ormplugin.ColumnSpec{}, true},
		{"secret:bind=id", ormplugin.ColumnSpec{Name: "secret", Type: "string", Bind: "id"}, false},
		{"secret:bytes:bind=ref:index=b", ormplugin.ColumnSpec{Name: "secret", Type: "bytes", Bind: "ref", Index: "b"}, false},
		{"secret:bind=a:bind=b", ormplugin.ColumnSpec{}, true},
		{"secret:bind=", ormplugin.ColumnSpec{}, true},
	} {
		got, err := parseColumnSpec(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("parseColumnSpec(%q) = %+v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, errORMFlags) {
			t.Errorf("parseColumnSpec(%q): error %v is not errORMFlags", tc.in, err)
		}
	}
}

// FuzzParseColumnSpec: a parsed spec has a name without separators, one of
// the three types, and formats back to an equivalent spec.
func FuzzParseColumnSpec(f *testing.F) {
	for _, s := range []string{"email", "email:string:index=email_bidx", "p:json", "a:bytes:index=b", "::", "x:index=a=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := parseColumnSpec(s)
		if err != nil {
			return
		}
		if cs.Name == "" || strings.ContainsAny(cs.Name, ":=") || strings.Contains(cs.Index, ":") || strings.Contains(cs.Bind, ":") {
			t.Fatalf("%q parsed to %+v", s, cs)
		}
		switch cs.Type {
		case ormplugin.TypeString, ormplugin.TypeBytes, ormplugin.TypeJSON:
		default:
			t.Fatalf("%q: type %q", s, cs.Type)
		}
		back := cs.Name + ":" + cs.Type
		if cs.Index != "" {
			back += ":index=" + cs.Index
		}
		if cs.Bind != "" {
			back += ":bind=" + cs.Bind
		}
		again, err := parseColumnSpec(back)
		if err != nil || again != cs {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, cs, back, again, err)
		}
	})
}

// TestORMStatusVerifyAndRemainingPlaintext: status --table counts the
// plaintext left, migrate exits non-zero while plaintext keeps coming back
// (here a trigger standing in for a writer without the plugin), and verify
// lists the rows that cannot be read.
func TestORMStatusVerifyAndRemainingPlaintext(t *testing.T) {
	srv, c := configured(t)
	c.ok("", "keys", "create", "--alias", "alias/orders")
	dsn, db := sqliteFile(t)
	legacyTable(t, db, "VARCHAR(255)")
	c.env[envORMDSN] = dsn
	cols := []string{"--column", "email:string:index=email_bidx", "--column", "note"}
	type colStatus struct {
		Column    string `json:"column"`
		Values    int64  `json:"values"`
		Plaintext int64  `json:"plaintext"`
		KeysInUse int64  `json:"keys_in_use"`
		KeyRows   int64  `json:"key_rows"`
	}
	status := func() map[string]colStatus {
		var st []colStatus
		c.json(&st, append([]string{"orm", "status", "--table", "users"}, cols...)...)
		out := map[string]colStatus{}
		for _, s := range st {
			out[s.Column] = s
		}
		return out
	}
	notes := int64(0)
	for i := range ormRows {
		if ormNote(i) != nil {
			notes++
		}
	}
	if st := status(); st["email"].Plaintext != ormRows || st["note"].Plaintext != notes || st["note"].Values != notes {
		t.Fatalf("status before: %+v", st)
	}
	if err := db.Exec("CREATE TRIGGER keep_plain AFTER UPDATE OF note ON users WHEN NEW.id = 5 AND NEW.note <> 'note 4' " +
		"BEGIN UPDATE users SET note = 'note 4' WHERE id = 5; END").Error; err != nil {
		t.Fatal(err)
	}
	migrate := append([]string{"orm", "migrate", "--table", "users", "--key-id", "alias/orders", "--batch-size", "10"}, cols...)
	code, out, stderr := c.run("", append(migrate, "-o", "json")...)
	if code != 1 || !strings.Contains(stderr, "plaintext values remain: 1 plaintext values in users") {
		t.Fatalf("migrate with plaintext coming back: exit %d\n%s", code, stderr)
	}
	var res rewriteResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.PlaintextRemaining != 1 {
		t.Fatalf("result %q: %v", out, err)
	}
	if st := status(); st["email"].Plaintext != 0 || st["note"].Plaintext != 1 || st["email"].KeysInUse != 1 || st["email"].KeyRows != 1 {
		t.Fatalf("status after: %+v", st)
	}
	if err := db.Exec("DROP TRIGGER keep_plain").Error; err != nil {
		t.Fatal(err)
	}

	// One tampered value: verify names it, by primary key, never by value.
	var ct string
	if err := db.Raw("SELECT email FROM users WHERE id = 7").Scan(&ct).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("UPDATE users SET email = ? WHERE id = 9", ct).Error; err != nil { // row 7's ciphertext copied into row 9: another row, same column
		t.Fatal(err)
	}
	tampered := []byte(ct)
	if i := len(tampered) - 10; tampered[i] == 'A' { // stays valid base64: fails authentication, not parsing
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	if err := db.Exec("UPDATE users SET email = ? WHERE id = 7", string(tampered)).Error; err != nil {
		t.Fatal(err)
	}
	verify := append([]string{"orm", "verify", "users", "--key-id", "alias/orders"}, cols...)
	code, out, stderr = c.run("", verify...)
	if code != 1 || !strings.Contains(stderr, "2 values of users cannot be read") {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"5  ", "note", "plaintext", "7  ", "email", "undecryptable"} {
		if !strings.Contains(out, want) {
			t.Fatalf("verify output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "note 4") || strings.Contains(out, ct[:12]) {
		t.Fatalf("verify prints a value:\n%s", out)
	}
	// The unbound column lets row 7's ciphertext decrypt in row 9 (the
	// threat row binding addresses); the application's error names row 7.
	app := appDB(t, srv, sqlite.Open(dsn))
	var u ormUser
	err := app.First(&u, 7).Error
	var de *ormplugin.DecryptError
	if !errors.As(err, &de) || de.PrimaryKey != "id=7" || de.Column != "email" {
		t.Fatalf("application error: %v", err)
	}
	// Fixed by migrate once the plaintext is back to normal: exit 0.
	if err := db.Exec("UPDATE users SET email = ? WHERE id = 7", ormEmail(6)).Error; err != nil {
		t.Fatal(err)
	}
	c.ok("", migrate...)
	c.ok("", verify...)
}
