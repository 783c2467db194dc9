package audit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Config configures a Logger.
type Config struct {
	// ReplicaID names this replica's chain. Stable across restarts, unique
	// among running kmsd processes sharing the database, at most 64 bytes.
	ReplicaID string
	// ChainKey is the secret HMAC key of the chain (at least 32 bytes). The
	// same key verifies every replica's chain. The Logger keeps only a
	// derived subkey; the caller may wipe ChainKey after NewLogger returns.
	ChainKey []byte
	// MaxBatch is the most records committed in one transaction (default 256).
	MaxBatch int
	// WriteTimeout bounds one batch's transaction (default 10s).
	WriteTimeout time.Duration

	// Anchors, when set, receives a signed anchor of this replica's chain
	// head every AnchorInterval while the chain grows, and once more at
	// Close; each anchor is also logged to AnchorLog. NewLogger refuses to
	// resume a chain that ends below (or differs from) this replica's last
	// anchor with ErrBelowAnchor, unless AllowBelowAnchor is set. Records
	// written after the last anchor are the only ones that can be removed
	// from the database without Verify noticing (given the anchors): at
	// most AnchorInterval's worth, and none after a clean Close.
	Anchors *AnchorFile
	// AnchorInterval is how often a grown head is anchored (default 10s).
	AnchorInterval time.Duration
	// AnchorLog receives one Info line per anchor (default: none).
	AnchorLog *slog.Logger
	// AllowBelowAnchor lets NewLogger resume a chain below its last anchor
	// (after restoring a database backup on purpose); it is logged.
	AllowBelowAnchor bool

	// SpoolDir, when set, puts a local spool in front of the database: a
	// group commit is one append of the batch to a file in SpoolDir (0600),
	// after which Append returns (the records survive the process being
	// killed), and a background writer moves spooled records into the
	// database in large transactions. NewLogger first moves whatever an
	// earlier process left in the spool into the database. The records of
	// state changes (ResultIntent, and outcomes naming an intent in
	// Details[DetailIntent]) are still committed to the database before
	// Append returns, together with everything spooled before them. While the
	// database refuses records (seen by the writer or by Probe), Append
	// fails with ErrUnavailable. Readers (List, Verify, Export) first wait
	// for the spool to drain (Flush). Use it where the database is itself
	// a local file (SQLite): the spool then adds no failure domain.
	SpoolDir string
	// SpoolSync fsyncs every spool append before Append returns, so records
	// also survive an OS crash or power loss.
	SpoolSync bool
}

// Head identifies the newest record of one replica's chain. Stored outside
// the database, it anchors the chain against tail truncation (see Verify).
type Head struct {
	ReplicaID string `json:"replica"`
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
}

// Stats counts a Logger's work since it started.
type Stats struct {
	Records  int64 `json:"records"`   // records made durable
	Batches  int64 `json:"batches"`   // transactions committed
	Failed   int64 `json:"failed"`    // records whose batch failed
	MaxBatch int   `json:"max_batch"` // largest batch committed
	// DBBatches counts the transactions that moved spooled records into
	// the database (Config.SpoolDir).
	DBBatches int64 `json:"db_batches"`
}

