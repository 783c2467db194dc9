package audit

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

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
	// ResumedFrom lists the VerifyOptions.From heads that were used: the
	// records up to them were not read again.
	ResumedFrom []Head `json:"resumed_from,omitempty"`
	// OutcomeUnknown lists intent records (ResultIntent) in the verified
	// range that no outcome record names: the state change may or may not
	// have been made (its outcome write failed, or it is still in flight).
	// At most MaxOutcomeUnknown are listed, oldest first per replica;
	// OutcomeUnknownCount counts all.
	OutcomeUnknown      []Intent `json:"outcome_unknown,omitempty"`
	OutcomeUnknownCount int      `json:"outcome_unknown_count,omitempty"`
}

// Intent is an intent record whose outcome is unknown.
type Intent struct {
	ReplicaID string    `json:"replica"`
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Action    string    `json:"action"`
	KeyID     string    `json:"key_id,omitempty"`
	RequestID string    `json:"request_id"`
}

// MaxOutcomeUnknown bounds Report.OutcomeUnknown.
const MaxOutcomeUnknown = 100

const verifyPage = 500

// VerifyOptions extends Verify.
type VerifyOptions struct {
	// Anchors are heads saved earlier outside the database: each must still
	// be present with the same hash (or be covered by a sealed export).
	Anchors []Head
	// From are heads a previous Verify reported for an intact chain (kept
	// where the database cannot change them, such as the verifying
	// process's memory): a chain whose record at From's seq still has
	// From's hash is checked from the record after it only. Records before
	// that are not read again; use no From for a full check.
	From []Head
	// Progress, when set, is called after every page with the replica being
	// checked and the records checked so far in total.
	Progress func(replica string, checked int)
}

// Verify checks every replica's chain in db under chainKey, replica by
// replica in ReplicaID order, and stops at the first broken link: seqs must
// run 1, 2, 3, ... without gaps (or start right after a sealed export whose
// records were deleted by DeleteExported), each PrevHash must equal the
// previous Hash (empty for seq 1) and each Hash must be the record's HMAC.
// Each anchor (a Head saved earlier) must still be present with the same
// hash; without anchors a truncated tail cannot be detected. A non-nil error
// means the check could not run (database error, bad key), not that the
// chain is broken.
func Verify(ctx context.Context, db *gorm.DB, chainKey []byte, anchors ...Head) (Report, error) {
	return VerifyWith(ctx, db, chainKey, VerifyOptions{Anchors: anchors})
}

// VerifyWith is Verify with options.
func VerifyWith(ctx context.Context, db *gorm.DB, chainKey []byte, opts VerifyOptions) (Report, error) {
	if len(chainKey) < minChainKey {
		return Report{}, fmt.Errorf("%w: chain key must be at least %d bytes", ErrInvalidConfig, minChainKey)
	}
	h := newHasher(chainKey)
	defer h.wipe()
	sk := subkey(chainKey, labelSeal)
	defer clear(sk)
	return verify(ctx, db, h, sk, opts)
}

