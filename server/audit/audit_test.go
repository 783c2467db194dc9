package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
)

var testKey = bytes.Repeat([]byte{0x5a}, 32)

func migrated(t testing.TB, db *gorm.DB) *gorm.DB {
	t.Helper()
	if err := migrate.Apply(db, audit.Migrations()...); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

func newLogger(t testing.TB, db *gorm.DB, cfg audit.Config) *audit.Logger {
	t.Helper()
	if cfg.ChainKey == nil {
		cfg.ChainKey = testKey
	}
	l, err := audit.NewLogger(db, cfg)
	if err != nil {
		t.Fatalf("NewLogger: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func sample(i int) audit.Record {
	r := audit.Record{
		AccessKeyID: "AKIDTEST",
		Action:      "kms:Decrypt",
		KeyID:       fmt.Sprintf("key-%d", i%3),
		KeyVersion:  1 + i%2,
		Result:      audit.ResultOK,
		RequestID:   fmt.Sprintf("req-%05d", i),
		SourceAddr:  "10.0.0.7:51234",
	}
	if i%4 == 1 {
		r.Result, r.ReasonCode = audit.ResultError, "AccessDenied"
	}
	if i%5 == 2 {
		r.Details = map[string]string{"ctx.tenant": audit.HMACValue(testKey, []byte("acme"))}
	}
	return r
}

func appendSeq(t testing.TB, l *audit.Logger, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(context.Background(), sample(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

func verify(t testing.TB, db *gorm.DB, anchors ...audit.Head) audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), db, testKey, anchors...)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func countRows(t testing.TB, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Table("kms_audit_records").Count(&n).Error; err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

func TestConcurrentAppendThenVerify(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		l := newLogger(t, db, audit.Config{ReplicaID: "kmsd-1"})
		const workers, each = 16, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					errs <- l.Append(context.Background(), sample(w*each+i))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		st := l.Stats()
		if st.Records != workers*each || st.Failed != 0 {
			t.Fatalf("stats %+v", st)
		}
		if st.Batches >= st.Records {
			t.Fatalf("no group commit: %d batches for %d records", st.Batches, st.Records)
		}
		rep := verify(t, db)
		if !rep.OK || rep.Checked != workers*each || rep.FirstBroken != nil {
			t.Fatalf("report %+v", rep)
		}
		if len(rep.Heads) != 1 || rep.Heads[0] != l.Head() || l.Head().Seq != workers*each {
			t.Fatalf("heads %+v, logger head %+v", rep.Heads, l.Head())
		}

		// List pages through every record exactly once, in time order.
		seen := map[string]bool{}
		var last time.Time
		opts := audit.ListOptions{Limit: 37}
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("List does not terminate")
			}
			p, err := audit.List(context.Background(), db, opts)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			for _, r := range p.Records {
				if seen[r.RequestID] {
					t.Fatalf("record %s listed twice", r.RequestID)
				}
				seen[r.RequestID] = true
				if r.Time.Before(last) {
					t.Fatalf("records out of time order")
				}
				last = r.Time
				if r.ReplicaID != "kmsd-1" || len(r.Hash) != 64 {
					t.Fatalf("record not stamped: %+v", r)
				}
			}
			if p.Next == "" {
				break
			}
			opts.After = p.Next
		}
		if len(seen) != workers*each {
			t.Fatalf("listed %d records, want %d", len(seen), workers*each)
		}
	})
}

// tamperCase edits a chain of 10 records on replica "r1" (next to an intact
// 5-record chain on replica "a") and names the first broken link Verify must report.
type tamperCase struct {
	name   string
	sql    []string // %s is replaced by the table name
	anchor bool     // pass r1's head (taken before tampering) as an anchor
	want   *audit.Break
}

func TestVerifyFindsFirstBrokenLink(t *testing.T) {
	const fakeHash = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	cases := []tamperCase{
		{name: "intact"},
		{name: "edit action", sql: []string{"UPDATE %s SET action = 'kms:Encrypt' WHERE replica_id = 'r1' AND seq = 5"},
			want: &audit.Break{ReplicaID: "r1", Seq: 5, Reason: audit.ReasonHash}},
		{name: "edit result", sql: []string{"UPDATE %s SET result = 'ok', reason_code = '' WHERE replica_id = 'r1' AND seq = 2"},
			want: &audit.Break{ReplicaID: "r1", Seq: 2, Reason: audit.ReasonHash}},
		{name: "edit time", sql: []string{"UPDATE %s SET time_us = time_us + 1 WHERE replica_id = 'r1' AND seq = 7"},
			want: &audit.Break{ReplicaID: "r1", Seq: 7, Reason: audit.ReasonHash}},
		{name: "edit details", sql: []string{`UPDATE %s SET details = '{"ctx.tenant":"x"}' WHERE replica_id = 'r1' AND seq = 3`},
			want: &audit.Break{ReplicaID: "r1", Seq: 3, Reason: audit.ReasonHash}},
		{name: "garbage details", sql: []string{"UPDATE %s SET details = '{not json' WHERE replica_id = 'r1' AND seq = 3"},
			want: &audit.Break{ReplicaID: "r1", Seq: 3, Reason: audit.ReasonEncoding}},
		{name: "replace hash", sql: []string{"UPDATE %s SET hash = '" + fakeHash + "' WHERE replica_id = 'r1' AND seq = 5"},
			want: &audit.Break{ReplicaID: "r1", Seq: 5, Reason: audit.ReasonHash}},
		{name: "replace hash and relink", sql: []string{
			"UPDATE %s SET hash = '" + fakeHash + "' WHERE replica_id = 'r1' AND seq = 5",
			"UPDATE %s SET prev_hash = '" + fakeHash + "' WHERE replica_id = 'r1' AND seq = 6"},
			want: &audit.Break{ReplicaID: "r1", Seq: 5, Reason: audit.ReasonHash}},
		{name: "edit prev_hash", sql: []string{"UPDATE %s SET prev_hash = '" + fakeHash + "' WHERE replica_id = 'r1' AND seq = 6"},
			want: &audit.Break{ReplicaID: "r1", Seq: 6, Reason: audit.ReasonLink}},
		{name: "delete middle", sql: []string{"DELETE FROM %s WHERE replica_id = 'r1' AND seq = 5"},
			want: &audit.Break{ReplicaID: "r1", Seq: 5, Reason: audit.ReasonMissing}},
		{name: "delete first", sql: []string{"DELETE FROM %s WHERE replica_id = 'r1' AND seq = 1"},
			want: &audit.Break{ReplicaID: "r1", Seq: 1, Reason: audit.ReasonMissing}},
		{name: "delete range", sql: []string{"DELETE FROM %s WHERE replica_id = 'r1' AND seq BETWEEN 3 AND 8"},
			want: &audit.Break{ReplicaID: "r1", Seq: 3, Reason: audit.ReasonMissing}},
		{name: "swap two records", sql: []string{
			"UPDATE %s SET seq = 1000 WHERE replica_id = 'r1' AND seq = 4",
			"UPDATE %s SET seq = 4 WHERE replica_id = 'r1' AND seq = 5",
			"UPDATE %s SET seq = 5 WHERE replica_id = 'r1' AND seq = 1000"},
			want: &audit.Break{ReplicaID: "r1", Seq: 4, Reason: audit.ReasonLink}},
		{name: "renumber to negative", sql: []string{"UPDATE %s SET seq = -1 WHERE replica_id = 'r1' AND seq = 1"},
			want: &audit.Break{ReplicaID: "r1", Seq: -1, Reason: audit.ReasonSeq}},
		{name: "move record to another replica", sql: []string{"UPDATE %s SET replica_id = '0' WHERE replica_id = 'r1' AND seq = 5"},
			want: &audit.Break{ReplicaID: "0", Seq: 1, Reason: audit.ReasonMissing}},
		{name: "forged record appended", sql: []string{
			"INSERT INTO %s (replica_id, seq, time_us, access_key_id, action, key_id, key_version, result, reason_code, request_id, source_addr, details, prev_hash, hash) " +
				"SELECT replica_id, 11, time_us, access_key_id, 'kms:DisableKey', key_id, key_version, result, reason_code, 'forged', source_addr, details, hash, '" + fakeHash + "' FROM %s WHERE replica_id = 'r1' AND seq = 10"},
			want: &audit.Break{ReplicaID: "r1", Seq: 11, Reason: audit.ReasonHash}},
		// Documented limitation: a truncated tail is a valid shorter chain ...
		{name: "tail deleted, no anchor", sql: []string{"DELETE FROM %s WHERE replica_id = 'r1' AND seq >= 9"}},
		// ... which an anchor (a head saved outside the database) exposes.
		{name: "tail deleted, anchored", anchor: true, sql: []string{"DELETE FROM %s WHERE replica_id = 'r1' AND seq >= 9"},
			want: &audit.Break{ReplicaID: "r1", Seq: 10, Reason: audit.ReasonAnchor}},
		{name: "whole chain deleted, anchored", anchor: true, sql: []string{"DELETE FROM %s WHERE replica_id = 'r1'"},
			want: &audit.Break{ReplicaID: "r1", Seq: 10, Reason: audit.ReasonAnchor}},
		{name: "intact, anchored", anchor: true},
	}
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					db := migrated(t, dbtest.Open(t, d))
					a := newLogger(t, db, audit.Config{ReplicaID: "a"})
					r1 := newLogger(t, db, audit.Config{ReplicaID: "r1"})
					appendSeq(t, a, 0, 5)
					appendSeq(t, r1, 100, 10)
					head := r1.Head()
					a.Close()
					r1.Close()
					for _, q := range tc.sql {
						q = strings.ReplaceAll(q, "%s", "kms_audit_records")
						if err := db.Exec(q).Error; err != nil {
							t.Fatalf("tamper %q: %v", q, err)
						}
					}
					var anchors []audit.Head
					if tc.anchor {
						anchors = append(anchors, head)
					}
					rep := verify(t, db, anchors...)
					if tc.want == nil {
						if !rep.OK || rep.FirstBroken != nil {
							t.Fatalf("want OK, got %+v (break %+v)", rep, rep.FirstBroken)
						}
						return
					}
					if rep.OK || rep.FirstBroken == nil || *rep.FirstBroken != *tc.want {
						t.Fatalf("first broken = %+v, want %+v (report %+v)", rep.FirstBroken, tc.want, rep)
					}
				})
			}
		})
	}
}

