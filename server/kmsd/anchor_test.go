package kmsd_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// TestServerAnchorsCatchTruncation: kmsd anchors its chain head in
// <data_dir>/audit-anchors.jsonl (0600); GET /v1/audit/verify checks
// against those anchors, so deleting the anchored tail is reported without
// the caller supplying anything, and a restart on the truncated database is
// refused.
func TestServerAnchorsCatchTruncation(t *testing.T) {
	dir := t.TempDir()
	srv := kmstest.Start(t, kmstest.WithDataDir(dir), kmstest.WithConfig(func(c *config.Config) {
		c.Audit.AnchorInterval = 20 * time.Millisecond
		c.Jobs.Enabled = false
	}))
	if code, body := srv.Do(t, http.MethodPost, "/v1/keys", map[string]any{}); code != http.StatusCreated {
		t.Fatalf("create key: %d %s", code, body)
	}
	path := filepath.Join(dir, "audit-anchors.jsonl")
	af, err := audit.OpenAnchorFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var head audit.Head
	deadline := time.Now().Add(30 * time.Second)
	for head.Seq < 1 {
		as, err := af.Anchors()
		if err != nil {
			t.Fatal(err)
		}
		if hs := audit.LatestHeads(as); len(hs) == 1 {
			head = hs[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("no anchor written within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("anchor file: %v %v", st, err)
	}
	var rep struct {
		OK          bool `json:"ok"`
		FirstBroken *struct {
			Reason string `json:"reason"`
		} `json:"first_broken"`
		Heads []json.RawMessage `json:"heads"`
	}
	code, body := srv.Do(t, http.MethodGet, "/v1/audit/verify", nil)
	if err := json.Unmarshal(body, &rep); err != nil || code != http.StatusOK || !rep.OK || len(rep.Heads) != 1 {
		t.Fatalf("verify: %d %s", code, body)
	}
	srv.FlushAudit(t) // the tail to cut is in the table, not on its way from the spool
	if err := srv.App.DB.Exec("DELETE FROM kms_audit_records WHERE replica_id = ? AND seq >= ?", head.ReplicaID, head.Seq).Error; err != nil {
		t.Fatal(err)
	}
	code, body = srv.Do(t, http.MethodGet, "/v1/audit/verify", nil)
	rep.FirstBroken = nil
	if err := json.Unmarshal(body, &rep); err != nil || code != http.StatusOK || rep.OK || rep.FirstBroken == nil || rep.FirstBroken.Reason != audit.ReasonAnchor {
		t.Fatalf("verify after truncation: %d %s", code, body)
	}
	code, body = srv.Do(t, http.MethodGet, "/v1/audit/verify?anchor=bad", nil)
	if code != http.StatusBadRequest {
		t.Fatalf("bad anchor parameter: %d %s", code, body)
	}
}
