package ormplugin

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"gorm.io/gorm"
)

// Other is a second table with the same column names as Customer.
type Other struct {
	ID    uint
	Email string  `gorm:"serializer:kms"`
	Phone *string `gorm:"serializer:kms"`
}

func storedEmail(t *testing.T, db *gorm.DB, table string, id uint) string {
	t.Helper()
	var s string
	if err := db.Table(table).Select("email").Where("id = ?", id).Row().Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCiphertextBoundToTableAndColumn(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db, Config{})
		if err := db.AutoMigrate(&Other{}); err != nil {
			t.Fatal(err)
		}
		a, b := sample("victim"), sample("attacker")
		if err := db.Create(&[]*Customer{&a, &b}).Error; err != nil {
			t.Fatal(err)
		}
		o := Other{Email: "o@example.com"}
		if err := db.Create(&o).Error; err != nil {
			t.Fatal(err)
		}
		ct := storedEmail(t, db, "customers", a.ID)
		cases := []struct {
			name, table, col string
			id               uint
			read             func() error
		}{
			{"other column same table", "customers", "phone", b.ID, func() error { var c Customer; return db.First(&c, b.ID).Error }},
			{"same column other table", "others", "email", o.ID, func() error { var x Other; return db.First(&x, o.ID).Error }},
			{"other column other table", "others", "phone", o.ID, func() error { var x Other; return db.First(&x, o.ID).Error }},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if err := db.Table(c.table).Where("id = ?", c.id).Update(c.col, ct).Error; err != nil {
					t.Fatal(err)
				}
				if err := c.read(); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("copied ciphertext: err = %v, want ErrDecrypt", err)
				}
			})
		}
		// Tampering with one character is the same opaque error.
		tampered := []byte(ct)
		i := len(tampered) - 3
		tampered[i] ^= 'A' ^ 'B'
		if tampered[i] == ct[i] {
			tampered[i] = 'x'
		}
		if err := db.Table("customers").Where("id = ?", a.ID).Update("email", string(tampered)).Error; err != nil {
			t.Fatal(err)
		}
		var c Customer
		if err := db.First(&c, a.ID).Error; !errors.Is(err, ErrDecrypt) {
			t.Fatalf("tampered: err = %v, want ErrDecrypt", err)
		}
	})
}

func TestKMSCalledPerDataKeyNotPerRow(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		_, kms, calls := setup(t, db, Config{})
		rows := make([]Customer, 200)
		for i := range rows {
			rows[i] = sample("bulk")
		}
		if err := db.CreateInBatches(&rows, 50).Error; err != nil {
			t.Fatal(err)
		}
		// 7 encrypted columns: one data key each, plus one blind-index key.
		if got := calls.generate.Load(); got != 8 {
			t.Fatalf("GenerateDataKey calls = %d, want 8", got)
		}
		var dk int64
		db.Table(DataKeyTable).Count(&dk)
		if dk != 7 {
			t.Fatalf("%d data keys stored, want 7", dk)
		}
		// A second process (cold caches) unwraps each data key once.
		fresh, err := gorm.Open(db.Dialector, &gorm.Config{Logger: db.Logger, ConnPool: db.ConnPool})
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh.Use(New(kms, Config{KeyID: testKeyID})); err != nil {
			t.Fatal(err)
		}
		before := calls.decrypt.Load()
		var got []Customer
		if err := fresh.Where(Equal("Email", "bulk@example.com")).Find(&got).Error; err != nil {
			t.Fatal(err)
		}
		if len(got) != 200 || got[199].Email != "bulk@example.com" {
			t.Fatalf("read %d rows", len(got))
		}
		if d := calls.decrypt.Load() - before; d != 8 {
			t.Fatalf("Decrypt calls for 200 rows = %d, want 8 (7 data keys + 1 index key)", d)
		}
	})
}

func TestDataKeyLimits(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantMin int64 // minimum number of email data keys for 10 rows
		sleep   time.Duration
	}{
		{"uses", Config{MaxKeyUses: 3}, 4, 0},
		{"bytes", Config{MaxKeyBytes: 40}, 4, 0},
		{"age", Config{MaxKeyAge: time.Millisecond}, 10, 2 * time.Millisecond},
	}
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				db := db.Session(&gorm.Session{NewDB: true})
				fresh, err := gorm.Open(db.Dialector, &gorm.Config{Logger: db.Logger, ConnPool: db.ConnPool})
				if err != nil {
					t.Fatal(err)
				}
				setup(t, fresh, c.cfg)
				var ids []uint
				for i := 0; i < 10; i++ {
					x := sample("limit-" + c.name)
					if err := fresh.Create(&x).Error; err != nil {
						t.Fatal(err)
					}
					ids = append(ids, x.ID)
					time.Sleep(c.sleep)
				}
				var n int64
				fresh.Table(DataKeyTable).Where("col = ?", "email").Count(&n)
				if n < c.wantMin {
					t.Fatalf("%d email data keys, want >= %d", n, c.wantMin)
				}
				var got []Customer
				if err := fresh.Find(&got, ids).Error; err != nil || len(got) != 10 {
					t.Fatalf("read back: %d rows, %v", len(got), err)
				}
				for _, g := range got {
					if g.Email != "limit-"+c.name+"@example.com" {
						t.Fatalf("email %q", g.Email)
					}
				}
				fresh.Where("1 = 1").Delete(&Customer{})
				fresh.Where("1 = 1").Delete(&dataKeyRow{})
				fresh.Where("1 = 1").Delete(&indexKeyRow{})
			})
		}
	})
}

