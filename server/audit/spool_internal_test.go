package audit

import (
	"bytes"
	"testing"
	"time"
)

// spoolFrames encodes recs as the leader writes them to the spool.
func spoolFrames(recs []Record) []byte {
	s := &spool{}
	for i := range recs {
		s.appendFrame(canonical(nil, &recs[i]), recs[i].Hash)
	}
	return s.buf
}

func fuzzSeedRecords() []Record {
	h := newHasher(bytes.Repeat([]byte{1}, 32))
	recs := []Record{
		{Time: time.UnixMicro(1700000000000001).UTC(), ReplicaID: "r1", Seq: 1, AccessKeyID: "AK", Action: "kms:Encrypt",
			KeyID: "k", KeyVersion: 2, Result: ResultOK, RequestID: "q", SourceAddr: "127.0.0.1"},
		{Time: time.UnixMicro(1700000000000002).UTC(), ReplicaID: "r1", Seq: 2, Action: "kms:DisableKey", Result: ResultIntent,
			Details: map[string]string{"a": "1", "b": "2"}},
	}
	prev := ""
	for i := range recs {
		recs[i].PrevHash = prev
		recs[i].Hash, _ = h.sum(&recs[i], nil)
		prev = recs[i].Hash
	}
	return recs
}

// FuzzDecodeSpool: decoding never panics, and every frame it accepts
// encodes back to exactly the bytes it consumed (one encoding per record).
func FuzzDecodeSpool(f *testing.F) {
	good := spoolFrames(fuzzSeedRecords())
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add([]byte{0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, rest := decodeSpool(b)
		consumed := b[:len(b)-len(rest)]
		if got := spoolFrames(recs); !bytes.Equal(got, consumed) {
			t.Fatalf("re-encoding %d records gives %x, consumed %x", len(recs), got, consumed)
		}
		if _, _, err := readSpool(bytes.NewReader(b)); err != nil && err != errBadFrame {
			t.Fatalf("readSpool: %v", err)
		}
	})
}

func TestDecodeSpoolRoundTrip(t *testing.T) {
	recs := fuzzSeedRecords()
	got, rest := decodeSpool(spoolFrames(recs))
	if len(rest) != 0 || len(got) != len(recs) {
		t.Fatalf("decoded %d records, rest %d", len(got), len(rest))
	}
	h := newHasher(bytes.Repeat([]byte{1}, 32))
	for i := range got {
		if ok, _ := h.check(&got[i], nil); !ok || got[i].Seq != recs[i].Seq || got[i].Details["b"] != recs[i].Details["b"] || !got[i].Time.Equal(recs[i].Time) {
			t.Fatalf("record %d: %+v, want %+v", i, got[i], recs[i])
		}
	}
}
