package ormplugin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"gorm.io/gorm"
)

// Patient binds its encrypted fields to a primary key set before insert
// (a UUID-like string).
type Patient struct {
	ID        string `gorm:"primaryKey;size:36"`
	Name      string
	Diagnosis string `gorm:"serializer:kms" kms:"bind=ID"`
	Email     string `gorm:"serializer:kms" kms:"index=email_bidx,bind=id"`
	EmailBidx []byte `gorm:"size:32;index"`
}

// patientV1 is the same table before row binding was enabled.
type patientV1 struct {
	ID        string `gorm:"primaryKey;size:36"`
	Name      string
	Diagnosis string `gorm:"serializer:kms"`
	Email     string `gorm:"serializer:kms" kms:"index=email_bidx"`
	EmailBidx []byte `gorm:"size:32;index"`
}

func (patientV1) TableName() string { return "patients" }

// Ticket has an auto-increment key and binds to another immutable column.
type Ticket struct {
	ID     uint
	Ref    string `gorm:"size:40;not null"`
	Secret string `gorm:"serializer:kms" kms:"bind=ref"`
}

// Snowflake ids are integers set by the application.
type Order struct {
	ID   int64  `gorm:"primaryKey;autoIncrement:false"`
	Card string `gorm:"serializer:kms" kms:"bind=ID"`
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func copyColumns(t *testing.T, db *gorm.DB, table, from, to string, cols ...string) {
	t.Helper()
	for _, c := range cols {
		var v []byte
		if err := db.Table(table).Select(c).Where("id = ?", from).Row().Scan(&v); err != nil {
			t.Fatal(err)
		}
		if err := db.Table(table).Where("id = ?", to).Update(c, v).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func TestRowBindingStopsCopiedCiphertext(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db, Config{})
		if err := db.AutoMigrate(&Patient{}); err != nil {
			t.Fatal(err)
		}
		a := Patient{ID: newID(), Name: "a", Diagnosis: "flu", Email: "a@example.com"}
		b := Patient{ID: newID(), Name: "b", Diagnosis: "cold", Email: "b@example.com"}
		if err := db.Create(&[]*Patient{&a, &b}).Error; err != nil {
			t.Fatal(err)
		}
		if s := storedRaw(t, db, "patients", "diagnosis", a.ID); !strings.HasPrefix(s, valuePrefix2) {
			t.Fatalf("bound value stored as %q", s[:5])
		}
		var got Patient
		if err := db.First(&got, "id = ?", b.ID).Error; err != nil || got.Diagnosis != "cold" {
			t.Fatalf("read: %v %+v", err, got)
		}
		// An attacker with write access copies a's ciphertexts (and blind
		// index) into b's row.
		copyColumns(t, db, "patients", a.ID, b.ID, "diagnosis", "email", "email_bidx")
		got = Patient{}
		err := db.First(&got, "id = ?", b.ID).Error
		var de *DecryptError
		if !errors.Is(err, ErrDecrypt) || !errors.As(err, &de) || de.Column != "diagnosis" || !strings.Contains(de.PrimaryKey, b.ID) {
			t.Fatalf("copied ciphertext: err = %v, want ErrDecrypt naming row %s", err, b.ID)
		}
		if got.Diagnosis == "flu" || got.Email == a.Email {
			t.Fatal("copied value decrypted as the other row's")
		}
		// Equal finds both rows by the copied blind index, but the copy does not decrypt.
		var found []Patient
		err = db.Where(Equal("Email", a.Email)).Order("name").Find(&found).Error
		if !errors.Is(err, ErrDecrypt) || !strings.Contains(err.Error(), b.ID) || strings.Contains(err.Error(), a.ID) {
			t.Fatalf("Equal over a copied row: %v", err)
		}
		// Map reads check the binding too.
		var maps []map[string]any
		if err := db.Model(&Patient{}).Where("id = ?", b.ID).Find(&maps).Error; !errors.Is(err, ErrDecrypt) {
			t.Fatalf("map read of a copied row: %v", err)
		}
		maps = nil
		if err := db.Model(&Patient{}).Where("id = ?", a.ID).Find(&maps).Error; err != nil || maps[0]["diagnosis"] != "flu" {
			t.Fatalf("map read: %v %v", err, maps)
		}
	})
}

