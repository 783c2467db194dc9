package audit

import (
	"context"
	"fmt"
	"math"
	"sort"

	"gorm.io/gorm"
)

// Break reasons, stable strings for the API and the CLI.
const (
	ReasonMissing  = "missing_record"     // the record with this seq is gone
	ReasonSeq      = "unexpected_seq"     // a record carries an impossible seq (< 1)
	ReasonLink     = "prev_hash_mismatch" // PrevHash is not the previous record's Hash
	ReasonHash     = "hash_mismatch"      // the record was changed (its HMAC does not match)
	ReasonEncoding = "bad_encoding"       // a stored column cannot be decoded
	ReasonAnchor   = "anchor_mismatch"    // an anchored record is gone or differs
)

// Break is the first broken link found by Verify.
type Break struct {
	ReplicaID string `json:"replica"`
	Seq       int64  `json:"seq"`
	Reason    string `json:"reason"`
}

// Report is Verify's result.
type Report struct {
	OK          bool   `json:"ok"`
	Checked     int    `json:"checked"` // records verified before stopping
	FirstBroken *Break `json:"first_broken,omitempty"`
	// Heads lists the newest record of every fully verified chain; store
	// them outside the database and pass them to a later Verify as anchors.
	Heads []Head `json:"heads,omitempty"`
}

const verifyPage = 500

// Verify checks every replica's chain in db under chainKey, replica by
// replica in ReplicaID order, and stops at the first broken link: seqs must
// run 1, 2, 3, ... without gaps, each PrevHash must equal the previous Hash
// (empty for seq 1) and each Hash must be the record's HMAC. Each anchor (a
// Head saved earlier) must still be present with the same hash; without
// anchors a truncated tail cannot be detected. A non-nil error means the
// check could not run (database error, bad key), not that the chain is broken.
func Verify(ctx context.Context, db *gorm.DB, chainKey []byte, anchors ...Head) (Report, error) {
	if len(chainKey) < minChainKey {
		return Report{}, fmt.Errorf("%w: chain key must be at least %d bytes", ErrInvalidConfig, minChainKey)
	}
	h := newHasher(chainKey)
	defer h.wipe()
	return verify(ctx, db, h, anchors)
}

func verify(ctx context.Context, db *gorm.DB, h hasher, anchors []Head) (Report, error) {

	var ids []string
	if err := db.WithContext(ctx).Model(&row{}).Distinct("replica_id").Pluck("replica_id", &ids).Error; err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	anchored := map[string][]Head{}
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	for _, a := range anchors {
		if a.Seq < 1 {
			continue
		}
		anchored[a.ReplicaID] = append(anchored[a.ReplicaID], a)
		if !seen[a.ReplicaID] { // the whole chain may have been deleted
			seen[a.ReplicaID] = true
			ids = append(ids, a.ReplicaID)
		}
	}
	sort.Strings(ids)

	var rep Report
	var buf []byte
	for _, id := range ids {
		want := map[int64]string{} // anchored seq -> stored hash
		for _, a := range anchored[id] {
			want[a.Seq] = ""
		}
		expected, prev := int64(1), ""
		last := int64(math.MinInt64)
		var brk *Break
	scan:
		for {
			var rows []row
			err := db.WithContext(ctx).Where("replica_id = ? AND seq > ?", id, last).
				Order("seq").Limit(verifyPage).Find(&rows).Error
			if err != nil {
				return Report{}, fmt.Errorf("audit: verify: %w", err)
			}
			for i := range rows {
				w := &rows[i]
				last = w.Seq
				switch {
				case w.Seq > expected:
					brk = &Break{id, expected, ReasonMissing}
					break scan
				case w.Seq < expected:
					brk = &Break{id, w.Seq, ReasonSeq}
					break scan
				}
				rec, err := w.record()
				if err != nil {
					brk = &Break{id, w.Seq, ReasonEncoding}
					break scan
				}
				if rec.PrevHash != prev {
					brk = &Break{id, w.Seq, ReasonLink}
					break scan
				}
				var ok bool
				if ok, buf = h.check(&rec, buf); !ok {
					brk = &Break{id, w.Seq, ReasonHash}
					break scan
				}
				if _, a := want[w.Seq]; a {
					want[w.Seq] = rec.Hash
				}
				rep.Checked++
				prev = rec.Hash
				expected++
			}
			if len(rows) < verifyPage {
				break
			}
		}
		if brk == nil {
			for _, a := range sortedAnchors(anchored[id]) {
				if got := want[a.Seq]; got == "" || got != a.Hash {
					brk = &Break{id, a.Seq, ReasonAnchor}
					break
				}
			}
		}
		if brk != nil {
			rep.FirstBroken = brk
			return rep, nil
		}
		if expected > 1 {
			rep.Heads = append(rep.Heads, Head{ReplicaID: id, Seq: expected - 1, Hash: prev})
		}
	}
	rep.OK = true
	return rep, nil
}

func sortedAnchors(a []Head) []Head {
	out := append([]Head(nil), a...)
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}