func TestVerifyWithWrongKeyFailsAtFirstRecord(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		l := newLogger(t, db, audit.Config{ReplicaID: "r1"})
		appendSeq(t, l, 0, 3)
		other := bytes.Repeat([]byte{0x5b}, 32)
		rep, err := audit.Verify(context.Background(), db, other)
		if err != nil {
			t.Fatal(err)
		}
		want := audit.Break{ReplicaID: "r1", Seq: 1, Reason: audit.ReasonHash}
		if rep.OK || rep.FirstBroken == nil || *rep.FirstBroken != want || rep.Checked != 0 {
			t.Fatalf("report %+v", rep)
		}
		if _, err := audit.Verify(context.Background(), db, []byte("short")); !errors.Is(err, audit.ErrInvalidConfig) {
			t.Fatalf("short key: %v", err)
		}
	})
}

func TestTwoReplicasShareOneDatabase(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			dsn, db1 := dbtest.OpenDSN(t, d)
			migrated(t, db1)
			db2, err := dbtest.Connect(d, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if s, err := db2.DB(); err == nil {
					s.Close()
				}
			})
			l1 := newLogger(t, db1, audit.Config{ReplicaID: "kmsd-a"})
			l2 := newLogger(t, db2, audit.Config{ReplicaID: "kmsd-b"})
			var wg sync.WaitGroup
			for w := range 8 {
				l := l1
				if w%2 == 1 {
					l = l2
				}
				wg.Go(func() {
					for i := range 20 {
						if err := l.Append(context.Background(), sample(w*100+i)); err != nil {
							t.Errorf("Append: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			rep := verify(t, db1)
			if !rep.OK || rep.Checked != 160 || len(rep.Heads) != 2 {
				t.Fatalf("report %+v", rep)
			}
			if rep.Heads[0] != l1.Head() || rep.Heads[1] != l2.Head() || l1.Head().Seq != 80 || l2.Head().Seq != 80 {
				t.Fatalf("heads %+v vs %+v %+v", rep.Heads, l1.Head(), l2.Head())
			}
			p, err := audit.List(context.Background(), db2, audit.ListOptions{ReplicaID: "kmsd-b", Limit: 1000})
			if err != nil || len(p.Records) != 80 || p.Next != "" {
				t.Fatalf("List replica b: %d records, next %q, %v", len(p.Records), p.Next, err)
			}
		})
	}
}

func TestRestartResumesChain(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		l1 := newLogger(t, db, audit.Config{ReplicaID: "r1"})
		appendSeq(t, l1, 0, 7)
		h1 := l1.Head()
		if err := l1.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l1.Append(context.Background(), sample(1)); !errors.Is(err, audit.ErrClosed) {
			t.Fatalf("Append after Close: %v", err)
		}

		l2 := newLogger(t, db, audit.Config{ReplicaID: "r1"})
		if l2.Head() != h1 {
			t.Fatalf("resumed head %+v, want %+v", l2.Head(), h1)
		}
		appendSeq(t, l2, 7, 3)
		if l2.Head().Seq != 10 {
			t.Fatalf("head %+v", l2.Head())
		}
		rep := verify(t, db, h1)
		if !rep.OK || rep.Checked != 10 {
			t.Fatalf("report %+v", rep)
		}

		// A different key (misconfiguration) or an edited tail: refuse to extend.
		if _, err := audit.NewLogger(db, audit.Config{ReplicaID: "r1", ChainKey: bytes.Repeat([]byte{1}, 32)}); !errors.Is(err, audit.ErrBadHead) {
			t.Fatalf("wrong key: %v", err)
		}
		l2.Close()
		if err := db.Exec("UPDATE kms_audit_records SET action = 'x' WHERE seq = 10").Error; err != nil {
			t.Fatal(err)
		}
		if _, err := audit.NewLogger(db, audit.Config{ReplicaID: "r1", ChainKey: testKey}); !errors.Is(err, audit.ErrBadHead) {
			t.Fatalf("tampered head: %v", err)
		}
	})
}

