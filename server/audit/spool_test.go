package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/dbtest"
)

// copyDir copies the regular files of src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// spoolSnapshot appends n records through a spooled Logger and returns a
// copy of its spool as a process killed at that moment would leave it
// (every Append returned, so every record is in the file). The Logger
// itself goes on to move them into its own database, which the test
// does not use.
func spoolSnapshot(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	l := newLogger(t, migrated(t, dbtest.Open(t, dbtest.SQLite)), audit.Config{ReplicaID: "r1", SpoolDir: dir})
	appendSeq(t, l, 0, n)
	snap := copyDir(t, dir)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("Close left %d spool files", len(ents))
	}
	return snap
}

// spoolFile is the one segment in dir.
func spoolFile(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("spool dir: %v %v", ents, err)
	}
	fi, err := ents[0].Info()
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool file mode: %v %v", fi, err)
	}
	return filepath.Join(dir, ents[0].Name())
}

// TestSpoolRecoversWhatAKilledProcessLeft: the next Logger moves spooled
// records that never reached the database into it, the chain verifies,
// and new records continue it.
func TestSpoolRecoversWhatAKilledProcessLeft(t *testing.T) {
	snap := spoolSnapshot(t, 50)
	db := migrated(t, dbtest.Open(t, dbtest.SQLite))
	l := newLogger(t, db, audit.Config{ReplicaID: "r1", SpoolDir: snap})
	if n := countRows(t, db); n != 50 {
		t.Fatalf("%d records after recovery, want 50", n)
	}
	if h := l.Head(); h.Seq != 50 {
		t.Fatalf("head after recovery: %+v", h)
	}
	appendSeq(t, l, 50, 10)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, db); !rep.OK || rep.Checked != 60 {
		t.Fatalf("verify after recovery: %+v", rep)
	}
}

// TestSpoolRecoverySkipsStoredRecords: records already in the database
// are not inserted twice.
func TestSpoolRecoverySkipsStoredRecords(t *testing.T) {
	dir := t.TempDir()
	db := migrated(t, dbtest.Open(t, dbtest.SQLite))
	l := newLogger(t, db, audit.Config{ReplicaID: "r1", SpoolDir: dir})
	appendSeq(t, l, 0, 30)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap := copyDir(t, dir) // all 30 are in the database and the spool
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := newLogger(t, db, audit.Config{ReplicaID: "r1", SpoolDir: snap})
	if n := countRows(t, db); n != 30 || l2.Head().Seq != 30 {
		t.Fatalf("%d rows, head %+v; want 30", n, l2.Head())
	}
	if rep := verify(t, db); !rep.OK {
		t.Fatalf("verify: %+v", rep)
	}
}

// TestSpoolTornTailIsDropped: a frame cut short (a write interrupted by an
// OS crash) ends the spool; the records before it are recovered.
func TestSpoolTornTailIsDropped(t *testing.T) {
	snap := spoolSnapshot(t, 20)
	f := spoolFile(t, snap)
	st, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f, st.Size()-7); err != nil {
		t.Fatal(err)
	}
	db := migrated(t, dbtest.Open(t, dbtest.SQLite))
	l := newLogger(t, db, audit.Config{ReplicaID: "r1", SpoolDir: snap})
	if n := countRows(t, db); n != 19 || l.Head().Seq != 19 {
		t.Fatalf("%d rows, head %+v; want 19", n, l.Head())
	}
	if rep := verify(t, db); !rep.OK {
		t.Fatalf("verify: %+v", rep)
	}
}

// TestSpoolTamperingRefused: a spooled record changed on disk (it still
// decodes) fails its hash, and NewLogger refuses to start; so does a spool
// of another replica's chain put in place of this one's.
func TestSpoolTamperingRefused(t *testing.T) {
	snap := spoolSnapshot(t, 20)
	f := spoolFile(t, snap)
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("req-00010"))
	if i < 0 {
		t.Fatal("request id not found in the spool")
	}
	b[i+8] = '1' // req-00011: still decodes, no longer verifies
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db := migrated(t, dbtest.Open(t, dbtest.SQLite))
	_, err = audit.NewLogger(db, audit.Config{ReplicaID: "r1", ChainKey: testKey, SpoolDir: snap})
	if !errors.Is(err, audit.ErrBadHead) {
		t.Fatalf("NewLogger on a tampered spool: %v, want ErrBadHead", err)
	}

	// A complete frame that does not decode (a damaged length or field)
	// is refused too, not taken for the torn end of the spool.
	snap3 := spoolSnapshot(t, 20)
	f3 := spoolFile(t, snap3)
	b3, err := os.ReadFile(f3)
	if err != nil {
		t.Fatal(err)
	}
	j := bytes.Index(b3, []byte("kmsgo/audit/record/v1")) // first frame's domain string
	b3[j] = 'X'
	if err := os.WriteFile(f3, b3, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = audit.NewLogger(migrated(t, dbtest.Open(t, dbtest.SQLite)), audit.Config{ReplicaID: "r1", ChainKey: testKey, SpoolDir: snap3})
	if !errors.Is(err, audit.ErrBadHead) {
		t.Fatalf("NewLogger on a spool with a damaged frame: %v, want ErrBadHead", err)
	}

	// Another replica's segment renamed to this replica's name.
	snap2 := spoolSnapshot(t, 5)
	other := t.TempDir()
	l := newLogger(t, migrated(t, dbtest.Open(t, dbtest.SQLite)), audit.Config{ReplicaID: "r2", SpoolDir: other})
	appendSeq(t, l, 0, 5)
	osnap := copyDir(t, other)
	_ = l.Close()
	if err := os.Rename(spoolFile(t, osnap), spoolFile(t, snap2)); err != nil {
		t.Fatal(err)
	}
	_, err = audit.NewLogger(migrated(t, dbtest.Open(t, dbtest.SQLite)), audit.Config{ReplicaID: "r1", ChainKey: testKey, SpoolDir: snap2})
	if !errors.Is(err, audit.ErrBadHead) {
		t.Fatalf("NewLogger on another replica's spool: %v, want ErrBadHead", err)
	}
}

