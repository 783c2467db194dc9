package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// maxBacklog bounds the spooled records not yet in the database: past it,
// Append fails closed (the database cannot keep up or is gone).
const maxBacklog = 1 << 17

// startSpool moves what an earlier process left in the spool into the
// database, then opens a new segment and starts the database writer.
func (l *Logger) startSpool(ctx context.Context) error {
	sp, err := newSpool(l.cfg.SpoolDir, l.cfg.ReplicaID, l.cfg.SpoolSync)
	if err != nil {
		return err
	}
	l.sp = sp
	if err := l.recoverSpool(ctx); err != nil {
		return err
	}
	if err := sp.open(l.head.Seq + 1); err != nil {
		return fmt.Errorf("%w: spool: %v", ErrUnavailable, err)
	}
	l.progress = make(chan struct{})
	l.wake = make(chan struct{}, 1)
	l.urgent = make(chan struct{}, 1)
	l.writerStop, l.writerDone = make(chan struct{}), make(chan struct{})
	go l.dbWriter()
	return nil
}

// recoverSpool inserts the spooled records that are not in the database
// yet, after checking that they continue the stored chain, and removes the
// segments. A torn last frame (a write cut short by a crash of the OS) ends
// the spool; a frame that decodes but does not verify is refused.
func (l *Logger) recoverSpool(ctx context.Context) error {
	paths, err := l.sp.segments()
	if err != nil {
		return fmt.Errorf("%w: spool: %v", ErrUnavailable, err)
	}
	var pend []Record
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("%w: spool: %v", ErrUnavailable, err)
		}
		recs, torn, err := readSpool(f)
		_ = f.Close()
		if errors.Is(err, errBadFrame) {
			return fmt.Errorf("%w: spool segment %s: %v", ErrBadHead, p, err)
		}
		if err != nil {
			return fmt.Errorf("%w: spool: %v", ErrUnavailable, err)
		}
		if torn && i != len(paths)-1 {
			return fmt.Errorf("%w: spool segment %s is damaged before its end", ErrBadHead, p)
		}
		if torn {
			// Only a crash of the OS cuts a write short; those requests
			// were not answered (without SpoolSync, later ones may be lost
			// too: see Config.SpoolSync).
			l.anchorLog().Warn("audit spool ends in a torn record; it is dropped", "path", p)
		}
		head := l.head
		if n := len(pend); n > 0 {
			head = Head{ReplicaID: l.cfg.ReplicaID, Seq: pend[n-1].Seq, Hash: pend[n-1].Hash}
		}
		for _, r := range recs {
			if r.ReplicaID != l.cfg.ReplicaID {
				return fmt.Errorf("%w: spool segment %s holds a record of replica %q", ErrBadHead, p, r.ReplicaID)
			}
			if r.Seq <= head.Seq {
				continue // already in the database
			}
			ok, buf := l.h.check(&r, l.buf)
			l.buf = buf
			if !ok || r.Seq != head.Seq+1 || !hmacEqualString(r.PrevHash, head.Hash) {
				return fmt.Errorf("%w: spool segment %s: seq %d does not continue the chain at seq %d", ErrBadHead, p, r.Seq, head.Seq)
			}
			pend = append(pend, r)
			head = Head{ReplicaID: l.cfg.ReplicaID, Seq: r.Seq, Hash: r.Hash}
		}
	}
	for len(pend) > 0 {
		k := min(len(pend), spoolInsertBatch)
		l.args = l.args[:0]
		for i := range k {
			if l.args, err = appendRowArgs(l.args, &pend[i]); err != nil {
				return fmt.Errorf("%w: spool: %v", ErrBadHead, err)
			}
		}
		err := l.insert(ctx, l.args)
		clear(l.args)
		if err != nil {
			return fmt.Errorf("%w: moving the spool into the database: %v", ErrUnavailable, err)
		}
		last := pend[k-1]
		l.setHead(Head{ReplicaID: l.cfg.ReplicaID, Seq: last.Seq, Hash: last.Hash})
		pend = pend[k:]
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("%w: spool: %v", ErrUnavailable, err)
		}
	}
	return nil
}