func TestFailClosedWhenDatabaseIsGone(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d+"/closed pool", func(t *testing.T) {
			dsn, db := dbtest.OpenDSN(t, d)
			migrated(t, db)
			logDB, err := dbtest.Connect(d, dsn)
			if err != nil {
				t.Fatal(err)
			}
			l := newLogger(t, logDB, audit.Config{ReplicaID: "r1"})
			appendSeq(t, l, 0, 2)
			sqlDB, _ := logDB.DB()
			sqlDB.Close()
			for i := range 3 {
				if err := l.Append(context.Background(), sample(i)); !errors.Is(err, audit.ErrUnavailable) {
					t.Fatalf("Append on closed pool: %v", err)
				}
			}
			if st := l.Stats(); st.Failed != 3 || st.Records != 2 {
				t.Fatalf("stats %+v", st)
			}
			if n := countRows(t, db); n != 2 {
				t.Fatalf("%d rows, want 2", n)
			}
			if rep := verify(t, db); !rep.OK || rep.Checked != 2 {
				t.Fatalf("report %+v", rep)
			}
		})
		t.Run(d+"/dropped table", func(t *testing.T) {
			db := migrated(t, dbtest.Open(t, d))
			l := newLogger(t, db, audit.Config{ReplicaID: "r1"})
			appendSeq(t, l, 0, 2)
			if err := db.Migrator().DropTable("kms_audit_records"); err != nil {
				t.Fatal(err)
			}
			if err := l.Append(context.Background(), sample(3)); !errors.Is(err, audit.ErrUnavailable) {
				t.Fatalf("Append without table: %v", err)
			}
			if _, err := audit.Verify(context.Background(), db, testKey); err == nil {
				t.Fatal("Verify without table succeeded")
			}
		})
	}
}