func TestKMSUnavailable(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		_, kms, _ := setup(t, db, Config{})
		a := sample("cached")
		if err := db.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
		kms.SetReachable(false)
		// Keys are cached: writes and reads keep working.
		b := sample("whiledown")
		if err := db.Create(&b).Error; err != nil {
			t.Fatalf("create with cached key while kms down: %v", err)
		}
		if err := db.Model(&b).Update("email", "changed@example.com").Error; err != nil {
			t.Fatal(err)
		}
		var got []Customer
		if err := db.Where(Equal("Email", "changed@example.com")).Find(&got).Error; err != nil || len(got) != 1 {
			t.Fatalf("read while kms down: %v (%d rows)", err, len(got))
		}
		// A process without cached keys: clear error, nothing written.
		fresh, err := gorm.Open(db.Dialector, &gorm.Config{Logger: db.Logger, ConnPool: db.ConnPool})
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh.Use(New(kms, Config{KeyID: testKeyID})); err != nil {
			t.Fatal(err)
		}
		var before, after int64
		db.Model(&Customer{}).Count(&before)
		c := sample("nokey")
		err = fresh.Create(&c).Error
		if !errors.Is(err, ErrKMS) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("create without key while kms down: err = %v, want ErrKMS", err)
		}
		cs := []Customer{sample("nokey1"), sample("nokey2")}
		if err := fresh.CreateInBatches(&cs, 1).Error; !errors.Is(err, ErrKMS) {
			t.Fatalf("CreateInBatches: err = %v, want ErrKMS", err)
		}
		if err := fresh.Model(&Customer{ID: a.ID}).Update("email", "x@example.com").Error; !errors.Is(err, ErrKMS) {
			t.Fatalf("Update: err = %v, want ErrKMS", err)
		}
		db.Model(&Customer{}).Count(&after)
		if after != before {
			t.Fatalf("rows written while kms down: %d -> %d", before, after)
		}
		var x Customer
		if err := fresh.First(&x, a.ID).Error; !errors.Is(err, ErrKMS) {
			t.Fatalf("read without key: err = %v, want ErrKMS", err)
		}
		kms.SetReachable(true)
		if err := fresh.First(&x, a.ID).Error; err != nil || x.Email != a.Email {
			t.Fatalf("after recovery: %v %q", err, x.Email)
		}
	})
}

func TestPlaintextInDatabase(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		_, kms, _ := setup(t, db, Config{})
		if err := db.Exec("INSERT INTO customers (name, email) VALUES (?, ?)", "legacy", "legacy@example.com").Error; err != nil {
			t.Fatal(err)
		}
		var c Customer
		if err := db.Where("name = ?", "legacy").First(&c).Error; !errors.Is(err, ErrNotCiphertext) {
			t.Fatalf("plaintext read without opt-in: err = %v, want ErrNotCiphertext", err)
		}
		if c.Email != "" {
			t.Fatalf("plaintext passed through: %q", c.Email)
		}
		optIn, err := gorm.Open(db.Dialector, &gorm.Config{Logger: db.Logger, ConnPool: db.ConnPool})
		if err != nil {
			t.Fatal(err)
		}
		if err := optIn.Use(New(kms, Config{KeyID: testKeyID, AllowPlaintextReads: true})); err != nil {
			t.Fatal(err)
		}
		if err := optIn.Where("name = ?", "legacy").First(&c).Error; err != nil || c.Email != "legacy@example.com" {
			t.Fatalf("opt-in plaintext read: %v %q", err, c.Email)
		}
		// Opt-in does not weaken ciphertext checks.
		if err := db.Exec("UPDATE customers SET email = ? WHERE name = ?", "kms1:AAAA", "legacy").Error; err != nil {
			t.Fatal(err)
		}
		if err := optIn.Where("name = ?", "legacy").First(&c).Error; !errors.Is(err, ErrDecrypt) {
			t.Fatalf("malformed ciphertext with opt-in: err = %v, want ErrDecrypt", err)
		}
	})
}

