package ormplugin

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"gorm.io/gorm"
)

// TestDecryptErrorsNameTheRow: item 4. One tampered value and one
// plaintext value in a table of five: the error names table, column and
// primary key of each (never the value), the other rows read, and
// Verify lists exactly those two.
func TestDecryptErrorsNameTheRow(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, _, _ := setup(t, db, Config{})
		cs := make([]Customer, 5)
		for i := range cs {
			cs[i] = sample(fmt.Sprintf("diag%d", i))
		}
		if err := db.Create(&cs).Error; err != nil {
			t.Fatal(err)
		}
		tampered, plain := cs[1], cs[3]
		ct := storedEmail(t, db, "customers", tampered.ID)
		bad := []byte(ct)
		if i := len(bad) - 10; bad[i] == 'A' { // stays valid base64: fails authentication, not parsing
			bad[i] = 'B'
		} else {
			bad[i] = 'A'
		}
		if err := db.Table("customers").Where("id = ?", tampered.ID).Update("note", string(bad)).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Table("customers").Where("id = ?", plain.ID).Update("phone", "+1-555-plain").Error; err != nil {
			t.Fatal(err)
		}
		var got []Customer
		err := db.Order("id").Find(&got).Error
		if !errors.Is(err, ErrDecrypt) || !errors.Is(err, ErrNotCiphertext) {
			t.Fatalf("Find: %v", err)
		}
		msg := err.Error()
		for _, want := range []string{
			fmt.Sprintf("customers.note (id=%d)", tampered.ID),
			fmt.Sprintf("customers.phone (id=%d)", plain.ID),
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not say %q", msg, want)
			}
		}
		if strings.Contains(msg, "plain") || strings.Contains(msg, ct[:20]) || strings.Contains(msg, tampered.Note.String) {
			t.Errorf("error leaks a value: %q", msg)
		}
		var de *DecryptError
		if !errors.As(err, &de) || de.Table != "customers" || de.PrimaryKey == "" {
			t.Fatalf("errors.As: %+v", de)
		}
		// The good rows and the good fields of the bad rows are read; the bad fields are zero.
		if len(got) != 5 || got[0].Email != cs[0].Email || got[1].Email != tampered.Email || got[1].Note.Valid || got[3].Phone != nil {
			t.Fatalf("rows read around the bad values: %+v", got)
		}
		// First on one bad row: the same location.
		var one Customer
		if err := db.First(&one, plain.ID).Error; !errors.As(err, &de) || de.Column != "phone" || de.PrimaryKey != fmt.Sprintf("id=%d", plain.ID) {
			t.Fatalf("First: %v", err)
		}
		// ScanRows (no query callbacks) also names the row.
		rows, err := db.Model(&Customer{}).Where("id = ?", tampered.ID).Rows()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var c Customer
			if err := db.ScanRows(rows, &c); !errors.As(err, &de) || de.Column != "note" || !strings.Contains(de.PrimaryKey, fmt.Sprint(tampered.ID)) {
				t.Fatalf("ScanRows: %v", err)
			}
		}
		_ = rows.Close()

		var bads []BadValue
		spec := TableSpec{Table: "customers", Columns: []ColumnSpec{
			{Name: "email", Index: "email_bidx"}, {Name: "phone"}, {Name: "note"}, {Name: "secret", Type: TypeBytes},
			{Name: "profile", Type: TypeJSON}, {Name: "labels", Type: TypeJSON}, {Name: "code"},
		}}
		res, err := p.VerifyTable(context.Background(), db, spec, VerifyOptions{BatchSize: 2, Report: func(b BadValue) { bads = append(bads, b) }})
		if err != nil {
			t.Fatal(err)
		}
		want := []BadValue{
			{PrimaryKey: int64(tampered.ID), Column: "note", Problem: ProblemUndecryptable},
			{PrimaryKey: int64(plain.ID), Column: "phone", Problem: ProblemPlaintext},
		}
		if !reflect.DeepEqual(bads, want) || res.Rows != 5 || res.Plaintext != 1 || res.Undecryptable != 1 || res.KeysInUse["email"] != 1 {
			t.Fatalf("verify: %+v %+v", bads, res)
		}
	})
}

