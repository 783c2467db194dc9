package starter

import (
	"context"
	"database/sql"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// generation is one *sql.DB and the calls currently using it.
type generation struct {
	db      *sql.DB
	n       int64 // generation number, 1 for the first pool
	calls   atomic.Int64
	retired atomic.Bool
}

// swapPool is the gorm.ConnPool under App.DB: it forwards each call to the
// current *sql.DB, so the one *gorm.DB the App hands out stays valid when
// the database DSN rotates. A call holds its generation only while it is
// being set up; what it returns (rows, a row, a transaction) holds a
// connection of that generation, and database/sql closes that connection
// when it is released after the old pool was closed. So work started
// before a rotation finishes on the old pool and work started after it
// runs on the new one.
type swapPool struct {
	cur atomic.Pointer[generation]
}

var (
	_ gorm.ConnPool       = (*swapPool)(nil)
	_ gorm.TxBeginner     = (*swapPool)(nil)
	_ gorm.GetDBConnector = (*swapPool)(nil)
)

func newSwapPool(db *sql.DB) *swapPool {
	p := &swapPool{}
	p.cur.Store(&generation{db: db, n: 1})
	return p
}

// acquire returns the current generation with its call count raised. The
// count is raised before retired is checked and retire sets retired before
// it reads the count, so a call either is counted before the drain looks
// or sees the generation retired and moves to the new one.
func (p *swapPool) acquire() *generation {
	for {
		g := p.cur.Load()
		g.calls.Add(1)
		if !g.retired.Load() {
			return g
		}
		g.calls.Add(-1)
	}
}

func (g *generation) release() { g.calls.Add(-1) }

// swap installs db as the current pool and returns the previous generation,
// already retired: no new call starts on it.
func (p *swapPool) swap(db *sql.DB) *generation {
	old := p.cur.Load()
	p.cur.Store(&generation{db: db, n: old.n + 1})
	old.retired.Store(true)
	return old
}

// drain waits until no call is being set up on g and no connection of g
// is in use (rows being read, transactions), or until ctx is done, then
// closes g's pool. database/sql finishes work that holds a connection even
// after Close, so the timeout only bounds how long a leftover connection
// (an open transaction, unread rows) keeps the old pool's resources.
func (g *generation) drain(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for g.calls.Load() > 0 || g.db.Stats().InUse > 0 {
		select {
		case <-ctx.Done():
			return g.db.Close()
		case <-t.C:
		}
	}
	return g.db.Close()
}

// current returns the current *sql.DB.
func (p *swapPool) current() *sql.DB { return p.cur.Load().db }

// generation returns the number of the current pool (1, then 2 after the
// first rotation, ...).
func (p *swapPool) generation() int64 { return p.cur.Load().n }

func (p *swapPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	g := p.acquire()
	defer g.release()
	return g.db.PrepareContext(ctx, query)
}

func (p *swapPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	g := p.acquire()
	defer g.release()
	return g.db.ExecContext(ctx, query, args...)
}

func (p *swapPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	g := p.acquire()
	defer g.release()
	return g.db.QueryContext(ctx, query, args...)
}

func (p *swapPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	g := p.acquire()
	defer g.release()
	return g.db.QueryRowContext(ctx, query, args...)
}

// BeginTx starts a transaction on the current pool; the transaction keeps
// its connection (and so its pool) until Commit or Rollback.
func (p *swapPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	g := p.acquire()
	defer g.release()
	return g.db.BeginTx(ctx, opts)
}

// PingContext pings the current pool.
func (p *swapPool) PingContext(ctx context.Context) error {
	g := p.acquire()
	defer g.release()
	return g.db.PingContext(ctx)
}

// GetDBConn returns the current *sql.DB (gorm.DB.DB uses it). It is closed
// after the next rotation: do not keep it.
func (p *swapPool) GetDBConn() (*sql.DB, error) { return p.current(), nil }
