package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/dbtest"
)

func anchorFile(t *testing.T) *audit.AnchorFile {
	t.Helper()
	f, err := audit.OpenAnchorFile(filepath.Join(t.TempDir(), "audit-anchors.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func fileHeads(t *testing.T, f *audit.AnchorFile) []audit.Head {
	t.Helper()
	as, err := f.Anchors()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if !audit.CheckAnchor(testKey, a) {
			t.Fatalf("anchor %+v does not verify", a)
		}
	}
	return audit.LatestHeads(as)
}

func deleteFrom(t *testing.T, db *gorm.DB, replica string, fromSeq int64) {
	t.Helper()
	if err := db.Exec("DELETE FROM kms_audit_records WHERE replica_id = ? AND seq >= ?", replica, fromSeq).Error; err != nil {
		t.Fatal(err)
	}
}

// TestAnchorDetectsTailTruncation deletes the newest records of a chain.
// Without anchors that verifies as OK (the weakness of a chain alone); with
// the anchors the Logger wrote outside the database it is reported, and a
// restarted Logger refuses to resume below its last anchor (it would reuse
// the freed seqs) unless told to. The same holds when the whole chain is
// deleted.
func TestAnchorDetectsTailTruncation(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		for _, cut := range []int64{8, 1} { // the newest records; the whole chain
			af := anchorFile(t)
			replica := "r-" + strings.Repeat("x", int(cut))
			l, err := audit.NewLogger(db, audit.Config{ReplicaID: replica, ChainKey: testKey, Anchors: af, AnchorInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			appendSeq(t, l, 0, 10)
			l.Close() // anchors the head (seq 10)
			heads := fileHeads(t, af)
			if len(heads) != 1 || heads[0].Seq != 10 || heads[0].ReplicaID != replica {
				t.Fatalf("anchors after Close: %+v", heads)
			}
			deleteFrom(t, db, replica, cut)

			if rep := verify(t, db); !rep.OK {
				t.Fatalf("cut at %d: verify without anchors: %+v (expected the undetectable case)", cut, rep)
			}
			rep := verify(t, db, heads...)
			if rep.OK || rep.FirstBroken == nil || rep.FirstBroken.Reason != audit.ReasonAnchor || rep.FirstBroken.ReplicaID != replica {
				t.Fatalf("cut at %d: verify with anchors: %+v, want anchor_mismatch", cut, rep)
			}
			_, err = audit.NewLogger(db, audit.Config{ReplicaID: replica, ChainKey: testKey, Anchors: af})
			if !errors.Is(err, audit.ErrBelowAnchor) {
				t.Fatalf("cut at %d: restart below the anchor: %v, want ErrBelowAnchor", cut, err)
			}
			l, err = audit.NewLogger(db, audit.Config{ReplicaID: replica, ChainKey: testKey, Anchors: af, AllowBelowAnchor: true})
			if err != nil {
				t.Fatalf("restart with AllowBelowAnchor: %v", err)
			}
			l.Close()
		}
	})
}

// TestAnchorBound documents and checks the bound on what can be removed
// undetected: the records written after the last anchor, no more. Records
// of an interval that was never anchored (kmsd killed before the next tick)
// can be deleted and the chain still verifies against the anchors, and the
// replica resumes; deleting one anchored record more is detected.
func TestAnchorBound(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		af := anchorFile(t)
		cfg := audit.Config{ReplicaID: "r1", ChainKey: testKey, Anchors: af, AnchorInterval: time.Hour}
		l, err := audit.NewLogger(db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		appendSeq(t, l, 0, 5)
		l.Close() // anchor at 5
		l, err = audit.NewLogger(db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		appendSeq(t, l, 5, 4) // seqs 6..9, not anchored yet (interval: 1h)
		heads := fileHeads(t, af)
		if len(heads) != 1 || heads[0].Seq != 5 {
			t.Fatalf("anchors: %+v", heads)
		}
		deleteFrom(t, db, "r1", 6) // everything after the last anchor
		if rep := verify(t, db, heads...); !rep.OK {
			t.Fatalf("records after the last anchor removed: %+v (within the documented bound)", rep)
		}
		deleteFrom(t, db, "r1", 5) // one anchored record more
		if rep := verify(t, db, heads...); rep.OK || rep.FirstBroken.Reason != audit.ReasonAnchor {
			t.Fatalf("anchored record removed: %+v, want anchor_mismatch", rep)
		}
		_, err = audit.NewLogger(db, audit.Config{ReplicaID: "r1", ChainKey: testKey, Anchors: af})
		if !errors.Is(err, audit.ErrBelowAnchor) {
			t.Fatalf("restart: %v, want ErrBelowAnchor", err)
		}
		l.Close() // the "killed" Logger; Close anchors its in-memory head only now
	})
}

// TestAnchorRewrittenRecord: a record at the anchored seq that was
// replaced (deleted and re-inserted by someone else) is refused at start.
func TestAnchorRewrittenRecord(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		migrated(t, db)
		af := anchorFile(t)
		cfg := audit.Config{ReplicaID: "r1", ChainKey: testKey, Anchors: af, AnchorInterval: time.Hour}
		l, err := audit.NewLogger(db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		appendSeq(t, l, 0, 3)
		l.Close()
		// Someone with the chain key's help rewrites the history from seq 2
		// in another process; the anchor file of this replica disagrees.
		deleteFrom(t, db, "r1", 2)
		other, err := audit.NewLogger(db, audit.Config{ReplicaID: "r1", ChainKey: testKey})
		if err != nil {
			t.Fatal(err)
		}
		appendSeq(t, other, 100, 2)
		other.Close()
		if _, err := audit.NewLogger(db, cfg); !errors.Is(err, audit.ErrBelowAnchor) {
			t.Fatalf("restart on a rewritten chain: %v, want ErrBelowAnchor", err)
		}
	})
}