// TestManyBadRowsOneBoundedError: a Find over many bad rows reports the
// first ten and a count, not one line per value.
func TestManyBadRowsOneBoundedError(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite)
	setup(t, db, Config{})
	if err := db.Exec("INSERT INTO customers (name, email) VALUES " + strings.TrimSuffix(strings.Repeat("('n', 'plain'),", 30), ",")).Error; err != nil {
		t.Fatal(err)
	}
	var got []Customer
	err := db.Find(&got).Error
	if !errors.Is(err, ErrNotCiphertext) || strings.Count(err.Error(), "customers.email") != 10 || !strings.Contains(err.Error(), "20 more") {
		t.Fatalf("err = %v", err)
	}
}

// TestMigrationEncryptsPrefixLookalikes: item 5. Plaintext starting with
// the format prefix is encrypted, not skipped.
func TestMigrationEncryptsPrefixLookalikes(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, _, _ := setup(t, db, Config{})
		if err := db.AutoMigrate(&legacyAccount{}); err != nil {
			t.Fatal(err)
		}
		// A well-formed value naming a data key that does not exist.
		fake := encodeValue(storedValue{dkID: 77, nonce: make([]byte, nonceLen), sealed: make([]byte, tagLen+4)})
		lookalikes := []string{"kms1:hello world", "kms1:", "kms2:AAAA", fake, "kms1:" + strings.Repeat("A", 60)}
		for i, s := range lookalikes {
			if err := db.Create(&legacyAccount{Email: fmt.Sprintf("u%d@example.com", i), Profile: `{}`, Note: &s}).Error; err != nil {
				t.Fatal(err)
			}
		}
		prog, err := p.MigratePlaintext(context.Background(), db, &Account{}, RewriteOptions{})
		if err != nil || prog.Rewritten != int64(3*len(lookalikes)) {
			t.Fatalf("migration: %v %+v", err, prog)
		}
		var all []Account
		if err := db.Order("id").Find(&all).Error; err != nil {
			t.Fatalf("read after migration: %v", err)
		}
		for i, a := range all {
			if a.Note == nil || *a.Note != lookalikes[i] {
				t.Fatalf("row %d note = %v, want %q", i, a.Note, lookalikes[i])
			}
		}
	})
}

// TestPluckDecrypts: Pluck of an encrypted column gives plaintext (it used
// to give the stored ciphertext).
func TestPluckDecrypts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db, Config{})
		a, b := sample("pa"), sample("pb")
		b.Phone = nil
		if err := db.Create(&[]*Customer{&a, &b}).Error; err != nil {
			t.Fatal(err)
		}
		var emails []string
		if err := db.Model(&Customer{}).Order("id").Pluck("email", &emails).Error; err != nil || !reflect.DeepEqual(emails, []string{a.Email, b.Email}) {
			t.Fatalf("Pluck email: %v %q", err, emails)
		}
		var phones []*string
		if err := db.Model(&Customer{}).Where("phone IS NOT NULL").Pluck("Phone", &phones).Error; err != nil || len(phones) != 1 || *phones[0] != *a.Phone {
			t.Fatalf("Pluck phone: %v %v", err, phones)
		}
		var secrets [][]byte
		if err := db.Model(&Customer{}).Order("id").Select("secret").Find(&secrets).Error; err != nil || string(secrets[0]) != string(a.Secret) {
			t.Fatalf("Select+Find secret: %v %q", err, secrets)
		}
		var profiles []any
		if err := db.Model(&Customer{}).Order("id").Pluck("profile", &profiles).Error; err != nil || profiles[0] != a.Profile {
			t.Fatalf("Pluck profile: %v %v", err, profiles)
		}
		var names []string
		if err := db.Model(&Customer{}).Order("id").Pluck("name", &names).Error; err != nil || names[0] != "pa" {
			t.Fatalf("Pluck of a plain column: %v %v", err, names)
		}
		if err := db.AutoMigrate(&Patient{}); err != nil {
			t.Fatal(err)
		}
		if err := db.Create(&Patient{ID: newID(), Diagnosis: "x"}).Error; err != nil {
			t.Fatal(err)
		}
		var diags []string
		if err := db.Model(&Patient{}).Pluck("diagnosis", &diags).Error; !errors.Is(err, ErrBindMissing) || len(diags) != 1 || diags[0] != "" {
			t.Fatalf("Pluck of a bound column: %v %q", err, diags)
		}
	})
}
