package httpapi

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// exportAudit answers GET /v1/audit/export: a verified, sealed run of one
// replica's records (after the last exported one unless ?after= is given).
var exportAudit = op(noKey, func(rc *reqCtx, _ kms.KeyRef, _ *empty) (*kmsapi.AuditSegment, error) {
	q, err := query(rc, "replica", "after", "limit")
	if err != nil {
		return nil, err
	}
	replica := q["replica"]
	if replica == "" || len(replica) > 64 {
		return nil, validationf("replica is required (at most 64 bytes)")
	}
	after := int64(-1)
	if v := q["after"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, validationf("after must be a seq >= 0")
		}
		after = n
	}
	limit := audit.MaxSegment
	if v := q["limit"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxSegment {
			return nil, validationf("limit must be 1-%d", audit.MaxSegment)
		}
		limit = n
	}
	seg, err := rc.srv.opts.Audit.Export(rc.ctx, replica, after, limit)
	switch {
	case errors.Is(err, audit.ErrNothingToExport):
		return nil, errors.Join(ErrNotFound, errors.New("no audit records of that replica to export"))
	case errors.Is(err, audit.ErrChainBroken):
		return nil, validationf("the chain does not verify in that range (kmsctl audit verify): %v", err)
	case err != nil:
		return nil, err
	}
	out := &kmsapi.AuditSegment{Records: make([]json.RawMessage, 0, len(seg.Records))}
	for i := range seg.Records {
		b, err := json.Marshal(&seg.Records[i])
		if err != nil {
			return nil, err
		}
		out.Records = append(out.Records, b)
	}
	s := seg.Seal
	out.Seal = kmsapi.AuditSegmentSeal{Replica: s.ReplicaID, FirstSeq: s.FirstSeq, LastSeq: s.LastSeq, PrevHash: s.PrevHash,
		LastHash: s.LastHash, Count: s.Count, Time: s.Time.Format(time.RFC3339Nano), Sig: s.Sig}
	return out, nil
})

// markAuditExported answers POST /v1/audit/exports: the caller stored the
// sealed segment safely, so retention may delete its records.
var markAuditExported = op(noKey, func(rc *reqCtx, _ kms.KeyRef, in *kmsapi.AuditSegmentSeal) (*empty, error) {
	t, err := time.Parse(time.RFC3339Nano, in.Time)
	if err != nil {
		return nil, validationf("seal time must be RFC 3339")
	}
	s := audit.Seal{ReplicaID: in.Replica, FirstSeq: in.FirstSeq, LastSeq: in.LastSeq, PrevHash: in.PrevHash,
		LastHash: in.LastHash, Count: in.Count, Time: t, Sig: in.Sig}
	if err := rc.srv.opts.Audit.MarkExported(rc.ctx, s); err != nil {
		if errors.Is(err, audit.ErrBadAnchor) {
			return nil, validationf("the seal does not verify")
		}
		return nil, err
	}
	return nil, nil
})
