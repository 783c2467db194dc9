package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
)

var idPattern = regexp.MustCompile(`^AKKMS[A-Z2-7]{16}$`)

func TestAccessKeyLifecycle(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		clock := newClock(testStart)
		s := newService(t, db, testBackend(t), Config{Now: clock.Now})
		p := mustPolicy(t, `{"statements":[{"effect":"Allow","actions":["kms:Decrypt"],"resources":["alias/orders-*"]}]}`)

		ak, secret, err := s.CreateAccessKey(ctx, "orders service", p)
		if err != nil {
			t.Fatal(err)
		}
		if !idPattern.MatchString(ak.ID) || !ValidAccessKeyID(ak.ID) {
			t.Fatalf("id %q has the wrong shape", ak.ID)
		}
		if len(secret) != SecretLen {
			t.Fatalf("secret has %d chars", len(secret))
		}
		if ak.Status != StatusEnabled || ak.Description != "orders service" || !ak.CreationDate.Equal(testStart) {
			t.Fatalf("created = %+v", ak)
		}
		other, secret2, err := s.CreateAccessKey(ctx, "", AdminPolicy())
		if err != nil {
			t.Fatal(err)
		}
		if other.ID == ak.ID || secret2 == secret {
			t.Fatal("two keys share an id or a secret")
		}

		got, err := s.GetAccessKey(ctx, ak.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Policy.Allowed("kms:Decrypt", "alias/orders-x") || got.Policy.Allowed("kms:Encrypt", "alias/orders-x") {
			t.Fatalf("stored policy = %+v", got.Policy)
		}
		list, err := s.ListAccessKeys(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("list = %v, %v", list, err)
		}

		if got, err = s.DisableAccessKey(ctx, ak.ID); err != nil || got.Status != StatusDisabled {
			t.Fatalf("disable = %+v, %v", got, err)
		}
		if got, err = s.DisableAccessKey(ctx, ak.ID); err != nil || got.Status != StatusDisabled {
			t.Fatalf("disable twice = %+v, %v", got, err)
		}
		if got, err = s.EnableAccessKey(ctx, ak.ID); err != nil || got.Status != StatusEnabled {
			t.Fatalf("enable = %+v, %v", got, err)
		}
		if got, err = s.UpdatePolicy(ctx, ak.ID, AdminPolicy()); err != nil || !got.Policy.Allowed("kms:CreateKey") {
			t.Fatalf("update policy = %+v, %v", got, err)
		}
		if _, err := s.UpdatePolicy(ctx, ak.ID, Policy{Statements: []Statement{{Effect: "Maybe", Actions: []string{"*"}, Resources: []string{"*"}}}}); !errors.Is(err, ErrInvalidPolicy) {
			t.Fatalf("invalid policy: %v", err)
		}
		_, rotated, err := s.RotateSecret(ctx, ak.ID)
		if err != nil || len(rotated) != SecretLen || rotated == secret {
			t.Fatalf("rotate: %v", err)
		}

		// Authenticate with the rotated secret, then delete.
		r, body := sign(t, jsonPost(`{}`, map[string]string{NonceHeader: nonceA}), ak.ID, rotated, DefaultRegion, ServiceName, testStart)
		if _, err := s.Authenticate(r, body); err != nil {
			t.Fatalf("rotated secret rejected: %v", err)
		}
		if err := s.DeleteAccessKey(ctx, ak.ID); err != nil {
			t.Fatal(err)
		}
		var nonces int64
		db.Model(&nonceRow{}).Where("access_key_id = ?", ak.ID).Count(&nonces)
		if nonces != 0 {
			t.Fatalf("%d nonces left after delete", nonces)
		}

		for name, op := range map[string]func(id string) error{
			"get":     func(id string) error { _, err := s.GetAccessKey(ctx, id); return err },
			"disable": func(id string) error { _, err := s.DisableAccessKey(ctx, id); return err },
			"enable":  func(id string) error { _, err := s.EnableAccessKey(ctx, id); return err },
			"policy":  func(id string) error { _, err := s.UpdatePolicy(ctx, id, AdminPolicy()); return err },
			"rotate":  func(id string) error { _, _, err := s.RotateSecret(ctx, id); return err },
			"delete":  func(id string) error { return s.DeleteAccessKey(ctx, id) },
		} {
			for _, id := range []string{ak.ID, "AKKMSAAAAAAAAAAAAAAAA", "nope", ""} {
				if err := op(id); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s(%q) = %v, want ErrNotFound", name, id, err)
				}
			}
		}
		if _, _, err := s.CreateAccessKey(ctx, strings.Repeat("d", MaxDescriptionLen+1), AdminPolicy()); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("long description: %v", err)
		}
		if _, _, err := s.CreateAccessKey(ctx, "bad \xff utf-8", AdminPolicy()); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("invalid UTF-8 description: %v", err)
		}
		if _, _, err := s.CreateAccessKey(ctx, "", Policy{Statements: []Statement{{Effect: Allow}}}); !errors.Is(err, ErrInvalidPolicy) {
			t.Fatalf("empty actions: %v", err)
		}
	})
}