// Logger appends records to one replica's chain with group commit. It is
// safe for concurrent use.
type Logger struct {
	db  *gorm.DB
	cfg Config
	h   hasher
	mac *recordMAC // the leader's reusable h

	mu     sync.RWMutex // guards closed; held for reading while queueing
	closed bool

	// Group commit without a writer goroutine: the caller that queues a
	// record while no batch is being committed leads: it commits what is
	// queued (its own record first) and then hands the lead to the oldest
	// waiting caller, or gives it up when nothing is queued. A lone caller
	// thus commits its own record without a goroutine switch.
	qmu     sync.Mutex
	queue   []*pending // queued, not yet in a batch (non-empty => leading)
	leading bool
	idle    sync.Cond // on qmu; signalled when leading becomes false
	stopped sync.Once

	// leader state (owned by the caller that leads)
	batch     []*pending
	head      Head
	headValid bool
	buf       []byte
	args      []any      // column values of the batch being written
	sqlDB     *sql.DB    // nil until first needed
	stmts     insertSQLs // INSERT statements by row count
	one       *sql.Stmt  // prepared single-row INSERT (SQLite)

	statMu sync.Mutex
	stats  Stats

	anchorKey  []byte        // derived anchor-signing subkey (nil without Anchors)
	sealKey    []byte        // derived export-seal subkey
	anchored   int64         // highest seq anchored so far (anchor goroutine)
	anchorStop chan struct{} // closed by Close to stop the anchor goroutine
	anchorDone chan struct{}
	stopOnce   sync.Once

	// Spool mode (Config.SpoolDir); sp and broken are leader state.
	sp      *spool
	broken  error       // a spool write that could not be cut back
	dbMu    sync.Mutex  // serializes database inserts (writer, intent batches) and guards wargs and insert's statements
	recheck atomic.Bool // a database insert failed: its outcome may be unknown
	wargs   []any
	blMu    sync.Mutex
	backlog []Record   // spooled, not yet in the database, oldest first
	segs    []spoolSeg // closed spool segments not yet removed
	dbErr   error      // the database's last failure; nil when it takes records
	// progress is closed and replaced whenever backlog shrinks or dbErr
	// changes (Flush waits on it).
	progress   chan struct{}
	wake       chan struct{} // capacity 1: the backlog grew
	urgent     chan struct{} // capacity 1: Flush waits, do not linger
	writerStop chan struct{}
	writerDone chan struct{}
	writerOnce sync.Once
}

type pending struct {
	rec   Record
	done  chan error   // the answer; or errLead first when promoted
	state atomic.Int32 // pendingWaiting, pendingAbandoned or pendingPromoted
}

// States of a queued pending.
const (
	pendingWaiting   = iota // its caller waits for the answer
	pendingAbandoned        // its caller's ctx ended; it is still written
	pendingPromoted         // its caller leads next
)

// errLead, sent on a pending's done, makes its caller lead (never returned).
var errLead = errors.New("audit: lead")

