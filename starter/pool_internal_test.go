package starter

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// walSet holds the database files openSQLite has switched to WAL.
var walSet sync.Map

func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	// WAL is set once on the file (it persists), not by every new
	// connection: "PRAGMA journal_mode=WAL" on a connection opened while
	// another pool closes its last connection can fail with "database is
	// locked" without waiting for the busy timeout, which is SQLite's
	// behaviour, not the swap's.
	if _, done := walSet.LoadOrStore(path, true); !done {
		setup, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := setup.Exec("PRAGMA journal_mode=WAL"); err != nil {
			t.Fatal(err)
		}
		_ = setup.Close()
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// A call being set up on the old pool holds back its close; the drain
// closes it as soon as the call is done.
func TestSwapPoolDrainWaitsForCalls(t *testing.T) {
	dir := t.TempDir()
	db1, db2 := openSQLite(t, filepath.Join(dir, "a.db")), openSQLite(t, filepath.Join(dir, "a.db"))
	p := newSwapPool(db1)
	g := p.acquire() // a call in progress
	old := p.swap(db2)
	if old != g || p.current() != db2 || p.generation() != 2 {
		t.Fatal("swap did not install the new pool")
	}
	var drained atomic.Bool
	done := make(chan error, 1)
	go func() { err := old.drain(context.Background()); drained.Store(true); done <- err }()
	time.Sleep(100 * time.Millisecond)
	if drained.Load() {
		t.Fatal("old pool closed while a call was using it")
	}
	// The call goes on on its own pool, which still works.
	if err := g.db.PingContext(context.Background()); err != nil {
		t.Fatalf("in-flight call failed: %v", err)
	}
	g.release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("drain did not finish")
	}
	if err := db1.Ping(); err == nil {
		t.Fatal("old pool not closed")
	}
}

// A transaction begun before a swap commits on its pool after it; the old
// pool closes after the commit.
func TestSwapPoolTransactionSpansSwap(t *testing.T) {
	dir := t.TempDir()
	db1, db2 := openSQLite(t, filepath.Join(dir, "a.db")), openSQLite(t, filepath.Join(dir, "a.db"))
	if _, err := db1.Exec("CREATE TABLE t (v INTEGER)"); err != nil {
		t.Fatal(err)
	}
	p := newSwapPool(db1)
	tx, err := p.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	old := p.swap(db2)
	done := make(chan error, 1)
	go func() { done <- old.drain(context.Background()) }()
	if _, err := tx.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatalf("transaction after swap: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit after swap: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var n int
	if err := p.QueryRowContext(context.Background(), "SELECT count(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("new pool sees %d rows (%v)", n, err)
	}
}

// Many calls during many swaps: none fails, every old pool ends closed.
func TestSwapPoolStress(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.db")
	p := newSwapPool(openSQLite(t, path))
	var fails, calls atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		fails.Add(1)
		if err != nil {
			firstErr.CompareAndSwap(nil, err.Error())
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var v int
				if err := p.QueryRowContext(context.Background(), "SELECT 1").Scan(&v); err != nil || v != 1 {
					fail(err)
				}
				rows, err := p.QueryContext(context.Background(), "SELECT 1")
				if err != nil {
					fail(err)
				} else {
					for rows.Next() {
					}
					if err := rows.Close(); err != nil {
						fail(err)
					} else if err := rows.Err(); err != nil {
						fail(err)
					}
				}
				calls.Add(1)
			}
		}()
	}
	var olds []*generation
	var dwg sync.WaitGroup
	for range 30 {
		time.Sleep(5 * time.Millisecond)
		old := p.swap(openSQLite(t, path))
		olds = append(olds, old)
		dwg.Add(1)
		go func() { defer dwg.Done(); _ = old.drain(context.Background()) }()
	}
	close(stop)
	wg.Wait()
	dwg.Wait()
	if fails.Load() != 0 {
		t.Fatalf("%d of %d calls failed across swaps, first: %v", fails.Load(), calls.Load(), firstErr.Load())
	}
	for i, g := range olds {
		if g.db.Ping() == nil || g.db.Stats().OpenConnections != 0 {
			t.Fatalf("old pool %d not closed", i)
		}
	}
}
