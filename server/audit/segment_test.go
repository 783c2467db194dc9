package audit_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/dbtest"
)

// TestExportRetention exports two sealed segments, marks them exported,
// lets retention delete them, and checks that the chain still verifies
// across the boundary (with its anchors, including one inside the deleted
// range), that the Logger resumes, that the next export continues from the
// sealed boundary, and that a forged export row or a deleted unexported
// record is still reported.
func TestExportRetention(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		migrated(t, db)
		af := anchorFile(t)
		cfg := audit.Config{ReplicaID: "r1", ChainKey: testKey, Anchors: af, AnchorInterval: time.Hour}
		l, err := audit.NewLogger(db, cfg)
		if err != nil {
			t.Fatal(err)
		}
		appendSeq(t, l, 0, 25)
		l.Close()
		heads := fileHeads(t, af)

		if n, err := audit.DeleteExported(ctx, db, testKey, time.Now().Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("retention before any export: %d, %v", n, err)
		}
		var anchor5 audit.Head
		for after := int64(0); after < 20; after += 10 {
			seg, err := audit.Export(ctx, db, testKey, "r1", after, 10)
			if err != nil || len(seg.Records) != 10 || seg.Seal.FirstSeq != after+1 || seg.Seal.LastSeq != after+10 {
				t.Fatalf("export after %d: %+v, %v", after, seg.Seal, err)
			}
			var buf bytes.Buffer
			if err := audit.WriteSegment(&buf, seg); err != nil {
				t.Fatal(err)
			}
			back, err := audit.ReadSegment(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if err := audit.CheckSegment(testKey, back); err != nil {
				t.Fatalf("segment file does not verify: %v", err)
			}
			if after == 0 {
				anchor5 = audit.Head{ReplicaID: "r1", Seq: 5, Hash: back.Records[4].Hash}
				bad := back
				bad.Records = append([]audit.Record(nil), back.Records...)
				bad.Records[3].Action = "kms:Forged"
				if err := audit.CheckSegment(testKey, bad); !errors.Is(err, audit.ErrChainBroken) {
					t.Fatalf("edited segment: %v", err)
				}
			}
			if err := audit.MarkExported(ctx, db, testKey, back.Seal); err != nil {
				t.Fatal(err)
			}
		}
		n, err := audit.DeleteExported(ctx, db, testKey, time.Now().Add(time.Hour))
		if err != nil || n != 20 {
			t.Fatalf("retention: deleted %d, %v; want 20", n, err)
		}
		rep := verify(t, db, append(heads, anchor5)...)
		if !rep.OK || rep.Checked != 5 || len(rep.Heads) != 1 || rep.Heads[0].Seq != 25 {
			t.Fatalf("verify across the retention boundary: %+v", rep)
		}
		l, err = audit.NewLogger(db, cfg)
		if err != nil {
			t.Fatalf("restart after retention: %v", err)
		}
		appendSeq(t, l, 25, 2)
		l.Close()
		seg, err := audit.Export(ctx, db, testKey, "r1", 20, 0)
		if err != nil || seg.Seal.FirstSeq != 21 || seg.Seal.LastSeq != 27 || audit.CheckSegment(testKey, seg) != nil {
			t.Fatalf("export from the sealed boundary: %+v, %v", seg.Seal, err)
		}

		// A forged export row covers nothing.
		if err := db.Exec("UPDATE kms_audit_exports SET last_hash = ? WHERE last_seq = 20", strings.Repeat("0", 64)).Error; err != nil {
			t.Fatal(err)
		}
		if rep := verify(t, db); rep.OK || rep.FirstBroken.Seq != 1 || rep.FirstBroken.Reason != audit.ReasonMissing {
			t.Fatalf("verify with a forged export row: %+v", rep)
		}
	})
}

// TestVerifyResumes: a verification that starts from the heads of the last
// one reads only the new records, reports progress, and still catches a
// rewritten head (then it verifies from the start).
func TestVerifyResumes(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		migrated(t, db)
		l := newLogger(t, db, audit.Config{ReplicaID: "r1"})
		appendSeq(t, l, 0, 1200)
		full := verify(t, db)
		if !full.OK || full.Checked != 1200 {
			t.Fatalf("full: %+v", full)
		}
		appendSeq(t, l, 1200, 7)
		var calls int
		rep, err := audit.VerifyWith(ctx, db, testKey, audit.VerifyOptions{From: full.Heads, Progress: func(r string, n int) {
			if r != "r1" || n < 0 {
				t.Errorf("progress %s %d", r, n)
			}
			calls++
		}})
		if err != nil || !rep.OK || rep.Checked != 7 || len(rep.ResumedFrom) != 1 || calls == 0 {
			t.Fatalf("resumed: %+v, %v (progress calls %d)", rep, err, calls)
		}
		// The resumed-from record was rewritten: no resume, the full check finds it.
		if err := db.Exec("UPDATE kms_audit_records SET action = 'kms:Forged' WHERE replica_id = 'r1' AND seq = 1200").Error; err != nil {
			t.Fatal(err)
		}
		rep, err = audit.VerifyWith(ctx, db, testKey, audit.VerifyOptions{From: full.Heads})
		if err != nil || rep.OK || len(rep.ResumedFrom) != 0 || rep.FirstBroken.Seq != 1200 || rep.FirstBroken.Reason != audit.ReasonHash {
			t.Fatalf("resume over a rewritten head: %+v, %v", rep, err)
		}
	})
}

func FuzzReadSegment(f *testing.F) {
	seg := audit.Segment{Records: []audit.Record{{ReplicaID: "r1", Seq: 1, Action: "kms:Encrypt", Result: "ok", Hash: strings.Repeat("a", 64)}},
		Seal: audit.Seal{ReplicaID: "r1", FirstSeq: 1, LastSeq: 1, Count: 1}}
	var buf bytes.Buffer
	_ = audit.WriteSegment(&buf, seg)
	f.Add(buf.String())
	f.Add(`{"seal":null}`)
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		seg, err := audit.ReadSegment(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, audit.ErrBadSegment) {
				t.Fatalf("%v is not ErrBadSegment", err)
			}
			return
		}
		if audit.CheckSegment(testKey, seg) == nil && seg.Seal.Sig == "" {
			t.Fatal("unsigned segment verified")
		}
	})
}