func storedRaw(t *testing.T, db *gorm.DB, table, col string, id any) string {
	t.Helper()
	var s string
	if err := db.Table(table).Select(col).Where("id = ?", id).Row().Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRowBindingRefusedOnGeneratedKeys(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite)
	p, _, _ := setup(t, db, Config{})
	type AutoInc struct {
		ID     uint
		Secret string `gorm:"serializer:kms" kms:"bind=ID"`
	}
	type DBDefault struct {
		ID     string `gorm:"primaryKey;default:(lower(hex(randomblob(16))))"`
		Secret string `gorm:"serializer:kms" kms:"bind=ID"`
	}
	type Floaty struct {
		ID     string `gorm:"primaryKey"`
		F      float64
		Secret string `gorm:"serializer:kms" kms:"bind=F"`
	}
	for name, m := range map[string]any{"auto-increment": &AutoInc{}, "db default": &DBDefault{}, "float": &Floaty{}} {
		t.Run(name, func(t *testing.T) {
			err := p.Validate(m)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate: %v, want ErrConfig", err)
			}
			if name == "auto-increment" && !strings.Contains(err.Error(), "auto-increment") {
				t.Fatalf("unclear error: %v", err)
			}
		})
	}
	if err := db.AutoMigrate(&AutoInc{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Create(&AutoInc{Secret: "x"}).Error; !errors.Is(err, ErrConfig) {
		t.Fatalf("Create with a bound auto-increment key: %v", err)
	}
	if err := p.Validate(&Patient{}, &Ticket{}, &Order{}); err != nil {
		t.Fatalf("sound bindings refused: %v", err)
	}
}

func TestRowBindingOtherColumnAndUpdates(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db, Config{})
		if err := db.AutoMigrate(&Ticket{}, &Order{}); err != nil {
			t.Fatal(err)
		}
		x, y := Ticket{Ref: "T-1", Secret: "s1"}, Ticket{Ref: "T-2", Secret: "s2"}
		if err := db.Create(&[]*Ticket{&x, &y}).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Create(&Ticket{Secret: "no ref"}).Error; !errors.Is(err, ErrBindMissing) {
			t.Fatalf("create with an empty bound column: %v", err)
		}
		if err := db.Model(&x).Update("secret", "s1b").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Model(&Ticket{}).Where("id = ?", y.ID).Update("secret", "lost").Error; !errors.Is(err, ErrBindMissing) {
			t.Fatalf("update without the bound value: %v", err)
		}
		// Save of a row whose bound column changed matches no row: the ciphertext never lands on another ref.
		if err := db.Model(&Ticket{ID: y.ID, Ref: "T-1"}).Updates(map[string]any{"secret": "moved"}).Error; err != nil {
			t.Fatal(err)
		}
		var got []Ticket
		if err := db.Order("id").Find(&got).Error; err != nil || len(got) != 2 || got[0].Secret != "s1b" || got[1].Secret != "s2" {
			t.Fatalf("tickets: %v %+v", err, got)
		}
		copyColumns(t, db, "tickets", itoa(x.ID), itoa(y.ID), "secret")
		if err := db.First(&Ticket{}, y.ID).Error; !errors.Is(err, ErrDecrypt) {
			t.Fatalf("copied ticket secret: %v", err)
		}
		o := Order{ID: 1234567890123, Card: "4111"}
		if err := db.Create(&o).Error; err != nil {
			t.Fatal(err)
		}
		var og Order
		if err := db.First(&og, o.ID).Error; err != nil || og.Card != "4111" {
			t.Fatalf("snowflake-bound read: %v %+v", err, og)
		}
	})
}

