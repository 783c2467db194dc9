package starter

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// BenchmarkPool compares a query through the rotating pool with the same
// query on the *sql.DB directly (the baseline): the switch costs two atomic
// adds and a load per call.
func BenchmarkPool(b *testing.B) {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(b.TempDir(), "b.db")+"?_journal_mode=WAL")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	run := func(b *testing.B, q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var v int
			for pb.Next() {
				if err := q.QueryRowContext(ctx, "SELECT 1").Scan(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("direct", func(b *testing.B) { run(b, db) })
	b.Run("swap", func(b *testing.B) { run(b, newSwapPool(db)) })
}