// TestSpoolFailsClosedAndRecovers: a record the database refuses is durable
// in the spool, but from the writer's first failure on Append fails with
// ErrUnavailable (each batch then goes to the database directly); once the
// database takes records again the spooled one is stored and the chain
// verifies. A failed Probe closes the log at once too.
func TestSpoolFailsClosedAndRecovers(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		l := newLogger(t, db, audit.Config{ReplicaID: "r1", SpoolDir: t.TempDir()})
		ctx := context.Background()
		appendSeq(t, l, 0, 5)
		add, drop := failRule(t, db)
		if err := db.Exec(add).Error; err != nil {
			t.Fatal(err)
		}
		boom := sample(5)
		boom.RequestID = "boom"
		if err := l.Append(ctx, boom); err != nil {
			t.Fatalf("Append of a record the spool takes: %v", err)
		}
		var err error
		for deadline := time.Now().Add(10 * time.Second); err == nil; {
			if time.Now().After(deadline) {
				t.Fatal("Append still succeeds 10s after the database refused a record")
			}
			err = l.Append(ctx, sample(6))
			time.Sleep(time.Millisecond)
		}
		if !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("Append while the database refuses records: %v", err)
		}
		if err := l.Flush(ctx); !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("Flush while the database refuses records: %v", err)
		}
		if err := db.Exec(drop).Error; err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, sample(7)); err != nil {
			t.Fatalf("Append once the database takes records again: %v", err)
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		rep := verify(t, db)
		if !rep.OK {
			t.Fatalf("verify: %+v", rep)
		}
		var n int64
		if err := db.Table("kms_audit_records").Where("request_id = ?", "boom").Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("the spooled record refused at first: %d rows, %v", n, err)
		}

		// Probe: a database that refuses every record closes the log
		// before any record waits in the spool.
		block := "CREATE TRIGGER audit_all BEFORE INSERT ON kms_audit_records BEGIN SELECT RAISE(ABORT, 'down'); END"
		unblock := "DROP TRIGGER audit_all"
		if db.Dialector.Name() != "sqlite" {
			block = fmt.Sprintf("ALTER TABLE kms_audit_records ADD CONSTRAINT audit_all CHECK (time_us < %d)", time.Now().UnixMicro())
			unblock = "ALTER TABLE kms_audit_records DROP CONSTRAINT audit_all"
		}
		if err := db.Exec(block).Error; err != nil {
			t.Fatal(err)
		}
		if err := l.Probe(ctx); !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("Probe with inserts blocked: %v", err)
		}
		if err := l.Append(ctx, sample(8)); !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("Append after a failed probe: %v, want ErrUnavailable", err)
		}
		if err := db.Exec(unblock).Error; err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, sample(9)); err != nil {
			t.Fatalf("Append after unblocking: %v", err)
		}
	})
}

// TestSpoolStateChangesReachTheDatabaseFirst: an intent record (and an
// outcome naming one) is in the table when Append returns, with every
// record spooled before it.
func TestSpoolStateChangesReachTheDatabaseFirst(t *testing.T) {
	db := migrated(t, dbtest.Open(t, dbtest.SQLite))
	l := newLogger(t, db, audit.Config{ReplicaID: "r1", SpoolDir: t.TempDir()})
	ctx := context.Background()
	appendSeq(t, l, 0, 40)
	intent := sample(40)
	intent.Result = audit.ResultIntent
	h, err := l.AppendHead(ctx, intent)
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db); n != 41 || h.Seq != 41 {
		t.Fatalf("after an intent: %d rows, intent seq %d; want 41 and 41", n, h.Seq)
	}
}
