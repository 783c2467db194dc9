package ormplugin

import (
	"bytes"
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"gorm.io/gorm"
)

type Profile struct {
	City string `json:"city"`
	Age  int    `json:"age"`
}

// Customer is the model used by most tests: every supported field type.
type Customer struct {
	ID        uint
	Name      string
	Email     string            `gorm:"serializer:kms;size:255" kms:"index=email_bidx"`
	EmailBidx []byte            `gorm:"size:32;index"`
	Phone     *string           `gorm:"serializer:kms"`
	Note      sql.NullString    `gorm:"serializer:kms"`
	Secret    []byte            `gorm:"serializer:kms"`
	Profile   Profile           `gorm:"serializer:kms"`
	Labels    map[string]string `gorm:"serializer:kms"`
	Code      sql.Null[string]  `gorm:"serializer:kms"`
}

var encryptedCols = []string{"email", "phone", "note", "secret", "profile", "labels", "code"}

func strp(s string) *string { return &s }

func sample(name string) Customer {
	return Customer{
		Name:    name,
		Email:   name + "@example.com",
		Phone:   strp("+1-555-" + name),
		Note:    sql.NullString{String: "note of " + name, Valid: true},
		Secret:  []byte("secret-" + name),
		Profile: Profile{City: "city-" + name, Age: 42},
		Labels:  map[string]string{"tier": "gold-" + name},
		Code:    sql.Null[string]{V: "code-" + name, Valid: true},
	}
}

// setup opens the plugin on db and migrates the test model.
func setup(t *testing.T, db *gorm.DB, cfg Config) (*Plugin, testKMS, *callCounter) {
	t.Helper()
	kms, calls := newTestKMS(t)
	if cfg.KeyID == "" {
		cfg.KeyID = testKeyID
	}
	p := New(kms, cfg)
	if err := db.Use(p); err != nil {
		t.Fatal(err)
	}
	if err := db.AutoMigrate(&Customer{}); err != nil {
		t.Fatal(err)
	}
	return p, kms, calls
}

// rawRow reads the stored values of one row without the plugin's serializer.
func rawRow(t *testing.T, db *gorm.DB, table string, id uint) map[string]sql.NullString {
	t.Helper()
	out := map[string]sql.NullString{}
	for _, c := range encryptedCols {
		var v sql.NullString
		if err := db.Table(table).Select(c).Where("id = ?", id).Row().Scan(&v); err != nil {
			t.Fatalf("raw %s: %v", c, err)
		}
		out[c] = v
	}
	return out
}

// assertStoredEncrypted checks that every non-NULL encrypted column of the
// row is ormplugin ciphertext that does not contain the plaintext.
func assertStoredEncrypted(t *testing.T, db *gorm.DB, want Customer) {
	t.Helper()
	if want.ID == 0 {
		t.Fatal("primary key not set in the caller's struct")
	}
	raw := rawRow(t, db, "customers", want.ID)
	for c, v := range raw {
		if !v.Valid {
			continue
		}
		if !strings.HasPrefix(v.String, valuePrefix) {
			t.Errorf("column %s stored without encryption: %q", c, v.String)
		}
		for _, pt := range []string{want.Email, want.Note.String, string(want.Secret), want.Profile.City, want.Code.V} {
			if len(pt) >= 4 && strings.Contains(v.String, pt) {
				t.Errorf("column %s contains plaintext %q", c, pt)
			}
		}
	}
	if want.Email != "" && !raw["email"].Valid {
		t.Error("email stored as NULL")
	}
}

// assertPlain compares the plaintext fields of got with want.
func assertPlain(t *testing.T, got, want Customer) {
	t.Helper()
	got.EmailBidx, want.EmailBidx = nil, nil
	got.ID = want.ID
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plaintext mismatch:\n got %+v\nwant %+v", got, want)
	}
	for _, s := range []string{got.Email, got.Note.String, string(got.Secret), got.Code.V} {
		if strings.HasPrefix(s, valuePrefix) {
			t.Errorf("caller value holds ciphertext: %q", s)
		}
	}
}

// readBack loads the row by id and by its blind index and checks both.
func readBack(t *testing.T, db *gorm.DB, want Customer) {
	t.Helper()
	var got Customer
	if err := db.First(&got, want.ID).Error; err != nil {
		t.Fatalf("First: %v", err)
	}
	assertPlain(t, got, want)
	var byEmail []Customer
	if err := db.Where(Equal("Email", want.Email)).Find(&byEmail).Error; err != nil {
		t.Fatalf("Equal: %v", err)
	}
	if len(byEmail) != 1 || byEmail[0].ID != want.ID {
		t.Fatalf("Equal(%q) found %d rows", want.Email, len(byEmail))
	}
}

