package ormplugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"gorm.io/gorm"
)

// legacyAccount is the table before encryption: plaintext columns.
type legacyAccount struct {
	ID        uint
	Email     string  `gorm:"size:200"`
	Profile   string  `gorm:"size:300"`
	Note      *string `gorm:"size:200"`
	EmailBidx []byte  `gorm:"size:32"`
}

func (legacyAccount) TableName() string { return "accounts" }

// Account is the same table with encryption.
type Account struct {
	ID        uint
	Email     string  `gorm:"serializer:kms;size:200" kms:"index=email_bidx"`
	Profile   Profile `gorm:"serializer:kms;size:300"`
	Note      *string `gorm:"serializer:kms;size:200"`
	EmailBidx []byte  `gorm:"size:32"`
}

func (Account) TableName() string { return "accounts" }

func fillLegacy(t *testing.T, db *gorm.DB, n int) {
	t.Helper()
	if err := db.AutoMigrate(&legacyAccount{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		a := legacyAccount{Email: fmt.Sprintf("user%02d@example.com", i),
			Profile: fmt.Sprintf(`{ "age": %d,  "city": "town-%d" }`, i, i)}
		if i%3 == 0 {
			a.Note = strp(fmt.Sprintf("note %d", i))
		}
		if err := db.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func rawEmails(t *testing.T, db *gorm.DB, table string) []string {
	t.Helper()
	var out []string
	if err := db.Table(table).Order("id").Pluck("email", &out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigratePlaintext(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, kms, _ := setup(t, db, Config{})
		const n = 23
		fillLegacy(t, db, n)
		var a Account
		if err := db.First(&a).Error; !errors.Is(err, ErrNotCiphertext) {
			t.Fatalf("read before migration without opt-in: %v", err)
		}
		reader, err := gorm.Open(db.Dialector, &gorm.Config{Logger: db.Logger, ConnPool: db.ConnPool})
		if err != nil {
			t.Fatal(err)
		}
		if err := reader.Use(New(kms, Config{KeyID: testKeyID, AllowPlaintextReads: true})); err != nil {
			t.Fatal(err)
		}

		// First run, interrupted after two batches.
		ctx, cancel := context.WithCancel(context.Background())
		var seen []Progress
		prog, err := p.MigratePlaintext(ctx, db, &Account{}, RewriteOptions{BatchSize: 5, Progress: func(pr Progress) {
			if pr.Phase != PhaseRewrite {
				return
			}
			seen = append(seen, pr)
			if len(seen) == 2 {
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: err = %v", err)
		}
		if prog.Scanned != 10 || prog.Total != n || len(seen) != 2 || seen[0].Scanned != 5 {
			t.Fatalf("interrupted progress %+v (%d callbacks)", prog, len(seen))
		}
		raw := rawEmails(t, db, "accounts")
		for i, e := range raw {
			if enc := strings.HasPrefix(e, valuePrefix); enc != (i < 10) {
				t.Fatalf("row %d encrypted=%v after interrupted run", i, enc)
			}
		}
		// Mixed table: readable with the opt-in, an error without it.
		var mixed []Account
		if err := reader.Order("id").Find(&mixed).Error; err != nil || len(mixed) != n {
			t.Fatalf("mixed read with opt-in: %v (%d)", err, len(mixed))
		}
		for i, m := range mixed {
			if m.Email != fmt.Sprintf("user%02d@example.com", i) || m.Profile != (Profile{City: fmt.Sprintf("town-%d", i), Age: i}) {
				t.Fatalf("mixed row %d: %+v", i, m)
			}
		}
		if err := db.Find(&mixed).Error; !errors.Is(err, ErrNotCiphertext) {
			t.Fatalf("mixed read without opt-in: %v", err)
		}

		// Rerun finishes the job.
		prog, err = p.MigratePlaintext(context.Background(), db, &Account{}, RewriteOptions{BatchSize: 5})
		if err != nil {
			t.Fatal(err)
		}
		notes := (n + 2) / 3
		if prog.Scanned != n || prog.Rewritten != int64(2*(n-10)+notes-4) {
			t.Fatalf("rerun progress %+v", prog)
		}
		for i, e := range rawEmails(t, db, "accounts") {
			if !strings.HasPrefix(e, valuePrefix) {
				t.Fatalf("row %d still plaintext", i)
			}
		}
		var all []Account
		if err := db.Order("id").Find(&all).Error; err != nil || len(all) != n {
			t.Fatalf("read after migration: %v", err)
		}
		for i, m := range all {
			if m.Email != fmt.Sprintf("user%02d@example.com", i) || (m.Note != nil) != (i%3 == 0) {
				t.Fatalf("row %d: %+v", i, m)
			}
		}
		var found []Account
		if err := db.Where(Equal("Email", "user07@example.com")).Find(&found).Error; err != nil || len(found) != 1 || found[0].ID != all[7].ID {
			t.Fatalf("blind index after migration: %v %d", err, len(found))
		}
		// A third run has nothing to do.
		prog, err = p.MigratePlaintext(context.Background(), db, &Account{}, RewriteOptions{})
		if err != nil || prog.Rewritten != 0 || prog.Scanned != n {
			t.Fatalf("idempotent rerun: %+v %v", prog, err)
		}
	})
}

type tinyLegacy struct {
	ID    uint
	Email string `gorm:"size:60"`
}

func (tinyLegacy) TableName() string { return "tiny" }

type Tiny struct {
	ID    uint
	Email string `gorm:"serializer:kms;size:60"`
}

func (Tiny) TableName() string { return "tiny" }

type badJSONLegacy struct {
	ID      uint
	Profile string
}

func (badJSONLegacy) TableName() string { return "badjson" }

type BadJSON struct {
	ID      uint
	Profile Profile `gorm:"serializer:kms"`
}

func (BadJSON) TableName() string { return "badjson" }

func TestMigrateChecksBeforeWriting(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, _, _ := setup(t, db, Config{})
		cases := []struct {
			name  string
			fill  func() error
			model any
			table string
			want  error
		}{
			{"column too small", func() error {
				if err := db.AutoMigrate(&tinyLegacy{}); err != nil {
					return err
				}
				// CiphertextLen(5) = 61 and CiphertextLen(30) = 93: neither fits in 60.
				return db.Create(&[]tinyLegacy{{Email: "a@b.c"}, {Email: strings.Repeat("x", 30)}}).Error
			}, &Tiny{}, "tiny", ErrColumnTooSmall},
			{"plaintext not of the field type", func() error {
				if err := db.AutoMigrate(&badJSONLegacy{}); err != nil {
					return err
				}
				return db.Create(&[]badJSONLegacy{{Profile: `{"city":"ok"}`}, {Profile: "not json"}}).Error
			}, &BadJSON{}, "badjson", ErrUnsupportedType},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if err := c.fill(); err != nil {
					t.Fatal(err)
				}
				var before []map[string]any
				db.Table(c.table).Order("id").Find(&before)
				_, err := p.MigratePlaintext(context.Background(), db, c.model, RewriteOptions{BatchSize: 1})
				if c.want == ErrColumnTooSmall && db.Dialector.Name() == "sqlite" {
					// SQLite has no column sizes (GORM declares TEXT): nothing to check.
					if err != nil {
						t.Fatalf("sqlite: %v", err)
					}
					return
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("err = %v, want %v", err, c.want)
				}
				var after []map[string]any
				db.Table(c.table).Order("id").Find(&after)
				if fmt.Sprint(before) != fmt.Sprint(after) {
					t.Fatalf("rows changed by a failed migration:\n%v\n%v", before, after)
				}
			})
		}
	})
}

func TestCiphertextLenMatchesFormat(t *testing.T) {
	k := &dek{id: 1234567}
	var err error
	if k.aead, err = newAEAD(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 2, 3, 10, 100, 1000} {
		ct, err := sealWith(k, colKey{"t", "c"}, make([]byte, n))
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != CiphertextLen(n) {
			t.Errorf("n=%d: len %d, CiphertextLen %d", n, len(ct), CiphertextLen(n))
		}
	}
	for n, want := range map[int]int{0: 53, 20: 80, 1024: 1419} { // figures in the package doc
		if got := CiphertextLen(n); got != want {
			t.Errorf("CiphertextLen(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestMigrateTableBySpec(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, _, _ := setup(t, db, Config{})
		fillLegacy(t, db, 7)
		spec := TableSpec{Table: "accounts", Columns: []ColumnSpec{
			{Name: "email", Index: "email_bidx"},
			{Name: "profile", Type: TypeJSON},
			{Name: "note", Type: TypeString},
		}}
		prog, err := p.MigrateTable(context.Background(), db, spec, RewriteOptions{BatchSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		if prog.Scanned != 7 || prog.Rewritten != 7+7+3 {
			t.Fatalf("progress %+v", prog)
		}
		var all []Account
		if err := db.Order("id").Find(&all).Error; err != nil || len(all) != 7 {
			t.Fatalf("read after spec migration: %v", err)
		}
		for i, a := range all {
			if a.Email != fmt.Sprintf("user%02d@example.com", i) || a.Profile.Age != i || (a.Note != nil) != (i%3 == 0) {
				t.Fatalf("row %d: %+v", i, a)
			}
		}
		var found []Account
		if err := db.Where(Equal("Email", "user03@example.com")).Find(&found).Error; err != nil || len(found) != 1 {
			t.Fatalf("blind index: %v %d", err, len(found))
		}
		if _, err := p.ReencryptTable(context.Background(), db, spec, RewriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := db.Where(Equal("Email", "user03@example.com")).Find(&found).Error; err != nil || len(found) != 1 || found[0].Profile.City != "town-3" {
			t.Fatalf("after ReencryptTable: %v %+v", err, found)
		}
		kms, _ := newTestKMS(t)
		if _, err := New(kms, Config{KeyID: testKeyID}).MigrateTable(context.Background(), db, spec, RewriteOptions{}); !errors.Is(err, ErrConfig) {
			t.Fatalf("plugin not registered: err = %v", err)
		}
		for _, bad := range []TableSpec{
			{Table: "accounts"},
			{Table: "accounts; DROP TABLE x", Columns: spec.Columns},
			{Table: "accounts", Columns: []ColumnSpec{{Name: "email", Type: "xml"}}},
		} {
			if _, err := p.MigrateTable(context.Background(), db, bad, RewriteOptions{}); !errors.Is(err, ErrConfig) {
				t.Fatalf("bad spec %+v: err = %v", bad, err)
			}
		}
	})
}