// failRule makes the database reject any audit row with request_id 'boom',
// so that one record in the middle of a batch fails inside the transaction.
func failRule(t *testing.T, db *gorm.DB) (add, drop string) {
	t.Helper()
	switch db.Dialector.Name() {
	case "sqlite":
		return "CREATE TRIGGER audit_boom BEFORE INSERT ON kms_audit_records WHEN NEW.request_id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END",
			"DROP TRIGGER audit_boom"
	case "mysql", "postgres":
		return "ALTER TABLE kms_audit_records ADD CONSTRAINT audit_boom CHECK (request_id <> 'boom')",
			"ALTER TABLE kms_audit_records DROP CONSTRAINT audit_boom"
	}
	t.Fatalf("unknown dialect %s", db.Dialector.Name())
	return "", ""
}

func TestFailedBatchIsAllOrNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		// One batch of 300 records: the insert runs as several statements in
		// one transaction; the bad record comes last.
		const n = 300
		l := newLogger(t, db, audit.Config{ReplicaID: "r1", MaxBatch: n})
		appendSeq(t, l, 0, 3)
		add, drop := failRule(t, db)
		if err := db.Exec(add).Error; err != nil {
			t.Fatalf("install rule: %v", err)
		}
		// Stall the writer: another transaction holds seq 4 uncommitted, so
		// the "plug" record's insert waits while n records queue up behind it
		// and then form one batch (several INSERT statements), the bad one last.
		blocker := db.Begin()
		if err := blocker.Exec("INSERT INTO kms_audit_records (replica_id, seq, time_us, access_key_id, action, key_id, key_version, result, reason_code, request_id, source_addr, details, prev_hash, hash) " +
			"SELECT replica_id, 4, time_us, access_key_id, action, key_id, key_version, result, reason_code, request_id, source_addr, details, prev_hash, hash FROM kms_audit_records WHERE replica_id = 'r1' AND seq = 3").Error; err != nil {
			t.Fatalf("blocker: %v", err)
		}
		plug := make(chan error, 1)
		go func() { plug <- l.Append(context.Background(), sample(4)) }()
		time.Sleep(200 * time.Millisecond)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n - 1 {
			wg.Go(func() { errs[i] = l.Append(context.Background(), sample(10+i)) })
		}
		time.Sleep(300 * time.Millisecond)
		boom := sample(9)
		boom.RequestID = "boom"
		wg.Go(func() { errs[n-1] = l.Append(context.Background(), boom) })
		time.Sleep(300 * time.Millisecond)
		if err := blocker.Rollback().Error; err != nil {
			t.Fatalf("release blocker: %v", err)
		}
		wg.Wait()
		if err := <-plug; err != nil {
			t.Fatalf("plug record: %v", err)
		}
		for i, err := range errs {
			if !errors.Is(err, audit.ErrUnavailable) {
				t.Fatalf("record %d in failed batch: %v", i, err)
			}
		}
		if got := countRows(t, db); got != 4 {
			t.Fatalf("%d rows after failed batch, want 4", got)
		}
		if st := l.Stats(); st.Failed != n || st.Records != 4 {
			t.Fatalf("stats %+v", st)
		}
		if l.Head().Seq != 4 {
			t.Fatalf("head moved to %+v after a failed batch", l.Head())
		}
		if err := db.Exec(drop).Error; err != nil {
			t.Fatalf("drop rule: %v", err)
		}
		var wg2 sync.WaitGroup
		for i := range n {
			wg2.Go(func() {
				if err := l.Append(context.Background(), sample(1000+i)); err != nil {
					t.Errorf("record %d after recovery: %v", i, err)
				}
			})
		}
		wg2.Wait()
		if l.Head().Seq != 4+n {
			t.Fatalf("chain did not continue from the last durable record: head %+v", l.Head())
		}
		if rep := verify(t, db); !rep.OK || rep.Checked != 4+n {
			t.Fatalf("report %+v", rep)
		}
	})
}