func TestWritePaths(t *testing.T) {
	type tc struct {
		name  string
		write func(t *testing.T, db *gorm.DB) Customer // returns the expected row
	}
	update := func(t *testing.T, db *gorm.DB, do func(c *Customer) *gorm.DB, mutate func(c *Customer)) Customer {
		c := sample("upd")
		if err := db.Create(&c).Error; err != nil {
			t.Fatal(err)
		}
		if err := do(&c).Error; err != nil {
			t.Fatal(err)
		}
		want := c
		mutate(&want)
		assertPlain(t, c, want) // the caller's struct holds plaintext
		return want
	}
	cases := []tc{
		{"Create", func(t *testing.T, db *gorm.DB) Customer {
			c := sample("alice")
			if err := db.Create(&c).Error; err != nil {
				t.Fatal(err)
			}
			assertPlain(t, c, sample("alice"))
			return c
		}},
		{"CreateInBatches", func(t *testing.T, db *gorm.DB) Customer {
			cs := []Customer{sample("b1"), sample("b2"), sample("b3"), sample("b4"), sample("b5")}
			if err := db.CreateInBatches(&cs, 2).Error; err != nil {
				t.Fatal(err)
			}
			for i := range cs {
				assertStoredEncrypted(t, db, cs[i])
				readBack(t, db, cs[i])
			}
			return cs[2]
		}},
		{"CreateSkipHooks", func(t *testing.T, db *gorm.DB) Customer {
			c := sample("skip")
			if err := db.Session(&gorm.Session{SkipHooks: true}).Create(&c).Error; err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"CreateInTransaction", func(t *testing.T, db *gorm.DB) Customer {
			a, b := sample("tx1"), sample("tx2")
			err := db.Transaction(func(tx *gorm.DB) error {
				if err := tx.Create(&a).Error; err != nil {
					return err
				}
				return tx.Create(&b).Error
			})
			if err != nil {
				t.Fatal(err)
			}
			assertStoredEncrypted(t, db, a)
			readBack(t, db, a)
			return b
		}},
		{"SaveNew", func(t *testing.T, db *gorm.DB) Customer {
			c := sample("savenew")
			if err := db.Save(&c).Error; err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"SaveExisting", func(t *testing.T, db *gorm.DB) Customer {
			return update(t, db, func(c *Customer) *gorm.DB {
				c.Email, c.Phone = "saved@example.com", nil
				return db.Save(c)
			}, func(c *Customer) { c.Email, c.Phone = "saved@example.com", nil })
		}},
		{"UpdatesStruct", func(t *testing.T, db *gorm.DB) Customer {
			return update(t, db, func(c *Customer) *gorm.DB {
				return db.Model(c).Updates(Customer{Email: "us@example.com", Profile: Profile{City: "Oslo"}})
			}, func(c *Customer) { c.Email, c.Profile = "us@example.com", Profile{City: "Oslo"} })
		}},
		{"UpdatesMap", func(t *testing.T, db *gorm.DB) Customer {
			return update(t, db, func(c *Customer) *gorm.DB {
				return db.Model(c).Updates(map[string]any{"email": "um@example.com", "secret": []byte("s2"), "note": nil})
			}, func(c *Customer) {
				c.Email, c.Secret, c.Note = "um@example.com", []byte("s2"), sql.NullString{}
			})
		}},
		{"UpdatesMapSkipHooks", func(t *testing.T, db *gorm.DB) Customer {
			return update(t, db, func(c *Customer) *gorm.DB {
				return db.Session(&gorm.Session{SkipHooks: true}).Model(c).Updates(map[string]any{"Email": "sk@example.com"})
			}, func(c *Customer) { c.Email = "sk@example.com" })
		}},
		{"Update", func(t *testing.T, db *gorm.DB) Customer {
			return update(t, db, func(c *Customer) *gorm.DB {
				return db.Model(c).Update("email", "u1@example.com")
			}, func(c *Customer) { c.Email = "u1@example.com" })
		}},
		{"UpdateColumn", func(t *testing.T, db *gorm.DB) Customer {
			return update(t, db, func(c *Customer) *gorm.DB {
				return db.Model(c).UpdateColumn("phone", "+47")
			}, func(c *Customer) { c.Phone = strp("+47") })
		}},
		{"UpdateColumnsStruct", func(t *testing.T, db *gorm.DB) Customer {
			return update(t, db, func(c *Customer) *gorm.DB {
				return db.Model(c).UpdateColumns(Customer{Email: "ucs@example.com", Code: sql.Null[string]{V: "c9", Valid: true}})
			}, func(c *Customer) { c.Email, c.Code = "ucs@example.com", sql.Null[string]{V: "c9", Valid: true} })
		}},
		{"UpdateColumnsMap", func(t *testing.T, db *gorm.DB) Customer {
			return update(t, db, func(c *Customer) *gorm.DB {
				return db.Model(c).UpdateColumns(map[string]any{"email": "ucm@example.com", "labels": map[string]string{"a": "b"}})
			}, func(c *Customer) { c.Email, c.Labels = "ucm@example.com", map[string]string{"a": "b"} })
		}},
		{"FirstOrCreateCreates", func(t *testing.T, db *gorm.DB) Customer {
			c := sample("foc")
			if err := db.Where(Equal("Email", c.Email)).Attrs(c).FirstOrCreate(&c).Error; err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"FirstOrCreateFinds", func(t *testing.T, db *gorm.DB) Customer {
			c := sample("foc2")
			if err := db.Create(&c).Error; err != nil {
				t.Fatal(err)
			}
			var got Customer
			if err := db.Where(Equal("Email", c.Email)).Attrs(sample("other")).FirstOrCreate(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got.ID != c.ID {
				t.Fatalf("FirstOrCreate created a new row %d, want %d", got.ID, c.ID)
			}
			return got
		}},
	}
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db, Config{})
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				want := c.write(t, db)
				assertStoredEncrypted(t, db, want)
				readBack(t, db, want)
			})
		}
	})
}