func TestUnsupportedOperationsFail(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db, Config{})
		c := sample("unsup")
		if err := db.Create(&c).Error; err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			run  func() error
			want error
		}{
			{"create from map", func() error {
				return db.Model(&Customer{}).Create(map[string]any{"name": "m", "email": "m@example.com"}).Error
			}, ErrUnsupported},
			{"expression on encrypted column", func() error {
				return db.Model(&c).Update("email", gorm.Expr("UPPER(email)")).Error
			}, ErrUnsupported},
			{"struct condition in update", func() error {
				return db.Model(&Customer{}).Where(&Customer{Email: c.Email}).Update("name", "x").Error
			}, ErrEncryptedCondition},
			{"struct condition in delete", func() error {
				return db.Where(&Customer{Email: c.Email}).Delete(&Customer{}).Error
			}, ErrEncryptedCondition},
			{"Equal without index", func() error {
				var x []Customer
				return db.Where(Equal("Phone", "1")).Find(&x).Error
			}, ErrConfig},
			{"unsupported field type", func() error {
				type Bad struct {
					ID uint
					F  chan int `gorm:"serializer:kms"`
				}
				return db.Create(&Bad{F: make(chan int)}).Error
			}, ErrUnsupportedType},
			{"bad kms tag", func() error {
				type BadTag struct {
					ID uint
					F  string `gorm:"serializer:kms" kms:"index=nope"`
				}
				return db.Create(&BadTag{F: "x"}).Error
			}, ErrConfig},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.run(); !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			})
		}
		var got Customer
		if err := db.First(&got, c.ID).Error; err != nil || got.Email != c.Email || got.Name != c.Name {
			t.Fatalf("row changed by failed operations: %v %+v", err, got)
		}
	})
}

func TestRolledBackTransactionKeepsKeysConsistent(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db, Config{MaxKeyUses: 2})
		errRollback := errors.New("rollback")
		for round := 0; round < 3; round++ {
			err := db.Transaction(func(tx *gorm.DB) error {
				for i := 0; i < 3; i++ {
					x := sample("rolled")
					if err := tx.Create(&x).Error; err != nil {
						return err
					}
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatal(err)
			}
		}
		// Keys created inside rolled back transactions are never reused.
		var ids []uint
		for i := 0; i < 5; i++ {
			x := sample("kept")
			if err := db.Create(&x).Error; err != nil {
				t.Fatal(err)
			}
			ids = append(ids, x.ID)
		}
		fresh, err := gorm.Open(db.Dialector, &gorm.Config{Logger: db.Logger, ConnPool: db.ConnPool})
		if err != nil {
			t.Fatal(err)
		}
		p := db.Config.Plugins[PluginName].(*Plugin)
		if err := fresh.Use(New(p.keys.kms, Config{KeyID: testKeyID})); err != nil {
			t.Fatal(err)
		}
		var got []Customer
		if err := fresh.Find(&got, ids).Error; err != nil || len(got) != 5 {
			t.Fatalf("cold read after rollbacks: %v (%d rows)", err, len(got))
		}
	})
}

func TestNewValidatesConfig(t *testing.T) {
	kms, _ := newTestKMS(t)
	db := dbtest.Open(t, dbtest.SQLite)
	cases := []struct {
		name string
		kms  KMS
		cfg  Config
	}{
		{"no key", kms, Config{}},
		{"nil kms", nil, Config{KeyID: "k"}},
		{"uses over nonce bound", kms, Config{KeyID: "k", MaxKeyUses: MaxKeyUsesLimit + 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := db.Use(New(c.kms, c.cfg)); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

func TestConcurrentWritersAndReaders(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		_, _, calls := setup(t, db, Config{MaxKeyUses: 7})
		const workers, each = 4, 15
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			go func(w int) {
				for i := 0; i < each; i++ {
					c := sample(fmt.Sprintf("w%d-%d", w, i))
					if err := db.Create(&c).Error; err != nil {
						errs <- err
						return
					}
					var got Customer
					if err := db.Where(Equal("Email", c.Email)).First(&got).Error; err != nil {
						errs <- err
						return
					}
					if got.ID != c.ID || got.Email != c.Email {
						errs <- fmt.Errorf("read %+v for %+v", got, c)
						return
					}
				}
				errs <- nil
			}(w)
		}
		for w := 0; w < workers; w++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		// 60 rows, 7 uses per key: at least 9 data keys per column, and
		// still one KMS call per data key.
		var keys int64
		db.Table(DataKeyTable).Count(&keys)
		if keys < 9*7 || calls.generate.Load() != keys+1 {
			t.Fatalf("%d data keys, %d GenerateDataKey calls", keys, calls.generate.Load())
		}
	})
}
