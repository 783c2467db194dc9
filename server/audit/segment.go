package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"gorm.io/gorm"
)

// Seal closes an exported segment of one replica's chain: the records with
// seqs FirstSeq..LastSeq, whose first record links to PrevHash and whose
// last has LastHash. Sig is an HMAC under a subkey of the chain key, so the
// database's writers can neither forge a seal nor move one. A segment file
// is the segment's records as JSON lines followed by one line holding the
// Seal ({"seal": ...}).
type Seal struct {
	ReplicaID string    `json:"replica"`
	FirstSeq  int64     `json:"first_seq"`
	LastSeq   int64     `json:"last_seq"`
	PrevHash  string    `json:"prev_hash"`
	LastHash  string    `json:"last_hash"`
	Count     int64     `json:"count"`
	Time      time.Time `json:"time"`
	Sig       string    `json:"sig"`
}

const labelSeal = "kmsgo/audit/seal-key/v1"

func sealMAC(chainKey []byte, s *Seal) []byte {
	k := subkey(chainKey, labelSeal)
	defer clear(k)
	return sealMACSub(k, s)
}

func sealMACSub(k []byte, s *Seal) []byte {
	m := hmac.New(sha256.New, k)
	var b []byte
	str := func(v string) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	str("kmsgo/audit/seal/v1")
	str(s.ReplicaID)
	b = binary.BigEndian.AppendUint64(b, uint64(s.FirstSeq))
	b = binary.BigEndian.AppendUint64(b, uint64(s.LastSeq))
	str(s.PrevHash)
	str(s.LastHash)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Count))
	b = binary.BigEndian.AppendUint64(b, uint64(s.Time.UnixMicro()))
	m.Write(b)
	return m.Sum(nil)
}

// CheckSeal reports whether s's signature verifies under chainKey.
func CheckSeal(chainKey []byte, s Seal) bool {
	k := subkey(chainKey, labelSeal)
	defer clear(k)
	return checkSealSub(k, s)
}

func checkSealSub(k []byte, s Seal) bool {
	got, err := hex.DecodeString(s.Sig)
	if err != nil || s.Count != s.LastSeq-s.FirstSeq+1 || s.FirstSeq < 1 {
		return false
	}
	return hmac.Equal(got, sealMACSub(k, &s))
}

// Segment is a verified, sealed run of one replica's records.
type Segment struct {
	Records []Record `json:"records"`
	Seal    Seal     `json:"seal"`
}

// MaxSegment bounds the records of one Export.
const MaxSegment = 10_000

// Export reads up to limit records of replica after seq afterSeq, checks
// each record's hash and link (from the stored predecessor, or from the
// sealed export that replaced it), and returns them sealed. It fails with
// ErrChainBroken if the range does not verify: a broken chain is never
// sealed. An empty range gives ErrNothingToExport.
func Export(ctx context.Context, db *gorm.DB, chainKey []byte, replica string, afterSeq int64, limit int) (Segment, error) {
	if len(chainKey) < minChainKey {
		return Segment{}, fmt.Errorf("%w: chain key must be at least %d bytes", ErrInvalidConfig, minChainKey)
	}
	h := newHasher(chainKey)
	defer h.wipe()
	sk := subkey(chainKey, labelSeal)
	defer clear(sk)
	return export(ctx, db, h, sk, replica, afterSeq, limit)
}

// export is Export under the chain's hasher and export-seal subkey.
func export(ctx context.Context, db *gorm.DB, h hasher, sealKey []byte, replica string, afterSeq int64, limit int) (Segment, error) {
	if limit <= 0 || limit > MaxSegment {
		limit = MaxSegment
	}
	if afterSeq < 0 {
		afterSeq = 0
	}
	prev := ""
	if afterSeq > 0 {
		var rows []row
		if err := db.WithContext(ctx).Where("replica_id = ? AND seq = ?", replica, afterSeq).Limit(1).Find(&rows).Error; err != nil {
			return Segment{}, err
		}
		switch {
		case len(rows) == 1:
			prev = rows[0].Hash
		default:
			base, ok, err := exportBase(ctx, db, sealKey, replica, afterSeq)
			if err != nil {
				return Segment{}, err
			}
			if !ok {
				return Segment{}, fmt.Errorf("%w: replica %s: no record or sealed export at seq %d", ErrChainBroken, replica, afterSeq)
			}
			prev = base.LastHash
		}
	}
	var rows []row
	if err := db.WithContext(ctx).Where("replica_id = ? AND seq > ?", replica, afterSeq).Order("seq").Limit(limit).Find(&rows).Error; err != nil {
		return Segment{}, err
	}
	if len(rows) == 0 {
		return Segment{}, ErrNothingToExport
	}
	seg := Segment{Records: make([]Record, 0, len(rows))}
	var buf []byte
	expected := afterSeq + 1
	firstPrev := prev
	for i := range rows {
		rec, err := rows[i].record()
		if err != nil || rec.Seq != expected || rec.PrevHash != prev {
			return Segment{}, fmt.Errorf("%w: replica %s seq %d", ErrChainBroken, replica, rows[i].Seq)
		}
		var ok bool
		if ok, buf = h.check(&rec, buf); !ok {
			return Segment{}, fmt.Errorf("%w: replica %s seq %d", ErrChainBroken, replica, rec.Seq)
		}
		seg.Records = append(seg.Records, rec)
		prev = rec.Hash
		expected++
	}
	seg.Seal = Seal{ReplicaID: replica, FirstSeq: afterSeq + 1, LastSeq: expected - 1, PrevHash: firstPrev,
		LastHash: prev, Count: int64(len(rows)), Time: time.Now().UTC().Truncate(time.Microsecond)}
	seg.Seal.Sig = hex.EncodeToString(sealMACSub(sealKey, &seg.Seal))
	return seg, nil
}