// spoolCommit makes batch durable in the spool (the leader calls it). A
// batch with a state change's record (its intent or its outcome) goes to
// the database instead (writeThrough), and so does every batch while the
// database is failing or behind.
func (l *Logger) spoolCommit(ctx context.Context, batch []*pending) error {
	if l.broken != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, l.broken)
	}
	l.blMu.Lock()
	dbErr, behind := l.dbErr, len(l.backlog)
	l.blMu.Unlock()
	if dbErr != nil || behind >= maxBacklog {
		// The database refused records or cannot keep up: commit to it
		// directly (this batch fails if it still refuses; one that
		// succeeds ends the failure).
		return l.writeThrough(ctx, batch)
	}
	for _, p := range batch {
		if p.rec.Result == ResultIntent || p.rec.Details[DetailIntent] != "" {
			return l.writeThrough(ctx, batch)
		}
	}
	if l.recheck.Load() {
		l.dbMu.Lock()
		err := l.reconcile(ctx, true)
		l.dbMu.Unlock()
		if err != nil {
			return err
		}
	}
	if l.sp.size >= spoolSegmentMax {
		seg, err := l.sp.close()
		l.blMu.Lock()
		l.segs = append(l.segs, seg)
		l.blMu.Unlock()
		if err == nil {
			err = l.sp.open(l.head.Seq + 1)
		}
		if err != nil {
			l.broken = err
			return fmt.Errorf("%w: spool: %v", ErrUnavailable, err)
		}
	}
	l.sp.buf = l.sp.buf[:0]
	head, _ := l.stamp(batch, func(r *Record, canon []byte) error {
		l.sp.appendFrame(canon, r.Hash)
		return nil
	})
	if err := l.sp.flush(head.Seq); err != nil {
		if errors.Is(err, errSpoolBroken) {
			l.broken = err
		}
		return fmt.Errorf("%w: spool: %v", ErrUnavailable, err)
	}
	l.setHead(head)
	l.blMu.Lock()
	for _, p := range batch {
		l.backlog = append(l.backlog, p.rec)
	}
	l.blMu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// writeThrough commits the whole backlog and then batch to the database
