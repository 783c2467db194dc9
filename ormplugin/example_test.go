package ormplugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// User shows the tags: `gorm:"serializer:kms"` encrypts a field and
// `kms:"index=<column>"` keeps a blind index for equality search.
type User struct {
	ID        uint
	Email     string  `gorm:"serializer:kms;size:255" kms:"index=email_bidx"`
	EmailBidx []byte  `gorm:"size:32;index"`
	Phone     *string `gorm:"serializer:kms"`
}

func exampleDB() (*gorm.DB, func()) {
	dir, err := os.MkdirTemp("", "ormplugin-example")
	if err != nil {
		panic(err)
	}
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	return db, func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
		_ = os.RemoveAll(dir)
	}
}

func Example() {
	db, done := exampleDB()
	defer done()
	tb := newExampleTB()
	defer tb.close()
	kms, _ := newTestKMS(tb) // in an application: a *kmsclient.Client

	if err := db.Use(New(kms, Config{KeyID: "alias/orders"})); err != nil {
		panic(err)
	}
	if err := db.AutoMigrate(&User{}); err != nil {
		panic(err)
	}
	phone := "+1 555 0100"
	u := User{Email: "alice@example.com", Phone: &phone}
	if err := db.Create(&u).Error; err != nil {
		panic(err)
	}
	fmt.Println("caller keeps plaintext and id:", u.Email, u.ID)

	var stored string
	_ = db.Table("users").Select("email").Where("id = ?", u.ID).Row().Scan(&stored)
	fmt.Println("stored as ciphertext:", strings.HasPrefix(stored, "kms1:"), len(stored) == CiphertextLen(len(u.Email)))

	var found User
	if err := db.Where(Equal("Email", "alice@example.com")).First(&found).Error; err != nil {
		panic(err)
	}
	fmt.Println("found:", found.Email, *found.Phone)
	// Output:
	// caller keeps plaintext and id: alice@example.com 1
	// stored as ciphertext: true true
	// found: alice@example.com +1 555 0100
}

func ExampleEqual() {
	db, done := exampleDB()
	defer done()
	tb := newExampleTB()
	defer tb.close()
	kms, _ := newTestKMS(tb)
	_ = db.Use(New(kms, Config{KeyID: "alias/orders"}))
	_ = db.AutoMigrate(&User{})
	_ = db.Create(&[]User{{Email: "a@example.com"}, {Email: "b@example.com"}}).Error

	var n int64
	db.Model(&User{}).Where(Equal("Email", "b@example.com")).Count(&n)
	fmt.Println(n)
	// Output: 1
}

func ExamplePlugin_MigratePlaintext() {
	db, done := exampleDB()
	defer done()
	tb := newExampleTB()
	defer tb.close()
	kms, _ := newTestKMS(tb)
	// Existing plaintext data.
	_ = db.Exec("CREATE TABLE users (id integer primary key, email text, email_bidx blob, phone text)").Error
	_ = db.Exec("INSERT INTO users (email, phone) VALUES ('a@example.com', '1'), ('b@example.com', NULL)").Error

	p := New(kms, Config{KeyID: "alias/orders"})
	_ = db.Use(p)
	prog, err := p.MigratePlaintext(context.Background(), db, &User{}, RewriteOptions{
		BatchSize: 500,
		Progress: func(pr Progress) {
			fmt.Printf("%s %s: %d/%d rows scanned, %d plaintext values found, %d encrypted so far\n",
				pr.Table, pr.Phase, pr.Scanned, pr.Total, pr.Found, pr.Rewritten)
		},
	})
	if err != nil {
		panic(err)
	}
	var u User
	_ = db.Where(Equal("Email", "b@example.com")).First(&u).Error
	fmt.Println(prog.Rewritten, u.Email, u.Phone == nil)
	// Output:
	// users check: 2/2 rows scanned, 3 plaintext values found, 0 encrypted so far
	// users rewrite: 2/2 rows scanned, 3 plaintext values found, 3 encrypted so far
	// users verify: 2/2 rows scanned, 0 plaintext values found, 3 encrypted so far
	// 3 b@example.com true
}

func ExampleRenewDataKeys() {
	db, done := exampleDB()
	defer done()
	tb := newExampleTB()
	defer tb.close()
	kms, _ := newTestKMS(tb)
	_ = db.Use(New(kms, Config{KeyID: "alias/orders"}))
	_ = db.AutoMigrate(&User{})
	phone := "+1 555 0100"
	_ = db.Create(&User{Email: "a@example.com", Phone: &phone}).Error

	kms.Rotate() // an admin rotates the master key
	prog, err := RenewDataKeys(context.Background(), db, kms, RenewOptions{})
	if err != nil {
		panic(err)
	}
	versions, _ := DataKeyVersions(context.Background(), db)
	for _, v := range versions {
		fmt.Printf("re-wrapped %d keys; version %d now wraps %d keys\n", prog.Rewrapped, v.KeyVersion, v.Keys)
	}
	// Output: re-wrapped 3 keys; version 2 now wraps 3 keys
}

