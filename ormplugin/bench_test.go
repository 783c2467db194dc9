package ormplugin

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"gorm.io/gorm"
)

// The benchmark models: identical but for the encrypted field.
type benchPlain struct {
	ID    uint
	Name  string
	Email string
}

type benchEnc struct {
	ID    uint
	Name  string
	Email string `gorm:"serializer:kms"`
}

// benchSized is benchPlain with Email values as long as their ciphertext:
// it separates the cost of storing longer values from the plugin's own cost.
type benchSized struct {
	ID    uint
	Name  string
	Email string
}

const benchRows = 10000

func benchDB(b *testing.B) (*gorm.DB, *callCounter) {
	db := dbtest.Open(b, dbtest.SQLite)
	kms, calls := newTestKMS(b)
	if err := db.Use(New(kms, Config{KeyID: testKeyID})); err != nil {
		b.Fatal(err)
	}
	if err := db.AutoMigrate(&benchPlain{}, &benchEnc{}, &benchSized{}); err != nil {
		b.Fatal(err)
	}
	return db, calls
}

func benchRowsOf[T any](mk func(i int) T) []T {
	out := make([]T, benchRows)
	for i := range out {
		out[i] = mk(i)
	}
	return out
}

func plainRow(i int) benchPlain {
	return benchPlain{Name: fmt.Sprintf("name-%d", i), Email: fmt.Sprintf("user%05d@example.com", i)}
}

func encRow(i int) benchEnc {
	return benchEnc{Name: fmt.Sprintf("name-%d", i), Email: fmt.Sprintf("user%05d@example.com", i)}
}

func sizedRow(i int) benchSized {
	e := fmt.Sprintf("user%05d@example.com", i)
	return benchSized{Name: fmt.Sprintf("name-%d", i), Email: e + strings.Repeat("x", CiphertextLen(len(e))-len(e))}
}

// BenchmarkCreateInBatches inserts 10k rows with CreateInBatches(500).
// Target: encrypted <= 1.2x plain. kms-calls is for the whole run.
func BenchmarkCreateInBatches(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchCreate(b, plainRow) })
	b.Run("encrypted", func(b *testing.B) { benchCreate(b, encRow) })
	b.Run("plain-ciphertext-length", func(b *testing.B) { benchCreate(b, sizedRow) })
}

func benchCreate[T any](b *testing.B, mk func(int) T) {
	db, calls := benchDB(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rows := benchRowsOf(mk)
		var zero T
		if err := db.Session(&gorm.Session{AllowGlobalUpdate: true}).Delete(&zero).Error; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := db.CreateInBatches(&rows, 500).Error; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(calls.total()), "kms-calls/run")
}

// BenchmarkSelectAll reads 10k rows. Target: encrypted <= 1.5x plain.
func BenchmarkSelectAll(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchSelect(b, plainRow) })
	b.Run("encrypted", func(b *testing.B) { benchSelect(b, encRow) })
}

func benchSelect[T any](b *testing.B, mk func(int) T) {
	db, calls := benchDB(b)
	rows := benchRowsOf(mk)
	if err := db.CreateInBatches(&rows, 500).Error; err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var got []T
		if err := db.Find(&got).Error; err != nil || len(got) != benchRows {
			b.Fatalf("%v %d", err, len(got))
		}
	}
	b.ReportMetric(float64(calls.total()), "kms-calls/run")
}