// TestSecretNeverStoredInPlaintext scans every column of every auth table
// for the secret, in text and in common encodings.
func TestSecretNeverStoredInPlaintext(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := newService(t, db, testBackend(t), Config{})
		ak, secret, err := s.CreateAccessKey(ctx, "scan me", AdminPolicy())
		if err != nil {
			t.Fatal(err)
		}
		_, rotated, err := s.RotateSecret(ctx, ak.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{accessKeysTable, noncesTable, bootstrapTable} {
			var rows []map[string]any
			if err := db.Table(table).Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			for _, row := range rows {
				for col, v := range row {
					var b []byte
					switch x := v.(type) {
					case []byte:
						b = x
					case string:
						b = []byte(x)
					default:
						b = fmt.Append(nil, x)
					}
					for _, sec := range []string{secret, rotated, secret[:20], rotated[20:]} {
						if bytes.Contains(b, []byte(sec)) || bytes.Contains(bytes.ToLower(b), []byte(fmt.Sprintf("%x", sec))) {
							t.Fatalf("%s.%s holds the secret", table, col)
						}
					}
				}
			}
		}
		// The wrapped secret is bound to its id: moved to another row it
		// does not unwrap.
		var row accessKeyRow
		if err := db.Where("id = ?", ak.ID).Take(&row).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := s.hsm.UnwrapKey(ctx, row.WrappedSecret, secretAAD("AKKMSAAAAAAAAAAAAAAAA")); err == nil {
			t.Fatal("wrapped secret unwrapped under another id")
		}
	})
}

func TestMigrationsIdempotent(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		for i := 0; i < 2; i++ {
			if err := migrate.Apply(db, Migrations()...); err != nil {
				t.Fatalf("apply %d: %v", i, err)
			}
		}
		// Rerunning the step body itself (as after a MySQL DDL commit) is safe.
		if err := Migrations()[0].Up(db); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{accessKeysTable, noncesTable, bootstrapTable} {
			if !db.Migrator().HasTable(table) {
				t.Fatalf("table %s missing", table)
			}
		}
	})
}

