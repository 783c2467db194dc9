package ormplugin

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"gorm.io/gorm"
)

var accountSpec = TableSpec{Table: "accounts", Columns: []ColumnSpec{
	{Name: "email", Index: "email_bidx"},
	{Name: "profile", Type: TypeJSON},
	{Name: "note", Type: TypeString},
}}

// plaintextLeft counts plaintext values with TableStatus (what
// `kmsctl orm status --table` prints).
func plaintextLeft(t *testing.T, db *gorm.DB) int64 {
	t.Helper()
	st, err := TableStatus(context.Background(), db, accountSpec)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range st {
		n += c.Plaintext
	}
	return n
}

// appWriter is an application process with the plugin that updates only
// the email of rows, as a running application does during migration.
func appWriter(t *testing.T, db *gorm.DB, kms KMS) *gorm.DB {
	t.Helper()
	app, err := gorm.Open(db.Dialector, &gorm.Config{Logger: db.Logger, ConnPool: db.ConnPool})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Use(New(kms, Config{KeyID: testKeyID, AllowPlaintextReads: true})); err != nil {
		t.Fatal(err)
	}
	return app
}

// TestMigrateRetriesRowsChangedByWriter: a writer goroutine updates the
// email of the rows of each batch between the migration's read and its
// update. Before the fix such rows were skipped, leaving profile and note
// plaintext (and the run reporting success).
func TestMigrateRetriesRowsChangedByWriter(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, kms, _ := setup(t, db, Config{})
		const n = 40
		fillLegacy(t, db, n)
		if got := plaintextLeft(t, db); got != n+n+(n+2)/3 {
			t.Fatalf("status before migration: %d plaintext values", got)
		}
		app := appWriter(t, db, kms)

		requests := make(chan []any)
		done := make(chan error)
		go func() { // the concurrent writer
			for pks := range requests {
				var err error
				for _, pk := range pks[:min(3, len(pks))] {
					id := uint(pk.(int64))
					if err = app.Model(&Account{ID: id}).Update("email", fmt.Sprintf("new%d@example.com", id)).Error; err != nil {
						break
					}
				}
				done <- err
			}
		}()
		writes := 0
		p.beforeRewrite = func(pks []any) {
			if writes >= 6 { // the first batches; then let the retries through
				return
			}
			writes++
			requests <- pks
			if err := <-done; err != nil {
				t.Errorf("writer: %v", err)
			}
		}
		defer func() { p.beforeRewrite = nil; close(requests) }()
		prog, err := p.MigratePlaintext(context.Background(), db, &Account{}, RewriteOptions{BatchSize: 7})
		if err != nil {
			t.Fatalf("migration: %v (%+v)", err, prog)
		}
		if prog.Retried == 0 || prog.Remaining != 0 {
			t.Fatalf("progress %+v: want retries and nothing remaining", prog)
		}
		if got := plaintextLeft(t, db); got != 0 {
			t.Fatalf("%d plaintext values left after a successful migration", got)
		}
		res, err := p.VerifyTable(context.Background(), db, accountSpec, VerifyOptions{})
		if err != nil || res.Bad() != 0 {
			t.Fatalf("verify: %+v %v", res, err)
		}
		var all []Account
		if err := db.Order("id").Find(&all).Error; err != nil || len(all) != n {
			t.Fatalf("read: %v (%d)", err, len(all))
		}
		for i, a := range all {
			if a.Profile.City != fmt.Sprintf("town-%d", i) {
				t.Fatalf("row %d: %+v", i, a)
			}
			var found []Account
			if err := db.Where(Equal("Email", a.Email)).Find(&found).Error; err != nil || len(found) != 1 {
				t.Fatalf("blind index of row %d (%s): %v %d", a.ID, a.Email, err, len(found))
			}
		}
	})
}

// TestMigrateFailsWhilePlaintextRemains: a writer without the plugin keeps
// writing plaintext into a row; the run must not report success.
func TestMigrateFailsWhilePlaintextRemains(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, _, _ := setup(t, db, Config{})
		fillLegacy(t, db, 10)
		var victim int64
		i := 0
		p.beforeRewrite = func(pks []any) {
			if victim == 0 {
				victim = pks[0].(int64)
			}
			i++
			if err := db.Exec("UPDATE accounts SET note = ? WHERE id = ?", fmt.Sprintf("plain %d", i), victim).Error; err != nil {
				t.Error(err)
			}
		}
		defer func() { p.beforeRewrite = nil }()
		prog, err := p.MigratePlaintext(context.Background(), db, &Account{}, RewriteOptions{BatchSize: 4})
		if !errors.Is(err, ErrPlaintextRemains) || prog.Remaining == 0 {
			t.Fatalf("err = %v, progress %+v: want ErrPlaintextRemains with a count", err, prog)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(prog.Remaining)) {
			t.Fatalf("error does not give the count: %v", err)
		}
		if got := plaintextLeft(t, db); got == 0 {
			t.Fatal("status shows no plaintext while the migration reported some")
		}
	})
}

// TestMigrateUnderFreeRunningWriters runs the migration while writer
// goroutines update random rows as fast as they can, without any
// synchronisation with the migration.
func TestMigrateUnderFreeRunningWriters(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		p, kms, _ := setup(t, db, Config{})
		const n = 300
		fillLegacy(t, db, n)
		app := appWriter(t, db, kms)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var writes atomic.Int64
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 1))
				for {
					select {
					case <-stop:
						return
					default:
					}
					id := uint(1 + r.IntN(n))
					col, val := "email", any(fmt.Sprintf("w%d-%d@example.com", w, r.IntN(1000)))
					if r.IntN(2) == 0 {
						col, val = "note", fmt.Sprintf("w%d note", w)
					}
					if err := app.Model(&Account{ID: id}).Update(col, val).Error; err != nil {
						if !isLockConflict(err) {
							t.Errorf("writer: %v", err)
							return
						}
					}
					writes.Add(1)
				}
			}(w)
		}
		time.Sleep(20 * time.Millisecond)
		var prog Progress
		var err error
		for run := 0; run < 3; run++ { // a lock conflict aborts a run; the documented remedy is to run it again
			prog, err = p.MigratePlaintext(context.Background(), db, &Account{}, RewriteOptions{BatchSize: 25})
			if err == nil || !isLockConflict(err) {
				break
			}
		}
		close(stop)
		wg.Wait()
		if err != nil && !errors.Is(err, ErrPlaintextRemains) {
			t.Fatalf("migration: %v", err)
		}
		left := plaintextLeft(t, db)
		if err == nil && left != 0 {
			t.Fatalf("migration reported success with %d plaintext values left (%+v, %d writes)", left, prog, writes.Load())
		}
		if err != nil && left == 0 {
			t.Fatalf("migration reported %d remaining but status shows none", prog.Remaining)
		}
		t.Logf("%d concurrent writes, %+v", writes.Load(), prog)
	})
}

// isLockConflict reports a database lock conflict (deadlock, busy), which a
// caller retries.
func isLockConflict(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "deadlock") || strings.Contains(m, "lock") || strings.Contains(m, "busy") || strings.Contains(m, "serializ")
}