// MigrateTable is what `kmsctl` runs: the table is described by names.
func ExamplePlugin_MigrateTable() {
	db, done := exampleDB()
	defer done()
	tb := newExampleTB()
	defer tb.close()
	kms, _ := newTestKMS(tb)
	_ = db.Exec("CREATE TABLE orders (id integer primary key, card text, card_bidx blob, meta text)").Error
	_ = db.Exec(`INSERT INTO orders (card, meta) VALUES ('4111-1111', '{"vip": true}')`).Error

	p := New(kms, Config{KeyID: "alias/orders"})
	_ = db.Use(p)
	prog, err := p.MigrateTable(context.Background(), db, TableSpec{
		Table: "orders",
		Columns: []ColumnSpec{
			{Name: "card", Type: TypeString, Index: "card_bidx"},
			{Name: "meta", Type: TypeJSON},
		},
	}, RewriteOptions{Progress: func(pr Progress) { fmt.Printf("%s %d/%d\n", pr.Phase, pr.Scanned, pr.Total) }})
	fmt.Println(prog.Rewritten, prog.Remaining, err)
	// Output:
	// check 1/1
	// rewrite 1/1
	// verify 1/1
	// 2 0 <nil>
}

func ExampleCiphertextLen() {
	// A column for 64-byte plaintexts needs this many characters:
	fmt.Println(CiphertextLen(64))
	// Output: 139
}

// TableStatus tells, without kmsd, how many plaintext values a table still
// has: 0 everywhere means migration is complete.
func ExampleTableStatus() {
	db, done := exampleDB()
	defer done()
	tb := newExampleTB()
	defer tb.close()
	kms, _ := newTestKMS(tb)
	_ = db.Exec("CREATE TABLE users (id integer primary key, email text, email_bidx blob, phone text)").Error
	_ = db.Exec("INSERT INTO users (email, phone) VALUES ('a@example.com', '1'), ('b@example.com', NULL)").Error
	spec := TableSpec{Table: "users", Columns: []ColumnSpec{{Name: "email", Index: "email_bidx"}, {Name: "phone"}}}
	show := func() {
		cols, _ := TableStatus(context.Background(), db, spec)
		for _, c := range cols {
			fmt.Printf("%s: %d values, %d plaintext, %d keys in use\n", c.Column, c.Values, c.Plaintext, c.KeysInUse)
		}
	}
	show()
	p := New(kms, Config{KeyID: "alias/orders"})
	_ = db.Use(p)
	_, _ = p.MigrateTable(context.Background(), db, spec, RewriteOptions{})
	show()
	// Output:
	// email: 2 values, 2 plaintext, 0 keys in use
	// phone: 1 values, 1 plaintext, 0 keys in use
	// email: 2 values, 0 plaintext, 1 keys in use
	// phone: 1 values, 0 plaintext, 1 keys in use
}

// Verify lists the values that cannot be read, by primary key and column.
func ExamplePlugin_Verify() {
	db, done := exampleDB()
	defer done()
	tb := newExampleTB()
	defer tb.close()
	kms, _ := newTestKMS(tb)
	p := New(kms, Config{KeyID: "alias/orders"})
	_ = db.Use(p)
	_ = db.AutoMigrate(&User{})
	_ = db.Create(&[]User{{Email: "a@example.com"}, {Email: "b@example.com"}}).Error
	_ = db.Exec("UPDATE users SET email = 'written without the plugin' WHERE id = 2").Error

	var u []User
	err := db.Find(&u).Error
	fmt.Println(err)
	res, _ := p.Verify(context.Background(), db, &User{}, VerifyOptions{Report: func(b BadValue) {
		fmt.Println("bad:", b.PrimaryKey, b.Column, b.Problem)
	}})
	fmt.Println(res.Rows, res.Bad())
	// Output:
	// users.email (id=2): ormplugin: stored value is not ormplugin ciphertext
	// bad: 2 email plaintext
	// 2 1
}

// ExamplePlugin_Renew renews a database after a master key rotation:
// re-wrap the data keys, then re-encrypt the users table under fresh data
// keys. In a service the kmsgo starter runs this as a scheduled job
// (database.renewal) that saves its cursor, so an interrupted run resumes.
func ExamplePlugin_Renew() {
	db, done := exampleDB()
	defer done()
	tb := newExampleTB()
	defer tb.close()
	kms, _ := newTestKMS(tb) // in an application: a *kmsclient.Client

	p := New(kms, Config{KeyID: "alias/orders"})
	if err := db.Use(p); err != nil {
		panic(err)
	}
	if err := db.AutoMigrate(&User{}); err != nil {
		panic(err)
	}
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if err := db.Create(&User{Email: e}).Error; err != nil {
			panic(err)
		}
	}
	kms.Rotate() // kmsctl keys rotate alias/orders

	var cursor string // persist it (jobs.SaveCursor does, in kmsgo_jobs)
	rep, err := p.Renew(context.Background(), db, kms, RenewalOptions{
		Mode:       RenewReencrypt,
		Models:     []any{&User{}},
		SaveCursor: func(_ context.Context, c string) error { cursor = c; return nil },
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("keys: %d scanned, %d re-wrapped\n", rep.Keys.Scanned, rep.Keys.Renewed)
	fmt.Printf("values: %d scanned, %d re-encrypted, %d failed\n", rep.Values.Scanned, rep.Values.Renewed, rep.Values.Failed)
	fmt.Printf("cursor cleared: %v\n", cursor == "")
	// Output:
	// keys: 2 scanned, 2 re-wrapped
	// values: 3 scanned, 3 re-encrypted, 0 failed
	// cursor cleared: true
}