// CheckSegment verifies a segment offline: every record's hash and link
// under chainKey, and the seal over them.
func CheckSegment(chainKey []byte, seg Segment) error {
	if !CheckSeal(chainKey, seg.Seal) || int64(len(seg.Records)) != seg.Seal.Count {
		return fmt.Errorf("%w: bad seal", ErrChainBroken)
	}
	h := newHasher(chainKey)
	defer h.wipe()
	prev, expected := seg.Seal.PrevHash, seg.Seal.FirstSeq
	var buf []byte
	for i := range seg.Records {
		r := &seg.Records[i]
		var ok bool
		if ok, buf = h.check(r, buf); !ok || r.Seq != expected || r.PrevHash != prev || r.ReplicaID != seg.Seal.ReplicaID {
			return fmt.Errorf("%w: record seq %d", ErrChainBroken, r.Seq)
		}
		prev = r.Hash
		expected++
	}
	if prev != seg.Seal.LastHash {
		return fmt.Errorf("%w: last hash differs from the seal", ErrChainBroken)
	}
	return nil
}

// exportRow records a sealed export (table kms_audit_exports).
type exportRow struct {
	ReplicaID string `gorm:"column:replica_id;primaryKey;size:64;autoIncrement:false"`
	LastSeq   int64  `gorm:"column:last_seq;primaryKey;autoIncrement:false"`
	FirstSeq  int64  `gorm:"column:first_seq;not null"`
	PrevHash  string `gorm:"column:prev_hash;size:64;not null"`
	LastHash  string `gorm:"column:last_hash;size:64;not null"`
	Count     int64  `gorm:"column:count;not null"`
	TimeUS    int64  `gorm:"column:time_us;not null"`
	Sig       string `gorm:"column:sig;size:64;not null"`
	CreatedUS int64  `gorm:"column:created_us;not null"`
}

func (exportRow) TableName() string { return "kms_audit_exports" }

func (e exportRow) seal() Seal {
	return Seal{ReplicaID: e.ReplicaID, FirstSeq: e.FirstSeq, LastSeq: e.LastSeq, PrevHash: e.PrevHash,
		LastHash: e.LastHash, Count: e.Count, Time: time.UnixMicro(e.TimeUS).UTC(), Sig: e.Sig}
}

// MarkExported records that the segment s was exported (the caller stored
// it safely). Only exported records can be deleted by DeleteExported. The
// seal must verify under chainKey. Marking the same seal twice is a no-op.
func MarkExported(ctx context.Context, db *gorm.DB, chainKey []byte, s Seal) error {
	sk := subkey(chainKey, labelSeal)
	defer clear(sk)
	return markExported(ctx, db, sk, s)
}

// markExported is MarkExported under the export-seal subkey.
func markExported(ctx context.Context, db *gorm.DB, sealKey []byte, s Seal) error {
	if !checkSealSub(sealKey, s) {
		return fmt.Errorf("%w: seal does not verify", ErrBadAnchor)
	}
	r := exportRow{ReplicaID: s.ReplicaID, LastSeq: s.LastSeq, FirstSeq: s.FirstSeq, PrevHash: s.PrevHash,
		LastHash: s.LastHash, Count: s.Count, TimeUS: s.Time.UnixMicro(), Sig: s.Sig, CreatedUS: time.Now().UnixMicro()}
	var n int64
	if err := db.WithContext(ctx).Model(&exportRow{}).Where("replica_id = ? AND last_seq = ?", s.ReplicaID, s.LastSeq).Count(&n).Error; err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	return db.WithContext(ctx).Create(&r).Error
}

// exportBase returns the sealed export of replica that ends at lastSeq.
func exportBase(ctx context.Context, db *gorm.DB, sealKey []byte, replica string, lastSeq int64) (Seal, bool, error) {
	var rows []exportRow
	if err := db.WithContext(ctx).Where("replica_id = ? AND last_seq = ?", replica, lastSeq).Limit(1).Find(&rows).Error; err != nil {
		return Seal{}, false, err
	}
	if len(rows) == 0 {
		return Seal{}, false, nil
	}
	s := rows[0].seal()
	if !checkSealSub(sealKey, s) {
		return Seal{}, false, nil // a forged or edited export row covers nothing
	}
	return s, true, nil
}