// TestAnchorsWrittenPeriodically: a growing chain is anchored on the
// ticker, and the file is private.
func TestAnchorsWrittenPeriodically(t *testing.T) {
	db := migrated(t, dbtest.Open(t, dbtest.SQLite))
	af := anchorFile(t)
	l := newLogger(t, db, audit.Config{ReplicaID: "r1", Anchors: af, AnchorInterval: 20 * time.Millisecond})
	appendSeq(t, l, 0, 3)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if h := fileHeads(t, af); len(h) == 1 && h[0].Seq == 3 && h[0].Hash == l.Head().Hash {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no anchor of seq 3 after 30s: %+v", fileHeads(t, af))
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := os.Stat(af.Path())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("anchor file mode %v, %v", st.Mode().Perm(), err)
	}
}

// TestForgedAnchorRefused: an anchor whose signature does not verify under
// the chain key stops the Logger from starting.
func TestForgedAnchorRefused(t *testing.T) {
	db := migrated(t, dbtest.Open(t, dbtest.SQLite))
	af := anchorFile(t)
	other := bytes.Repeat([]byte{1}, 32)
	if err := af.Append(audit.SignAnchor(other, audit.Head{ReplicaID: "r1", Seq: 1, Hash: strings.Repeat("ab", 32)}, time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.NewLogger(db, audit.Config{ReplicaID: "r1", ChainKey: testKey, Anchors: af}); !errors.Is(err, audit.ErrBadAnchor) {
		t.Fatalf("forged anchor: %v, want ErrBadAnchor", err)
	}
	if err := os.Chmod(af.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.OpenAnchorFile(af.Path()); !errors.Is(err, audit.ErrInvalidConfig) {
		t.Fatalf("world-readable anchor file: %v", err)
	}
}

func TestReadAnchors(t *testing.T) {
	good := audit.SignAnchor(testKey, audit.Head{ReplicaID: "r1", Seq: 7, Hash: strings.Repeat("0f", 32)}, time.Unix(1_800_000_000, 0))
	for _, tc := range []struct {
		name, in string
		n        int
		ok       bool
	}{
		{"empty", "", 0, true},
		{"blank lines", "\n\n", 0, true},
		{"one", mustJSON(t, good) + "\n", 1, true},
		{"unknown field", `{"replica":"r1","seq":1,"hash":"` + strings.Repeat("a", 64) + `","x":1}`, 0, false},
		{"seq 0", `{"replica":"r1","seq":0,"hash":"` + strings.Repeat("a", 64) + `"}`, 0, false},
		{"short hash", `{"replica":"r1","seq":1,"hash":"ab"}`, 0, false},
		{"not json", "garbage", 0, false},
		{"two values", mustJSON(t, good) + mustJSON(t, good), 0, false},
	} {
		as, err := audit.ReadAnchors(strings.NewReader(tc.in))
		if (err == nil) != tc.ok || len(as) != tc.n {
			t.Errorf("%s: %d anchors, %v", tc.name, len(as), err)
		}
		if err != nil && !errors.Is(err, audit.ErrBadAnchor) {
			t.Errorf("%s: %v is not ErrBadAnchor", tc.name, err)
		}
	}
	as, _ := audit.ReadAnchors(strings.NewReader(mustJSON(t, good)))
	if len(as) != 1 || !audit.CheckAnchor(testKey, as[0]) || audit.CheckAnchor(bytes.Repeat([]byte{2}, 32), as[0]) {
		t.Fatal("signature round trip")
	}
	as[0].Seq++
	if audit.CheckAnchor(testKey, as[0]) {
		t.Fatal("moved anchor verifies")
	}
}

func FuzzReadAnchors(f *testing.F) {
	good := audit.SignAnchor(testKey, audit.Head{ReplicaID: "r1", Seq: 7, Hash: strings.Repeat("0f", 32)}, time.Unix(1_800_000_000, 0))
	b, _ := jsonMarshal(good)
	f.Add(string(b))
	f.Add("")
	f.Add("{}\n{}")
	f.Fuzz(func(t *testing.T, in string) {
		as, err := audit.ReadAnchors(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, audit.ErrBadAnchor) {
				t.Fatalf("%v is not ErrBadAnchor", err)
			}
			return
		}
		for _, a := range as {
			if a.Seq < 1 || a.ReplicaID == "" || len(a.Hash) != 64 {
				t.Fatalf("accepted incomplete anchor %+v", a)
			}
		}
		if len(audit.LatestHeads(as)) > len(as) {
			t.Fatal("more heads than anchors")
		}
	})
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