// in one transaction, so that batch (holding an intent record) is in the
// database, after everything spooled before it, when Append returns.
func (l *Logger) writeThrough(ctx context.Context, batch []*pending) error {
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	if err := l.reconcile(ctx, true); err != nil {
		return err
	}
	// Only the leader (this goroutine) adds to the backlog and only holders
	// of dbMu remove from it: this snapshot is the whole backlog.
	l.blMu.Lock()
	pend := l.backlog
	l.blMu.Unlock()
	args := l.wargs[:0]
	var err error
	for i := range pend {
		if args, err = appendRowArgs(args, &pend[i]); err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
	}
	head, err := l.stamp(batch, func(r *Record, _ []byte) (err error) {
		args, err = appendRowArgs(args, r)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	err = l.insert(ctx, args)
	clear(args)
	l.wargs = args[:0]
	if err != nil {
		l.dbFailed(err)
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	l.setHead(head)
	l.inserted(len(pend), head.Seq)
	return nil
}

// dbFailed records a failed insert (dbMu held): Append fails closed until
// the writer gets a record or a probe into the database.
func (l *Logger) dbFailed(err error) {
	l.recheck.Store(true)
	l.blMu.Lock()
	l.dbErr = err
	l.notifyLocked()
	l.blMu.Unlock()
}

// inserted drops the first n backlog records, which are now in the
// database up to seq, and removes the spool segments they emptied (dbMu
// held).
func (l *Logger) inserted(n int, seq int64) {
	l.blMu.Lock()
	l.backlog = l.backlog[n:]
	if len(l.backlog) == 0 {
		l.backlog = nil // let the old array go
	}
	l.dbErr = nil
	var done []spoolSeg
	l.segs = slices.DeleteFunc(l.segs, func(s spoolSeg) bool {
		if s.lastSeq <= seq {
			done = append(done, s)
			return true
		}
		return false
	})
	l.notifyLocked()
	l.blMu.Unlock()
	for _, s := range done {
		_ = os.Remove(s.path) // a leftover is skipped at the next start
	}
}

func (l *Logger) notifyLocked() {
	close(l.progress)
	l.progress = make(chan struct{})
}

// reconcile (dbMu held) re-reads the stored head after a failed insert,
// whose outcome may be unknown (a lost COMMIT reply): backlog records the
// database holds are dropped, and a write-through batch that did commit
// becomes the head. Only the leader (leader true) may move the head; the
// writer leaves that check to it.
func (l *Logger) reconcile(ctx context.Context, leader bool) error {
	if !l.recheck.Load() {
		return nil
	}
	var rows []row
	err := l.db.WithContext(ctx).Where("replica_id = ?", l.cfg.ReplicaID).Order("seq DESC").Limit(1).Find(&rows).Error
	if err != nil {
		l.dbFailed(err)
		return fmt.Errorf("%w: read chain head: %v", ErrUnavailable, err)
	}
	l.recheck.Store(false)
	if len(rows) == 0 {
		return nil
	}
	stored := rows[0].Seq
	l.blMu.Lock()
	n := 0
	for n < len(l.backlog) && l.backlog[n].Seq <= stored {
		n++
	}
	l.blMu.Unlock()
	if n > 0 {
		l.inserted(n, stored)
	}
	if h := l.Head(); stored > h.Seq {
		if !leader {
			l.recheck.Store(true)
			return nil
		}
		l.setHead(Head{ReplicaID: l.cfg.ReplicaID, Seq: stored, Hash: rows[0].Hash})
	}
	return nil
}

// dbWriter moves spooled records into the database until Close.
func (l *Logger) dbWriter() {
	defer close(l.writerDone)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	backoff := 50 * time.Millisecond
	for {
		l.blMu.Lock()
		n, failing := len(l.backlog), l.dbErr != nil
		l.blMu.Unlock()
		if n == 0 && !failing {
			select {
			case <-l.wake:
				continue
			case <-l.writerStop:
				return
			}
		}
		if n < spoolInsertBatch/2 && !failing {
			// Let a small backlog grow: fewer, larger transactions (each
			// costs SQLite page writes and the runtime a thread handoff).
			// Flush cuts the wait short.
			linger.Reset(spoolLinger)
			select {
			case <-linger.C:
			case <-l.urgent:
				linger.Stop()
			case <-l.writerStop:
				linger.Stop()
			}
		}
		if err := l.insertBacklog(); err != nil {
			linger.Reset(backoff)
			backoff = min(2*backoff, time.Second)
			select {
			case <-linger.C:
			case <-l.writerStop:
				linger.Stop()
				_ = l.insertAll() // one last try; what fails stays spooled
				return
			}
			continue
		}
		backoff = 50 * time.Millisecond
		select {
		case <-l.writerStop:
			_ = l.insertAll()
			return
		default:
		}
	}
}

// insertAll inserts the whole backlog (at Close).
func (l *Logger) insertAll() error {
	for {
		l.blMu.Lock()
		n := len(l.backlog)
		l.blMu.Unlock()
		if n == 0 {
			return nil
		}
		if err := l.insertBacklog(); err != nil {
			return err
		}
	}
}

// insertBacklog inserts up to spoolInsertBatch backlog records in one
// transaction; with an empty backlog while the database is failing, it
// probes the database instead.
func (l *Logger) insertBacklog() error {
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	ctx, cancel := l.writeContext()
	defer cancel()
	if err := l.reconcile(ctx, false); err != nil {
		return err
	}
	l.blMu.Lock()
	k := min(len(l.backlog), spoolInsertBatch)
	recs := l.backlog[:k:k]
	l.blMu.Unlock()
	if k == 0 {
		if err := Probe(ctx, l.db); err != nil {
			l.dbFailed(err)
			return err
		}
		l.inserted(0, 0)
		return nil
	}
	args := l.wargs[:0]
	var err error
	for i := range recs {
		if args, err = appendRowArgs(args, &recs[i]); err != nil {
			break
		}
	}
	if err == nil {
		err = l.insert(ctx, args)
	}
	clear(args)
	l.wargs = args[:0]
	if err != nil {
		l.dbFailed(err)
		return err
	}
	l.statMu.Lock()
	l.stats.DBBatches++
	l.statMu.Unlock()
	l.inserted(k, recs[k-1].Seq)
	return nil
}

// stopSpool (Close, after the last batch) stops the writer, which first
// inserts what it can, and closes the spool; segments whose records are
// all in the database are removed, the rest wait for the next start.
func (l *Logger) stopSpool() {
	l.writerOnce.Do(func() {
		close(l.writerStop)
		<-l.writerDone
		seg, _ := l.sp.close()
		l.blMu.Lock()
		empty := len(l.backlog) == 0
		segs := append(l.segs, seg)
		l.segs = nil
		l.blMu.Unlock()
		if empty {
			for _, s := range segs {
				if s.path != "" {
					_ = os.Remove(s.path)
				}
			}
		}
	})
}

// Flush waits until every record appended so far is in the database. It
// returns at once without a spool, and with an error wrapping
// ErrUnavailable while the database refuses records.
func (l *Logger) Flush(ctx context.Context) error {
	if l.sp == nil {
		return nil
	}
	target := l.Head().Seq
	select {
	case l.urgent <- struct{}{}:
	default:
	}
	for {
		l.blMu.Lock()
		done := len(l.backlog) == 0 || l.backlog[0].Seq > target
		err, ch := l.dbErr, l.progress
		l.blMu.Unlock()
		if done {
			return nil
		}
		if err != nil {
			// The writer is backing off: try now, so that a database that
			// is back is used at once.
			if err := l.insertAll(); err != nil {
				return fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Probe is the package-level Probe on the Logger's database. With a spool,
// a failed probe also makes Append fail closed until the database takes a
// record or a probe again, so a database that stopped taking records is
// noticed before the next record waits in the spool.
func (l *Logger) Probe(ctx context.Context) error {
	err := Probe(ctx, l.db)
	if err != nil && l.sp != nil {
		l.blMu.Lock()
		if l.dbErr == nil {
			l.dbErr = err
			l.notifyLocked()
		}
		l.blMu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return err
}