// NewLogger checks cfg, reads this replica's chain head from db (which must
// carry the Migrations schema) and prepares the chain. It returns ErrBadHead
// if the stored head does not verify under cfg.ChainKey.
func NewLogger(db *gorm.DB, cfg Config) (*Logger, error) {
	if cfg.ReplicaID == "" || len(cfg.ReplicaID) > maxReplicaID {
		return nil, fmt.Errorf("%w: replica id must be 1..%d bytes", ErrInvalidConfig, maxReplicaID)
	}
	if err := checkText("replica id", cfg.ReplicaID, maxReplicaID); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if len(cfg.ChainKey) < minChainKey {
		return nil, fmt.Errorf("%w: chain key must be at least %d bytes", ErrInvalidConfig, minChainKey)
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.AnchorInterval <= 0 {
		cfg.AnchorInterval = DefaultAnchorInterval
	}
	l := &Logger{
		db: db,
		h:  newHasher(cfg.ChainKey),
	}
	l.idle.L = &l.qmu
	l.mac = newRecordMAC(l.h.key)
	var last Anchor
	var haveLast bool
	l.sealKey = subkey(cfg.ChainKey, labelSeal)
	if cfg.Anchors != nil {
		l.anchorKey = subkey(cfg.ChainKey, labelAnchor)
		var err error
		if last, haveLast, err = cfg.Anchors.Last(cfg.ChainKey, cfg.ReplicaID); err != nil {
			l.wipe()
			return nil, err
		}
	}
	cfg.ChainKey = nil // keep only the derived subkeys
	l.cfg = cfg
	ctx, cancel := context.WithTimeout(context.Background(), cfg.WriteTimeout)
	defer cancel()
	if err := l.loadHead(ctx); err != nil {
		l.wipe()
		return nil, err
	}
	if cfg.SpoolDir != "" {
		if err := l.startSpool(ctx); err != nil {
			l.wipe()
			return nil, err
		}
	}
	if haveLast {
		if err := l.checkAnchor(ctx, last); err != nil {
			if !cfg.AllowBelowAnchor {
				l.wipe()
				return nil, err
			}
			l.anchorLog().Warn("audit chain resumes below its last anchor (allowed by configuration)", "err", err)
		} else {
			l.anchored = last.Seq
		}
	}
	if cfg.Anchors != nil {
		l.anchorStop, l.anchorDone = make(chan struct{}), make(chan struct{})
		go l.anchorLoop()
	}
	return l, nil
}

// DefaultAnchorInterval is the default Config.AnchorInterval.
const DefaultAnchorInterval = 10 * time.Second

func (l *Logger) wipe() {
	l.h.wipe()
	l.mac.wipe()
	clear(l.anchorKey)
	clear(l.sealKey)
}

// exportCovers reports whether a sealed export of replica ends at seq.
func (l *Logger) exportCovers(ctx context.Context, replica string, seq int64) bool {
	var rows []exportRow
	if err := l.db.WithContext(ctx).Where("replica_id = ? AND last_seq = ?", replica, seq).Limit(1).Find(&rows).Error; err != nil || len(rows) == 0 {
		return false
	}
	return checkSealSub(l.sealKey, rows[0].seal())
}

func (l *Logger) anchorLog() *slog.Logger {
	if l.cfg.AnchorLog != nil {
		return l.cfg.AnchorLog
	}
	return slog.New(slog.DiscardHandler)
}

// checkAnchor verifies that the stored chain still reaches a, with the
// anchored record unchanged.
func (l *Logger) checkAnchor(ctx context.Context, a Anchor) error {
	head := l.Head()
	if head.Seq < a.Seq {
		return fmt.Errorf("%w: replica %s ends at seq %d, last anchor is seq %d (%s)", ErrBelowAnchor, a.ReplicaID, head.Seq, a.Seq, a.Time.Format(time.RFC3339))
	}
	var rows []row
	if err := l.db.WithContext(ctx).Where("replica_id = ? AND seq = ?", a.ReplicaID, a.Seq).Limit(1).Find(&rows).Error; err != nil {
		return fmt.Errorf("%w: read anchored record: %v", ErrUnavailable, err)
	}
	if len(rows) == 0 {
		// Deleted by retention after a sealed export? Then the export
		// vouches for it.
		var minSeq *int64
		if err := l.db.WithContext(ctx).Model(&row{}).Where("replica_id = ?", a.ReplicaID).Select("MIN(seq)").Scan(&minSeq).Error; err != nil {
			return fmt.Errorf("%w: read chain start: %v", ErrUnavailable, err)
		}
		if minSeq != nil && a.Seq < *minSeq && l.exportCovers(ctx, a.ReplicaID, *minSeq-1) {
			return nil
		}
	}
	if len(rows) == 0 || !hmacEqualString(rows[0].Hash, a.Hash) {
		return fmt.Errorf("%w: replica %s: the anchored record seq %d is gone or changed", ErrBelowAnchor, a.ReplicaID, a.Seq)
	}
	return nil
}

// anchorLoop anchors the head every AnchorInterval while it grows, and a
// last time when Close stops it.
func (l *Logger) anchorLoop() {
	defer close(l.anchorDone)
	t := time.NewTicker(l.cfg.AnchorInterval)
	defer t.Stop()
	for {
		select {
		case <-l.anchorStop:
			l.anchorNow()
			return
		case <-t.C:
			l.anchorNow()
		}
	}
}

// anchorNow writes an anchor of the current head if it grew since the
// last one.
func (l *Logger) anchorNow() {
	h := l.Head()
	if h.Seq <= l.anchored {
		return
	}
	a := Anchor{ReplicaID: h.ReplicaID, Seq: h.Seq, Hash: h.Hash, Time: time.Now().UTC().Truncate(time.Microsecond)}
	a.Sig = hex.EncodeToString(anchorMACSub(l.anchorKey, &a))
	log := l.anchorLog()
	if err := l.cfg.Anchors.Append(a); err != nil {
		log.Error("audit anchor not written", "path", l.cfg.Anchors.Path(), "err", err)
		return
	}
	l.anchored = h.Seq
	log.Info("audit anchor", "replica", a.ReplicaID, "seq", a.Seq, "hash", a.Hash, "time", a.Time, "sig", a.Sig)
}

// Append stamps r (ReplicaID, Seq, PrevHash, Hash; Time if zero) and blocks
// until the batch holding it is committed. A nil error means the record is
// durable. Any error means the caller must fail its request: ErrInvalidRecord
// for a bad record, ErrClosed after Close, ctx's error if ctx ended first
// (the record may still be written), or an error wrapping ErrUnavailable.
func (l *Logger) Append(ctx context.Context, r Record) error {
	_, err := l.AppendHead(ctx, r)
	return err
}

// AppendHead is Append that also returns where r was stored (its replica,
// seq and hash), for an outcome record that must name its intent.
func (l *Logger) AppendHead(ctx context.Context, r Record) (Head, error) {
	if err := validate(&r); err != nil {
		return Head{}, err
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC().Truncate(time.Microsecond)
	r.Details = maps.Clone(r.Details) // the leader must not share the caller's map
	if err := ctx.Err(); err != nil {
		return Head{}, err
	}
	p := pendings.Get().(*pending)
	p.rec = r
	p.state.Store(pendingWaiting)
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return Head{}, ErrClosed
	}
	l.qmu.Lock()
	l.queue = append(l.queue, p)
	lead := !l.leading
	l.leading = true
	l.qmu.Unlock()
	l.mu.RUnlock()
	if lead {
		l.lead()
	}
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-p.done:
			if err == errLead {
				l.lead()
				continue
			}
			// The leader that answered is done with p: it sends last, and
			// it stamped p.rec before answering.
			var h Head
			if err == nil {
				h = Head{ReplicaID: p.rec.ReplicaID, Seq: p.rec.Seq, Hash: p.rec.Hash}
			}
			p.rec = Record{}
			pendings.Put(p)
			return h, err
		case <-ctxDone:
			if p.state.CompareAndSwap(pendingWaiting, pendingAbandoned) {
				return Head{}, ctx.Err() // p stays queued and is still written
			}
			ctxDone = nil // promoted: lead, then wait for the answer
		}
	}
}

