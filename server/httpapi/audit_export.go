package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/kmsgo/kmsgo/server/audit"
)

// AuditSegment is the answer of GET /v1/audit/export: a verified run of
// one replica's records and its seal.
type AuditSegment struct {
	Records []AuditRecord    `json:"records"`
	Seal    AuditSegmentSeal `json:"seal"`
}

// AuditSegmentSeal closes a segment (see audit.Seal).
type AuditSegmentSeal struct {
	Replica  string `json:"replica"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	PrevHash string `json:"prev_hash"`
	LastHash string `json:"last_hash"`
	Count    int64  `json:"count"`
	Time     string `json:"time"`
	Sig      string `json:"sig"`
}

// AuditExporter is implemented by audit logs that can export sealed
// segments (AuditAdapter). after < 0 means after the last exported seq.
type AuditExporter interface {
	Export(ctx context.Context, replica string, after int64, limit int) (AuditSegment, error)
	MarkExported(ctx context.Context, seal AuditSegmentSeal) error
}

func (s *Server) exportAudit(rc *reqCtx) (int, any, error) {
	q := rc.c.Request.URL.Query()
	replica := q.Get("replica")
	if replica == "" || len(replica) > 64 {
		return 0, nil, fmt.Errorf("%w: replica is required (at most 64 bytes)", ErrValidation)
	}
	after := int64(-1)
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, nil, fmt.Errorf("%w: after must be a seq >= 0", ErrValidation)
		}
		after = n
	}
	limit := audit.MaxSegment
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxSegment {
			return 0, nil, fmt.Errorf("%w: limit must be 1-%d", ErrValidation, audit.MaxSegment)
		}
		limit = n
	}
	if err := rc.authorize(rc.action); err != nil {
		return 0, nil, err
	}
	ex, ok := s.opts.Audit.(AuditExporter)
	if !ok {
		return 0, nil, fmt.Errorf("%w: audit export", ErrNotFound)
	}
	seg, err := ex.Export(rc.ctx, replica, after, limit)
	return http.StatusOK, seg, err
}

func (s *Server) markAuditExported(rc *reqCtx) (int, any, error) {
	var seal AuditSegmentSeal
	if err := rc.decode(&seal); err != nil {
		return 0, nil, err
	}
	if err := rc.authorize(rc.action); err != nil {
		return 0, nil, err
	}
	ex, ok := s.opts.Audit.(AuditExporter)
	if !ok {
		return 0, nil, fmt.Errorf("%w: audit export", ErrNotFound)
	}
	return http.StatusNoContent, nil, ex.MarkExported(rc.ctx, seal)
}

var _ AuditExporter = (*AuditAdapter)(nil)

// Export implements AuditExporter.
func (a *AuditAdapter) Export(ctx context.Context, replica string, after int64, limit int) (AuditSegment, error) {
	if after < 0 {
		var err error
		if after, err = audit.LastExported(ctx, a.DB, replica); err != nil {
			return AuditSegment{}, err
		}
	}
	seg, err := audit.Export(ctx, a.DB, a.ChainKey, replica, after, limit)
	switch {
	case errors.Is(err, audit.ErrNothingToExport):
		return AuditSegment{}, fmt.Errorf("%w: no audit records of replica %q after seq %d", ErrNotFound, replica, after)
	case errors.Is(err, audit.ErrChainBroken):
		return AuditSegment{}, fmt.Errorf("%w: the chain does not verify in that range (kmsctl audit verify): %v", ErrValidation, err)
	case err != nil:
		return AuditSegment{}, err
	}
	out := AuditSegment{Records: make([]AuditRecord, 0, len(seg.Records))}
	for i := range seg.Records {
		b, err := json.Marshal(&seg.Records[i])
		if err != nil {
			return AuditSegment{}, err
		}
		out.Records = append(out.Records, b)
	}
	b, err := json.Marshal(seg.Seal)
	if err != nil {
		return AuditSegment{}, err
	}
	if err := json.Unmarshal(b, &out.Seal); err != nil {
		return AuditSegment{}, err
	}
	return out, nil
}

// MarkExported implements AuditExporter.
func (a *AuditAdapter) MarkExported(ctx context.Context, seal AuditSegmentSeal) error {
	b, err := json.Marshal(seal)
	if err != nil {
		return err
	}
	var s audit.Seal
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: seal: %v", ErrValidation, err)
	}
	if err := audit.MarkExported(ctx, a.DB, a.ChainKey, s); err != nil {
		if errors.Is(err, audit.ErrBadAnchor) {
			return fmt.Errorf("%w: the seal does not verify", ErrValidation)
		}
		return err
	}
	return nil
}