func TestEnsureBootstrapAdmin(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := newService(t, db, testBackend(t), Config{Region: "dc-1"})
		dir := t.TempDir()

		// An existing file is never overwritten, and no key is created.
		taken := filepath.Join(dir, "taken.json")
		if err := os.WriteFile(taken, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		if created, err := s.EnsureBootstrapAdmin(ctx, taken); created || !errors.Is(err, ErrBootstrapFileExists) {
			t.Fatalf("existing file: created=%v err=%v", created, err)
		}
		if b, _ := os.ReadFile(taken); string(b) != "keep" {
			t.Fatal("existing file changed")
		}
		if keys, _ := s.ListAccessKeys(ctx); len(keys) != 0 {
			t.Fatalf("%d keys after refused bootstrap", len(keys))
		}

		path := filepath.Join(dir, "admin.json")
		created, err := s.EnsureBootstrapAdmin(ctx, path)
		if err != nil || !created {
			t.Fatalf("bootstrap: created=%v err=%v", created, err)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("file mode %v, %v", fi.Mode(), err)
		}
		raw, _ := os.ReadFile(path)
		var creds BootstrapCredentials
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&creds); err != nil {
			t.Fatal(err)
		}
		if !ValidAccessKeyID(creds.AccessKeyID) || len(creds.SecretAccessKey) != SecretLen || creds.Region != "dc-1" {
			t.Fatalf("credentials = %+v", creds.AccessKeyID)
		}
		ak, err := s.GetAccessKey(ctx, creds.AccessKeyID)
		if err != nil || ak.Description != BootstrapDescription || !ak.Policy.Allowed("kms:CreateAccessKey") {
			t.Fatalf("bootstrap key = %+v, %v", ak, err)
		}
		r, body := sign(t, jsonPost(`{}`, nil), creds.AccessKeyID, creds.SecretAccessKey, "dc-1", ServiceName, s.now())
		if _, err := s.Authenticate(r, body); err != nil {
			t.Fatalf("bootstrap credentials rejected: %v", err)
		}

		// Keys exist: nothing happens, even with a fresh path.
		again := filepath.Join(dir, "again.json")
		if created, err := s.EnsureBootstrapAdmin(ctx, again); created || err != nil {
			t.Fatalf("second bootstrap: created=%v err=%v", created, err)
		}
		if _, err := os.Stat(again); !os.IsNotExist(err) {
			t.Fatalf("second bootstrap wrote a file: %v", err)
		}

		// All keys deleted: bootstrap works again (marker compare-and-swap).
		if err := s.DeleteAccessKey(ctx, creds.AccessKeyID); err != nil {
			t.Fatal(err)
		}
		third := filepath.Join(dir, "third.json")
		if created, err := s.EnsureBootstrapAdmin(ctx, third); !created || err != nil {
			t.Fatalf("bootstrap after deleting all keys: created=%v err=%v", created, err)
		}
	})
}

// TestEnsureBootstrapAdminConcurrent: replicas racing on an empty database
// create exactly one admin key, and only the winner writes a file.
func TestEnsureBootstrapAdminConcurrent(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			dsn, db := dbtest.OpenDSN(t, d)
			be := testBackend(t)
			const n = 4
			services := make([]*Service, n)
			for i := range services {
				dbi := db
				if i > 0 {
					var err error
					if dbi, err = dbtest.Connect(d, dsn); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() {
						if sqlDB, err := dbi.DB(); err == nil {
							sqlDB.Close()
						}
					})
				}
				services[i] = newService(t, dbi, be, Config{})
			}
			dir := t.TempDir()
			type result struct {
				created bool
				err     error
			}
			results := make(chan result, n)
			for i, s := range services {
				go func() {
					c, err := s.EnsureBootstrapAdmin(context.Background(), filepath.Join(dir, fmt.Sprintf("admin-%d.json", i)))
					results <- result{c, err}
				}()
			}
			winners := 0
			for range n {
				r := <-results
				if r.err != nil {
					// SQLite may report a busy database to a racer; it must not
					// have created anything.
					t.Logf("racer error: %v", r.err)
				}
				if r.created {
					winners++
				}
			}
			keys, err := services[0].ListAccessKeys(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			if winners != 1 || len(keys) != 1 || len(files) != 1 {
				t.Fatalf("winners=%d keys=%d files=%d, want 1 each", winners, len(keys), len(files))
			}
		})
	}
}

// TestEnsureBootstrapAdminRefusesSymlink: a link planted at the credentials
// path (dangling or not) is never followed, so the secret cannot be
// redirected into a file the attacker chose, and no key is created.
func TestEnsureBootstrapAdminRefusesSymlink(t *testing.T) {
	ctx := context.Background()
	s := newService(t, dbtest.Open(t, dbtest.SQLite), testBackend(t), Config{})
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"dangling": filepath.Join(dir, "elsewhere"), "existing": existing} {
		t.Run(name, func(t *testing.T) {
			link := filepath.Join(dir, "link-"+name)
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			created, err := s.EnsureBootstrapAdmin(ctx, link)
			if created || !errors.Is(err, ErrBootstrapFileExists) {
				t.Fatalf("created=%v err=%v, want ErrBootstrapFileExists", created, err)
			}
			if b, _ := os.ReadFile(target); len(b) != 0 {
				t.Fatalf("secret written through the link: %d bytes", len(b))
			}
			if keys, _ := s.ListAccessKeys(ctx); len(keys) != 0 {
				t.Fatalf("%d keys created", len(keys))
			}
		})
	}
}