// pendings recycles pending records with their answer channel; a pending
// goes back only after its answer was received.
var pendings = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// Close stops accepting records and waits until the queued ones are
// committed. It is safe to call more than once.
func (l *Logger) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	// Nothing is queued any more; wait for the batches already queued.
	l.qmu.Lock()
	for l.leading {
		l.idle.Wait()
	}
	l.qmu.Unlock()
	if l.sp != nil {
		l.stopSpool()
	}
	l.stopped.Do(func() {
		if l.one != nil {
			_ = l.one.Close()
		}
		l.h.wipe()
		l.mac.wipe()
	})
	if l.anchorStop != nil {
		l.stopOnce.Do(func() { close(l.anchorStop) })
		<-l.anchorDone
		clear(l.anchorKey)
		clear(l.sealKey)
	}
	return nil
}

// Head returns the newest durable record of this replica's chain (Seq 0
// when the chain is empty).
func (l *Logger) Head() Head {
	l.statMu.Lock()
	defer l.statMu.Unlock()
	return l.head
}

// Stats returns counters since NewLogger.
func (l *Logger) Stats() Stats {
	l.statMu.Lock()
	defer l.statMu.Unlock()
	return l.stats
}

// lead commits queued records, oldest first, in batches of at most
// MaxBatch, until it can hand the lead to a waiting caller or nothing is
// queued. The caller must have been made leader (leading set by it under
// qmu, or errLead received).
func (l *Logger) lead() {
	// One scheduler yield first, so that other runnable request goroutines
	// (callers just answered, above all) queue their records into this
	// batch (measured: ~7 -> ~40 records per batch with 64 callers on
	// SQLite; a lone record is not delayed).
	runtime.Gosched()
	for {
		l.qmu.Lock()
		n := min(len(l.queue), l.cfg.MaxBatch)
		l.batch = append(l.batch[:0], l.queue[:n]...)
		rest := copy(l.queue, l.queue[n:])
		clear(l.queue[rest:])
		l.queue = l.queue[:rest]
		l.qmu.Unlock()

		if len(l.batch) > 0 {
			l.commit(l.batch)
			clear(l.batch)
		}

		l.qmu.Lock()
		if len(l.queue) == 0 {
			l.leading = false
			l.idle.Broadcast()
			l.qmu.Unlock()
			return
		}
		var next *pending
		for _, p := range l.queue {
			if p.state.CompareAndSwap(pendingWaiting, pendingPromoted) {
				next = p
				break
			}
		}
		l.qmu.Unlock()
		if next != nil {
			next.done <- errLead // leading stays set: next leads now
			return
		}
		// Every queued caller gave up waiting: commit their records here.
	}
}