func TestAppendRejectsBadInput(t *testing.T) {
	db := migrated(t, dbtest.Open(t, dbtest.SQLite))
	l := newLogger(t, db, audit.Config{ReplicaID: "r1"})
	long := strings.Repeat("x", 300)
	manyDetails := map[string]string{}
	for i := range 33 {
		manyDetails[fmt.Sprint(i)] = "v"
	}
	cases := []struct {
		name string
		edit func(*audit.Record)
	}{
		{"no action", func(r *audit.Record) { r.Action = "" }},
		{"bad result", func(r *audit.Record) { r.Result = "maybe" }},
		{"negative version", func(r *audit.Record) { r.KeyVersion = -1 }},
		{"long key id", func(r *audit.Record) { r.KeyID = long }},
		{"long request id", func(r *audit.Record) { r.RequestID = long }},
		{"NUL in source", func(r *audit.Record) { r.SourceAddr = "a\x00b" }},
		{"invalid UTF-8", func(r *audit.Record) { r.AccessKeyID = "\xff\xfe" }},
		{"empty detail name", func(r *audit.Record) { r.Details = map[string]string{"": "v"} }},
		{"long detail value", func(r *audit.Record) { r.Details = map[string]string{"k": long} }},
		{"too many details", func(r *audit.Record) { r.Details = manyDetails }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := sample(0)
			tc.edit(&r)
			if err := l.Append(context.Background(), r); !errors.Is(err, audit.ErrInvalidRecord) {
				t.Fatalf("got %v, want ErrInvalidRecord", err)
			}
		})
	}
	if n := countRows(t, db); n != 0 {
		t.Fatalf("%d rows written for invalid records", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Append(ctx, sample(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: %v", err)
	}

	for _, cfg := range []audit.Config{
		{ReplicaID: "", ChainKey: testKey},
		{ReplicaID: long, ChainKey: testKey},
		{ReplicaID: "r\x00", ChainKey: testKey},
		{ReplicaID: "r2", ChainKey: testKey[:31]},
	} {
		if _, err := audit.NewLogger(db, cfg); !errors.Is(err, audit.ErrInvalidConfig) {
			t.Fatalf("config %q/%d: %v", cfg.ReplicaID, len(cfg.ChainKey), err)
		}
	}
}

func TestAppendStoresWhatWasGiven(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		l := newLogger(t, db, audit.Config{ReplicaID: "r1"})
		at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("x", 3600))
		in := audit.Record{
			Time: at, AccessKeyID: "AKID1", Action: "kms:DisableKey", KeyID: "k-1", KeyVersion: 3,
			Result: audit.ResultError, ReasonCode: "InvalidKeyState", RequestID: "rq", SourceAddr: "[::1]:80",
			Details:  map[string]string{"state": "Disabled", "ctx.user": audit.HMACValue(testKey, []byte("alice"))},
			Seq:      99, // ignored: the logger numbers records
			PrevHash: "forged", Hash: "forged",
		}
		if err := l.Append(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		in.Details["state"] = "changed after Append" // must not affect the stored record
		p, err := audit.List(context.Background(), db, audit.ListOptions{KeyID: "k-1"})
		if err != nil || len(p.Records) != 1 {
			t.Fatalf("List: %+v %v", p, err)
		}
		got := p.Records[0]
		if !got.Time.Equal(at.Truncate(time.Microsecond)) || got.Time.Location() != time.UTC {
			t.Fatalf("time %v, want %v in UTC", got.Time, at)
		}
		if got.Seq != 1 || got.PrevHash != "" || got.Hash == "forged" || got.ReplicaID != "r1" {
			t.Fatalf("chain fields %+v", got)
		}
		if got.AccessKeyID != "AKID1" || got.Action != "kms:DisableKey" || got.KeyVersion != 3 ||
			got.Result != "error" || got.ReasonCode != "InvalidKeyState" || got.RequestID != "rq" ||
			got.SourceAddr != "[::1]:80" || got.Details["state"] != "Disabled" ||
			got.Details["ctx.user"] != audit.HMACValue(testKey, []byte("alice")) {
			t.Fatalf("stored %+v", got)
		}
	})
}