func itoa(id uint) string { return strconv.FormatUint(uint64(id), 10) }

// TestRowBindingKeepsOldValuesReadable: values written before binding was
// enabled (format 1) stay readable, and Reencrypt upgrades them.
func TestRowBindingKeepsOldValuesReadable(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, _, _ := setup(t, db, Config{})
		if err := db.AutoMigrate(&patientV1{}); err != nil {
			t.Fatal(err)
		}
		old := patientV1{ID: newID(), Name: "old", Diagnosis: "measles", Email: "old@example.com"}
		if err := db.Create(&old).Error; err != nil {
			t.Fatal(err)
		}
		if s := storedRaw(t, db, "patients", "diagnosis", old.ID); !strings.HasPrefix(s, valuePrefix) {
			t.Fatalf("v1 value %q", s[:5])
		}
		var got Patient
		if err := db.First(&got, "id = ?", old.ID).Error; err != nil || got.Diagnosis != "measles" {
			t.Fatalf("v1 value through the bound model: %v %+v", err, got)
		}
		prog, err := p.Reencrypt(context.Background(), db, &Patient{}, RewriteOptions{OlderThanVersion: 1, KeepKeys: true})
		if err != nil || prog.Rewritten != 2 {
			t.Fatalf("upgrade: %v %+v", err, prog)
		}
		if s := storedRaw(t, db, "patients", "diagnosis", old.ID); !strings.HasPrefix(s, valuePrefix2) {
			t.Fatalf("after Reencrypt: %q", s[:5])
		}
		got = Patient{}
		if err := db.Where(Equal("Email", "old@example.com")).First(&got).Error; err != nil || got.Diagnosis != "measles" {
			t.Fatalf("after upgrade: %v %+v", err, got)
		}
		// A bound value read through a model that does not declare the binding fails closed.
		var v1 patientV1
		if err := db.First(&v1, "id = ?", old.ID).Error; !errors.Is(err, ErrDecrypt) {
			t.Fatalf("bound value through an unbound model: %v", err)
		}
	})
}

// TestRowBindingMigration: kmsctl-style migration of a bound column.
func TestRowBindingMigration(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, _, _ := setup(t, db, Config{})
		type legacyTicket struct {
			ID     uint
			Ref    string `gorm:"size:40;not null"`
			Secret string
		}
		if err := db.Table("tickets").AutoMigrate(&legacyTicket{}); err != nil {
			t.Fatal(err)
		}
		if err := db.Table("tickets").Create(&[]legacyTicket{{Ref: "A", Secret: "sa"}, {Ref: "B", Secret: "sb"}}).Error; err != nil {
			t.Fatal(err)
		}
		spec := TableSpec{Table: "tickets", Columns: []ColumnSpec{{Name: "secret", Bind: "ref"}}}
		if _, err := p.MigrateTable(context.Background(), db, spec, RewriteOptions{}); err != nil {
			t.Fatal(err)
		}
		var got []Ticket
		if err := db.Order("id").Find(&got).Error; err != nil || got[0].Secret != "sa" || got[1].Secret != "sb" {
			t.Fatalf("after migration: %v %+v", err, got)
		}
		pspec := TableSpec{Table: "patients", StringKey: true, Columns: []ColumnSpec{{Name: "diagnosis", Bind: "id"}}}
		if err := db.AutoMigrate(&Patient{}); err != nil {
			t.Fatal(err)
		}
		pt := Patient{ID: newID(), Diagnosis: "d"}
		if err := db.Create(&pt).Error; err != nil {
			t.Fatal(err)
		}
		res, err := p.VerifyTable(context.Background(), db, pspec, VerifyOptions{})
		if err != nil || res.Bad() != 0 || res.Values != 1 {
			t.Fatalf("verify of a pk-bound column: %+v %v", res, err)
		}
	})
}