// commit writes batch in one transaction and answers every record in it.
func (l *Logger) commit(batch []*pending) {
	ctx, cancel := l.writeContext()
	defer cancel()
	var err error
	if l.sp != nil {
		err = l.spoolCommit(ctx, batch)
	} else {
		err = l.write(ctx, batch)
	}
	l.statMu.Lock()
	if err != nil {
		l.stats.Failed += int64(len(batch))
	} else {
		l.stats.Records += int64(len(batch))
		l.stats.Batches++
		l.stats.MaxBatch = max(l.stats.MaxBatch, len(batch))
	}
	l.statMu.Unlock()
	for _, p := range batch {
		p.done <- err
	}
}

// writeContext is the context of one database transaction. On SQLite it
// has no deadline: a context that can end makes go-sqlite3 run every
// statement on a goroutine of its own (a goroutine start and two switches
// per statement, on the hot path of every request), and its interrupt
// could not stop a blocked write anyway; waits for SQLite's lock are
// bounded by the DSN's busy timeout.
func (l *Logger) writeContext() (context.Context, context.CancelFunc) {
	if l.db.Dialector.Name() == "sqlite" {
		return context.Background(), func() {}
	}
	return context.WithTimeout(context.Background(), l.cfg.WriteTimeout)
}

func (l *Logger) write(ctx context.Context, batch []*pending) error {
	if !l.headValid {
		if err := l.loadHead(ctx); err != nil {
			if errors.Is(err, ErrUnavailable) {
				return err
			}
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	l.args = l.args[:0]
	head, err := l.stamp(batch, func(r *Record, _ []byte) (err error) {
		l.args, err = appendRowArgs(l.args, r)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	err = l.insert(ctx, l.args)
	clear(l.args) // drop references to the batch's strings
	if err != nil {
		// The outcome may be unknown (a lost COMMIT reply): re-read the
		// head from the database before the next batch.
		l.headValid = false
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.setHead(head)
	return nil
}

// stamp chains batch onto the head (the leader's): it sets each record's
// ReplicaID, Seq, PrevHash and Hash, and calls each with the record and its
// canonical encoding (valid until the next call). It returns the head the
// batch would make; the caller sets it once the batch is durable.
func (l *Logger) stamp(batch []*pending, each func(r *Record, canon []byte) error) (Head, error) {
	seq, prev := l.head.Seq, l.head.Hash
	for _, p := range batch {
		seq++
		r := &p.rec
		r.ReplicaID, r.Seq, r.PrevHash = l.cfg.ReplicaID, seq, prev
		r.Hash, l.buf = l.mac.hash(r, l.buf)
		prev = r.Hash
		if err := each(r, l.buf); err != nil {
			return Head{}, err
		}
	}
	return Head{ReplicaID: l.cfg.ReplicaID, Seq: seq, Hash: prev}, nil
}

func (l *Logger) setHead(h Head) {
	l.statMu.Lock()
	l.head = h
	l.statMu.Unlock()
	l.headValid = true
}

// loadHead reads and checks the newest stored record of this replica.
func (l *Logger) loadHead(ctx context.Context) error {
	var rows []row
	err := l.db.WithContext(ctx).Where("replica_id = ?", l.cfg.ReplicaID).
		Order("seq DESC").Limit(1).Find(&rows).Error
	if err != nil {
		return fmt.Errorf("%w: read chain head: %v", ErrUnavailable, err)
	}
	if len(rows) == 0 {
		l.setHead(Head{ReplicaID: l.cfg.ReplicaID})
		return nil
	}
	rec, err := rows[0].record()
	if err != nil {
		return fmt.Errorf("%w: replica %s seq %d: %v", ErrBadHead, l.cfg.ReplicaID, rows[0].Seq, err)
	}
	ok, buf := l.h.check(&rec, l.buf)
	l.buf = buf
	if !ok {
		return fmt.Errorf("%w: replica %s seq %d", ErrBadHead, l.cfg.ReplicaID, rec.Seq)
	}
	l.setHead(Head{ReplicaID: l.cfg.ReplicaID, Seq: rec.Seq, Hash: rec.Hash})
	return nil
}
