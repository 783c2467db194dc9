package httpapi

import (
	"strconv"
	"strings"
	"sync"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// maxAuditAnchors bounds the anchor parameters of one verify request.
const maxAuditAnchors = 64

// parseAuditAnchors parses "replica:seq:hash" query values (GET
// /v1/audit/verify?anchor=...). The replica id may itself contain ':'; seq
// and hash are the last two fields.
func parseAuditAnchors(vals []string) ([]audit.Head, error) {
	if len(vals) > maxAuditAnchors {
		return nil, validationf("at most %d anchors", maxAuditAnchors)
	}
	out := make([]audit.Head, 0, len(vals))
	for _, v := range vals {
		i := strings.LastIndexByte(v, ':')
		if i < 0 {
			return nil, validationf("anchor must be replica:seq:hash")
		}
		rest, hash := v[:i], v[i+1:]
		j := strings.LastIndexByte(rest, ':')
		if j <= 0 || j > 64 {
			return nil, validationf("anchor must be replica:seq:hash")
		}
		seq, err := strconv.ParseInt(rest[j+1:], 10, 64)
		if err != nil || seq < 1 || len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
			return nil, validationf("anchor must be replica:seq:hash (seq >= 1, hash 64 hex digits)")
		}
		out = append(out, audit.Head{ReplicaID: rest[:j], Seq: seq, Hash: hash})
	}
	return out, nil
}

func auditHeads(hs []audit.Head) []kmsapi.AuditHead {
	out := make([]kmsapi.AuditHead, 0, len(hs))
	for _, h := range hs {
		out = append(out, kmsapi.AuditHead{Replica: h.ReplicaID, Seq: h.Seq, Hash: h.Hash})
	}
	return out
}

// verifiedHeads remembers the heads of this server's last intact
// verification, in memory where the database cannot change them, so that
// ?resume=true checks only the records written since.
type verifiedHeads struct {
	mu sync.Mutex
	hs []audit.Head
}

func (v *verifiedHeads) heads() []audit.Head {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.hs
}

func (v *verifiedHeads) set(hs []audit.Head) {
	v.mu.Lock()
	v.hs = hs
	v.mu.Unlock()
}