func TestReadPaths(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db, Config{})
		a, b := sample("ra"), sample("rb")
		b.Phone, b.Note, b.Secret, b.Labels = nil, sql.NullString{}, nil, nil
		if err := db.Create(&[]*Customer{&a, &b}).Error; err != nil {
			t.Fatal(err)
		}
		want := map[uint]Customer{a.ID: a, b.ID: b}
		check := func(t *testing.T, got []Customer) {
			t.Helper()
			if len(got) != 2 {
				t.Fatalf("got %d rows", len(got))
			}
			for _, g := range got {
				assertPlain(t, g, want[g.ID])
			}
		}
		t.Run("Find", func(t *testing.T) {
			var got []Customer
			if err := db.Order("id").Find(&got).Error; err != nil {
				t.Fatal(err)
			}
			check(t, got)
		})
		t.Run("Scan", func(t *testing.T) {
			var got []Customer
			if err := db.Model(&Customer{}).Order("id").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			check(t, got)
		})
		t.Run("RawScan", func(t *testing.T) {
			var got []Customer
			if err := db.Raw("SELECT * FROM customers ORDER BY id").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			check(t, got)
		})
		t.Run("Rows", func(t *testing.T) {
			rows, err := db.Model(&Customer{}).Order("id").Rows()
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []Customer
			for rows.Next() {
				var c Customer
				if err := db.ScanRows(rows, &c); err != nil {
					t.Fatal(err)
				}
				got = append(got, c)
			}
			check(t, got)
		})
		t.Run("DTOOfTable", func(t *testing.T) {
			type emailOnly struct {
				ID    uint
				Email string `gorm:"serializer:kms" kms:"table=customers"`
			}
			var got []emailOnly
			if err := db.Model(&Customer{}).Select("id", "email").Order("id").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].Email != a.Email || got[1].Email != b.Email {
				t.Fatalf("got %+v", got)
			}
		})
		t.Run("MapSlice", func(t *testing.T) {
			var got []map[string]any
			if err := db.Model(&Customer{}).Order("id").Find(&got).Error; err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("got %d maps", len(got))
			}
			m := got[0]
			if m["email"] != a.Email || *(m["phone"].(*string)) != *a.Phone ||
				!bytes.Equal(m["secret"].([]byte), a.Secret) || m["profile"] != a.Profile {
				t.Fatalf("map read: %+v", m)
			}
			if got[1]["phone"] != nil || got[1]["note"] != nil || got[1]["secret"] != nil {
				t.Fatalf("NULL not nil in map read: %+v", got[1])
			}
		})
		t.Run("MapTake", func(t *testing.T) {
			got := map[string]any{}
			if err := db.Model(&Customer{}).Where("id = ?", a.ID).Take(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got["email"] != a.Email || got["code"] != a.Code {
				t.Fatalf("map read: %+v", got)
			}
		})
		t.Run("NullStaysNull", func(t *testing.T) {
			raw := rawRow(t, db, "customers", b.ID)
			for _, c := range []string{"phone", "note", "secret", "labels"} {
				if raw[c].Valid {
					t.Errorf("%s: NULL stored as %q", c, raw[c].String)
				}
			}
		})
	})
}

func TestStructConditionOnEncryptedFieldFails(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		setup(t, db, Config{})
		c := sample("cond")
		if err := db.Create(&c).Error; err != nil {
			t.Fatal(err)
		}
		var got []Customer
		err := db.Where(&Customer{Email: c.Email}).Find(&got).Error
		if !errors.Is(err, ErrEncryptedCondition) {
			t.Fatalf("struct condition on encrypted field: err = %v, want ErrNoPlugin", err)
		}
	})
}