func TestListFilters(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		l := newLogger(t, db, audit.Config{ReplicaID: "r1"})
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 12 {
			r := sample(i)
			r.Time = base.Add(time.Duration(i) * time.Minute)
			r.AccessKeyID = fmt.Sprintf("AK%d", i%2)
			if err := l.Append(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			name string
			opts audit.ListOptions
			want int
		}{
			{"all", audit.ListOptions{}, 12},
			{"key", audit.ListOptions{KeyID: "key-1"}, 4},
			{"access key", audit.ListOptions{AccessKeyID: "AK1"}, 6},
			{"key and access key", audit.ListOptions{KeyID: "key-0", AccessKeyID: "AK0"}, 2},
			{"since", audit.ListOptions{Since: base.Add(9 * time.Minute)}, 3},
			{"action", audit.ListOptions{Action: "kms:Encrypt"}, 0},
			{"other replica", audit.ListOptions{ReplicaID: "r2"}, 0},
			{"limit", audit.ListOptions{Limit: 5}, 5},
		}
		for _, tc := range cases {
			p, err := audit.List(context.Background(), db, tc.opts)
			if err != nil || len(p.Records) != tc.want {
				t.Fatalf("%s: %d records, want %d (%v)", tc.name, len(p.Records), tc.want, err)
			}
		}
		for _, bad := range []string{"x", "djEuMS4xLg", "!!!"} {
			if _, err := audit.List(context.Background(), db, audit.ListOptions{After: bad}); !errors.Is(err, audit.ErrInvalidCursor) {
				t.Fatalf("cursor %q: %v", bad, err)
			}
		}
	})
}

