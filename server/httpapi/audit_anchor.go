package httpapi

import (
	"fmt"
	"strconv"
	"strings"
)

// maxAuditAnchors bounds the anchor parameters of one verify request.
const maxAuditAnchors = 64

// parseAuditAnchors parses "replica:seq:hash" query values (GET
// /v1/audit/verify?anchor=...). The replica id may itself contain ':'; seq
// and hash are the last two fields.
func parseAuditAnchors(vals []string) ([]AuditHead, error) {
	if len(vals) > maxAuditAnchors {
		return nil, fmt.Errorf("%w: at most %d anchors", ErrValidation, maxAuditAnchors)
	}
	out := make([]AuditHead, 0, len(vals))
	for _, v := range vals {
		i := strings.LastIndexByte(v, ':')
		if i < 0 {
			return nil, fmt.Errorf("%w: anchor must be replica:seq:hash", ErrValidation)
		}
		rest, hash := v[:i], v[i+1:]
		j := strings.LastIndexByte(rest, ':')
		if j <= 0 || j > 64 {
			return nil, fmt.Errorf("%w: anchor must be replica:seq:hash", ErrValidation)
		}
		seq, err := strconv.ParseInt(rest[j+1:], 10, 64)
		if err != nil || seq < 1 || len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("%w: anchor must be replica:seq:hash (seq >= 1, hash 64 hex digits)", ErrValidation)
		}
		out = append(out, AuditHead{Replica: rest[:j], Seq: seq, Hash: hash})
	}
	return out, nil
}