// BenchmarkOverhead interleaves plain and encrypted runs in one loop, so
// that load changes on a shared machine hit both alike, and reports
// encrypted time / plain time ("x-plain") and the kmsd calls of the run.
// The order of the runs rotates between iterations.
func BenchmarkOverhead(b *testing.B) {
	b.Run("CreateInBatches500", func(b *testing.B) {
		db, calls := benchDB(b)
		var plainT, encT, sizedT time.Duration
		for i := 0; i < b.N; i++ {
			plain, enc, sized := benchRowsOf(plainRow), benchRowsOf(encRow), benchRowsOf(sizedRow)
			for _, m := range []any{&benchPlain{}, &benchEnc{}, &benchSized{}} {
				if err := db.Session(&gorm.Session{AllowGlobalUpdate: true}).Delete(m).Error; err != nil {
					b.Fatal(err)
				}
			}
			runs := []struct {
				rows any
				t    *time.Duration
			}{{&plain, &plainT}, {&enc, &encT}, {&sized, &sizedT}}
			for j := range runs { // rotate the order so that none always pays the others' GC debt
				r := runs[(i+j)%len(runs)]
				t0 := time.Now()
				if err := db.CreateInBatches(r.rows, 500).Error; err != nil {
					b.Fatal(err)
				}
				*r.t += time.Since(t0)
			}
		}
		b.ReportMetric(float64(encT)/float64(plainT), "x-plain")
		// x-sized: encrypted vs plaintext values of the ciphertext's length,
		// i.e. the plugin's own cost without the cost of longer values.
		b.ReportMetric(float64(encT)/float64(sizedT), "x-sized")
		b.ReportMetric(float64(calls.total()), "kms-calls/run")
	})
	b.Run("SelectAll", func(b *testing.B) {
		db, calls := benchDB(b)
		plain, enc := benchRowsOf(plainRow), benchRowsOf(encRow)
		if err := db.CreateInBatches(&plain, 500).Error; err != nil {
			b.Fatal(err)
		}
		if err := db.CreateInBatches(&enc, 500).Error; err != nil {
			b.Fatal(err)
		}
		var plainT, encT time.Duration
		for i := 0; i < b.N; i++ {
			readPlain := func() {
				var got []benchPlain
				t0 := time.Now()
				if err := db.Find(&got).Error; err != nil || len(got) != benchRows {
					b.Fatal(err)
				}
				plainT += time.Since(t0)
			}
			readEnc := func() {
				var got []benchEnc
				t0 := time.Now()
				if err := db.Find(&got).Error; err != nil || len(got) != benchRows || got[0].Email != enc[0].Email {
					b.Fatal(err)
				}
				encT += time.Since(t0)
			}
			if i%2 == 0 { // alternate the order
				readPlain()
				readEnc()
			} else {
				readEnc()
				readPlain()
			}
		}
		b.ReportMetric(float64(encT)/float64(plainT), "x-plain")
		b.ReportMetric(float64(calls.total()), "kms-calls/run")
	})
	// UpdateNonEncrypted: Update("name") on a model with an encrypted
	// field, through the plugin and through the same pool without it. The
	// plugin must add nothing (no key reservation, no kmsd call).
	// DryRun: the same statements built by GORM and the plugin's callbacks
	// but not executed, i.e. the plugin's CPU cost without the database's.
	b.Run("UpdateNonEncrypted", func(b *testing.B) { benchUpdateName(b, false) })
	b.Run("UpdateNonEncryptedDryRun", func(b *testing.B) { benchUpdateName(b, true) })
}

func benchUpdateName(b *testing.B, dryRun bool) {
	{
		db, calls := benchDB(b)
		bare, err := gorm.Open(db.Dialector, &gorm.Config{Logger: db.Logger, ConnPool: db.ConnPool})
		if err != nil {
			b.Fatal(err)
		}
		rows := benchRowsOf(encRow)[:100]
		if err := db.CreateInBatches(&rows, 100).Error; err != nil {
			b.Fatal(err)
		}
		for _, d := range []*gorm.DB{db, bare} { // warm up: schema parsing and statement caches
			if dryRun {
				d = d.Session(&gorm.Session{DryRun: true})
			}
			for j := 0; j < 50; j++ {
				if err := d.Model(&benchEnc{ID: rows[j].ID}).Update("name", "warm").Error; err != nil {
					b.Fatal(err)
				}
			}
		}
		before := calls.total()
		var plainT, encT time.Duration
		const perIter = 20
		for i := 0; i < b.N; i++ {
			run := func(d *gorm.DB, t *time.Duration) {
				if dryRun {
					d = d.Session(&gorm.Session{DryRun: true})
				}
				t0 := time.Now()
				for j := 0; j < perIter; j++ {
					r := &rows[(i*perIter+j)%len(rows)]
					if err := d.Model(&benchEnc{ID: r.ID}).Update("name", fmt.Sprintf("n%d", i)).Error; err != nil {
						b.Fatal(err)
					}
				}
				*t += time.Since(t0)
			}
			if i%2 == 0 {
				run(bare, &plainT)
				run(db, &encT)
			} else {
				run(db, &encT)
				run(bare, &plainT)
			}
		}
		b.ReportMetric(float64(encT)/float64(plainT), "x-plain")
		b.ReportMetric(float64(calls.total()-before), "kms-calls/run")
		// Allocations per Update: deterministic where times are noisy.
		allocs := func(d *gorm.DB) float64 {
			if dryRun {
				d = d.Session(&gorm.Session{DryRun: true})
			}
			return testing.AllocsPerRun(50, func() {
				if err := d.Model(&benchEnc{ID: rows[0].ID}).Update("name", "a").Error; err != nil {
					b.Fatal(err)
				}
			})
		}
		b.ReportMetric(allocs(db)/allocs(bare), "x-plain-allocs")
	}
}