func TestHMACValue(t *testing.T) {
	k2 := bytes.Repeat([]byte{0x11}, 32)
	a := audit.HMACValue(testKey, []byte("acme"))
	cases := []struct {
		name  string
		other string
		same  bool
	}{
		{"deterministic", audit.HMACValue(testKey, []byte("acme")), true},
		{"other value", audit.HMACValue(testKey, []byte("acmf")), false},
		{"other key", audit.HMACValue(k2, []byte("acme")), false},
		{"empty value", audit.HMACValue(testKey, nil), false},
	}
	for _, tc := range cases {
		if (tc.other == a) != tc.same {
			t.Fatalf("%s: %s vs %s", tc.name, tc.other, a)
		}
	}
	if len(a) != 64 || strings.Contains(a, "acme") {
		t.Fatalf("digest %q", a)
	}
}

// Two processes misconfigured with the same ReplicaID: the primary key on
// (replica_id, seq) stops any fork, a losing batch fails closed, the loser
// re-reads the head and continues, and the chain stays valid.
func TestSameReplicaIDTwiceNeverForks(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		l1 := newLogger(t, db, audit.Config{ReplicaID: "dup"})
		l2 := newLogger(t, db, audit.Config{ReplicaID: "dup"})
		var wg sync.WaitGroup
		var mu sync.Mutex
		durable := 0
		for w := range 8 {
			l := l1
			if w%2 == 1 {
				l = l2
			}
			wg.Go(func() {
				for i := range 15 {
					err := l.Append(context.Background(), sample(w*100+i))
					switch {
					case err == nil:
						mu.Lock()
						durable++
						mu.Unlock()
					case !errors.Is(err, audit.ErrUnavailable):
						t.Errorf("Append: %v", err)
					}
				}
			})
		}
		wg.Wait()
		if durable == 0 {
			t.Fatal("no record was written")
		}
		t.Logf("%d of 120 Appends durable, the rest failed closed on a seq conflict", durable)
		if n := countRows(t, db); n != int64(durable) {
			t.Fatalf("%d rows, but %d Appends succeeded", n, durable)
		}
		if rep := verify(t, db); !rep.OK || rep.Checked != durable {
			t.Fatalf("report %+v (durable %d)", rep, durable)
		}
	})
}