// deleteBatch bounds one DELETE of DeleteExported.
const deleteBatch = 5000

// DeleteExported deletes, per replica, the records covered by exports
// that were recorded before cutoff, in batches, and returns how many it
// deleted. Each chain's newest record is always kept. The chain stays verifiable: Verify starts a replica whose
// oldest records are gone from the sealed export ending just before its
// first stored record.
func DeleteExported(ctx context.Context, db *gorm.DB, chainKey []byte, cutoff time.Time) (int64, error) {
	var exps []exportRow
	if err := db.WithContext(ctx).Where("created_us < ?", cutoff.UnixMicro()).Order("replica_id, last_seq").Find(&exps).Error; err != nil {
		return 0, err
	}
	through := map[string]int64{}
	for _, e := range exps {
		if !CheckSeal(chainKey, e.seal()) {
			return 0, fmt.Errorf("%w: export row of replica %s through seq %d does not verify", ErrChainBroken, e.ReplicaID, e.LastSeq)
		}
		through[e.ReplicaID] = max(through[e.ReplicaID], e.LastSeq)
	}
	var total int64
	for replica, last := range through {
		// Keep each chain's newest record: a restarted Logger resumes from it.
		var maxSeq *int64
		if err := db.WithContext(ctx).Model(&row{}).Where("replica_id = ?", replica).Select("MAX(seq)").Scan(&maxSeq).Error; err != nil {
			return total, err
		}
		if maxSeq == nil {
			continue
		}
		last = min(last, *maxSeq-1)
		for {
			var seqs []int64
			if err := db.WithContext(ctx).Model(&row{}).Where("replica_id = ? AND seq <= ?", replica, last).
				Order("seq").Limit(deleteBatch).Pluck("seq", &seqs).Error; err != nil {
				return total, err
			}
			if len(seqs) == 0 {
				break
			}
			res := db.WithContext(ctx).Where("replica_id = ? AND seq >= ? AND seq <= ?", replica, seqs[0], seqs[len(seqs)-1]).Delete(&row{})
			if res.Error != nil {
				return total, res.Error
			}
			total += res.RowsAffected
		}
	}
	return total, nil
}

// sealLine is the last line of a segment file.
type sealLine struct {
	Seal *Seal `json:"seal"`
}

// WriteSegment writes seg as a segment file: one JSON record per line, then
// {"seal": ...}.
func WriteSegment(w io.Writer, seg Segment) error {
	enc := json.NewEncoder(w)
	for i := range seg.Records {
		if err := enc.Encode(&seg.Records[i]); err != nil {
			return err
		}
	}
	return enc.Encode(sealLine{Seal: &seg.Seal})
}

// maxSegmentLine bounds one line of a segment file.
const maxSegmentLine = 64 << 10

// ReadSegment parses a segment file written by WriteSegment. It does not
// verify it (see CheckSegment); a malformed file is ErrBadSegment.
func ReadSegment(r io.Reader) (Segment, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxSegmentLine)
	var seg Segment
	sealed := false
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if sealed {
			return Segment{}, fmt.Errorf("%w: line %d after the seal", ErrBadSegment, n)
		}
		if bytes.HasPrefix(line, []byte(`{"seal":`)) {
			var sl sealLine
			if err := strictJSON(line, &sl); err != nil || sl.Seal == nil {
				return Segment{}, fmt.Errorf("%w: line %d: bad seal", ErrBadSegment, n)
			}
			seg.Seal, sealed = *sl.Seal, true
			continue
		}
		var rec Record
		if err := strictJSON(line, &rec); err != nil {
			return Segment{}, fmt.Errorf("%w: line %d: %v", ErrBadSegment, n, err)
		}
		if len(seg.Records) >= MaxSegment {
			return Segment{}, fmt.Errorf("%w: more than %d records", ErrBadSegment, MaxSegment)
		}
		seg.Records = append(seg.Records, rec)
	}
	if err := sc.Err(); err != nil {
		return Segment{}, fmt.Errorf("%w: %v", ErrBadSegment, err)
	}
	if !sealed {
		return Segment{}, fmt.Errorf("%w: no seal", ErrBadSegment)
	}
	return seg, nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// LastExported returns the highest seq of replica recorded as exported (0
// if none).
func LastExported(ctx context.Context, db *gorm.DB, replica string) (int64, error) {
	var last *int64
	if err := db.WithContext(ctx).Model(&exportRow{}).Where("replica_id = ?", replica).Select("MAX(last_seq)").Scan(&last).Error; err != nil {
		return 0, err
	}
	if last == nil {
		return 0, nil
	}
	return *last, nil
}