// verify is VerifyWith under the chain's hasher and export-seal subkey.
func verify(ctx context.Context, db *gorm.DB, h hasher, sealKey []byte, opts VerifyOptions) (Report, error) {
	var ids []string
	if err := db.WithContext(ctx).Model(&row{}).Distinct("replica_id").Pluck("replica_id", &ids).Error; err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	anchored := map[string][]Head{}
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	for _, a := range opts.Anchors {
		if a.Seq < 1 {
			continue
		}
		anchored[a.ReplicaID] = append(anchored[a.ReplicaID], a)
		if !seen[a.ReplicaID] { // the whole chain may have been deleted
			seen[a.ReplicaID] = true
			ids = append(ids, a.ReplicaID)
		}
	}
	from := map[string]Head{}
	for _, f := range opts.From {
		if f.Seq > from[f.ReplicaID].Seq {
			from[f.ReplicaID] = f
		}
	}
	sort.Strings(ids)

	var rep Report
	var buf []byte
	for _, id := range ids {
		expected, prev := int64(1), ""
		covered := int64(0) // seqs up to this are covered by a sealed export
		var minSeq *int64
		if err := db.WithContext(ctx).Model(&row{}).Where("replica_id = ?", id).Select("MIN(seq)").Scan(&minSeq).Error; err != nil {
			return Report{}, fmt.Errorf("audit: verify: %w", err)
		}
		if minSeq != nil && *minSeq > 1 {
			base, ok, err := exportBase(ctx, db, sealKey, id, *minSeq-1)
			if err != nil {
				return Report{}, fmt.Errorf("audit: verify: %w", err)
			}
			if ok {
				expected, prev, covered = *minSeq, base.LastHash, *minSeq-1
			}
		}
		if f, ok := from[id]; ok && f.Seq >= expected {
			// Resume only from a record that is still intact (its HMAC
			// verifies) and still the one verified before.
			var rows []row
			if err := db.WithContext(ctx).Where("replica_id = ? AND seq = ?", id, f.Seq).Limit(1).Find(&rows).Error; err != nil {
				return Report{}, fmt.Errorf("audit: verify: %w", err)
			}
			if len(rows) == 1 {
				rec, err := rows[0].record()
				var ok bool
				if err == nil {
					ok, buf = h.check(&rec, buf)
				}
				if ok && hmacEqualString(rec.Hash, f.Hash) {
					expected, prev = f.Seq+1, f.Hash
					rep.ResumedFrom = append(rep.ResumedFrom, f)
				}
			}
		}
		want := map[int64]string{} // anchored seq -> stored hash
		for _, a := range anchored[id] {
			switch {
			case a.Seq <= covered:
				want[a.Seq] = a.Hash // covered by a sealed export
			case a.Seq < expected:
				got, err := hashAt(ctx, db, id, a.Seq)
				if err != nil {
					return Report{}, err
				}
				want[a.Seq] = got
			default:
				want[a.Seq] = ""
			}
		}
		last := int64(math.MinInt64) // from the start: also read impossible seqs (< 1)
		if expected > 1 {
			last = expected - 1
		}
		var brk *Break
		open := map[int64]Intent{} // intents without an outcome so far
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
				if rec.Result == ResultIntent {
					open[rec.Seq] = Intent{ReplicaID: id, Seq: rec.Seq, Time: rec.Time, Action: rec.Action, KeyID: rec.KeyID, RequestID: rec.RequestID}
				} else if v, ok := rec.Details[DetailIntent]; ok {
					if n, err := strconv.ParseInt(v, 10, 64); err == nil {
						delete(open, n)
					}
				}
				rep.Checked++
				prev = rec.Hash
				expected++
			}
			if opts.Progress != nil {
				opts.Progress(id, rep.Checked)
			}
			if len(rows) < verifyPage {
				break
			}
		}
		if brk == nil && minSeq != nil && *minSeq > 1 && covered == 0 {
			brk = &Break{id, 1, ReasonMissing} // oldest records gone without a sealed export
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
		seqs := make([]int64, 0, len(open))
		for n := range open {
			seqs = append(seqs, n)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		for _, n := range seqs {
			rep.OutcomeUnknownCount++
			if len(rep.OutcomeUnknown) < MaxOutcomeUnknown {
				rep.OutcomeUnknown = append(rep.OutcomeUnknown, open[n])
			}
		}
		if expected > 1 {
			rep.Heads = append(rep.Heads, Head{ReplicaID: id, Seq: expected - 1, Hash: prev})
		}
	}
	rep.OK = true
	return rep, nil
}

// hashAt returns the stored hash of replica's record seq, "" if none.
func hashAt(ctx context.Context, db *gorm.DB, replica string, seq int64) (string, error) {
	var hs []string
	if err := db.WithContext(ctx).Model(&row{}).Where("replica_id = ? AND seq = ?", replica, seq).Limit(1).Pluck("hash", &hs).Error; err != nil {
		return "", fmt.Errorf("audit: verify: %w", err)
	}
	if len(hs) == 0 {
		return "", nil
	}
	return hs[0], nil
}

func sortedAnchors(a []Head) []Head {
	out := append([]Head(nil), a...)
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}