// Close while Appends are in flight: every Append either returns nil (and
// its record is stored) or ErrClosed (and nothing is stored for it).
func TestCloseFlushesInFlightRecords(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		l := newLogger(t, db, audit.Config{ReplicaID: "r1", MaxBatch: 8})
		const n = 200
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = l.Append(context.Background(), sample(i)) })
		}
		time.Sleep(time.Millisecond)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		stored := 0
		for i, err := range errs {
			switch {
			case err == nil:
				stored++
			case !errors.Is(err, audit.ErrClosed):
				t.Fatalf("Append %d: %v", i, err)
			}
		}
		if got := countRows(t, db); got != int64(stored) {
			t.Fatalf("%d rows, %d Appends succeeded", got, stored)
		}
		if l.Head().Seq != int64(stored) {
			t.Fatalf("head %+v, %d stored", l.Head(), stored)
		}
		if rep := verify(t, db); !rep.OK || rep.Checked != stored {
			t.Fatalf("report %+v", rep)
		}
	})
}

// TestAbandonedCallersNeverStallTheQueue: callers whose ctx ends while
// their records wait (the lead must then pass them by) leave no record
// unwritten and no caller stuck; every record answered nil is stored, the
// chain verifies, and a lone caller commits one record per batch.
func TestAbandonedCallersNeverStallTheQueue(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		l := newLogger(t, db, audit.Config{ReplicaID: "r1", MaxBatch: 4})
		appendSeq(t, l, 0, 3)
		if st := l.Stats(); st.Batches != 3 || st.Records != 3 {
			t.Fatalf("lone caller: %+v, want 3 batches of 1", st)
		}
		const workers, each = 24, 12
		var wg sync.WaitGroup
		var ok, gaveUp atomic.Int64
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					ctx, cancel := context.Background(), context.CancelFunc(func() {})
					if (w+i)%3 == 0 { // a third give up after 0-300 µs
						ctx, cancel = context.WithTimeout(ctx, time.Duration((w*7+i*13)%300)*time.Microsecond)
					}
					err := l.Append(ctx, sample(1000+w*each+i))
					cancel()
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, context.DeadlineExceeded):
						gaveUp.Add(1)
					default:
						t.Errorf("Append: %v", err)
					}
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("callers stuck")
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		rows := countRows(t, db) - 3
		if rows < ok.Load() || rows > ok.Load()+gaveUp.Load() {
			t.Fatalf("%d rows for %d answered and %d abandoned", rows, ok.Load(), gaveUp.Load())
		}
		st := l.Stats()
		if st.Records != rows+3 || st.Failed != 0 || st.MaxBatch > 4 {
			t.Fatalf("stats %+v, rows %d", st, rows+3)
		}
		if rep := verify(t, db); !rep.OK || rep.Checked != int(rows+3) {
			t.Fatalf("report %+v", rep)
		}
		t.Logf("%d answered, %d gave up, %d rows, %d batches", ok.Load(), gaveUp.Load(), rows, st.Batches)
	})
}
