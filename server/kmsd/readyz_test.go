package kmsd_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// blockAudit makes the database reject every new audit row (as a trigger
// or a full disk would) and returns the statement that lifts it.
func blockAudit(t *testing.T, db *gorm.DB) (unblock string) {
	t.Helper()
	var add string
	switch db.Dialector.Name() {
	case "sqlite":
		add, unblock = "CREATE TRIGGER audit_block BEFORE INSERT ON kms_audit_records BEGIN SELECT RAISE(ABORT, 'blocked'); END",
			"DROP TRIGGER audit_block"
	default: // rows older than now pass, every new one fails
		add = fmt.Sprintf("ALTER TABLE kms_audit_records ADD CONSTRAINT audit_block CHECK (time_us < %d)", time.Now().UnixMicro())
		unblock = "ALTER TABLE kms_audit_records DROP CONSTRAINT audit_block"
	}
	if err := db.Exec(add).Error; err != nil {
		t.Fatal(err)
	}
	return unblock
}

func readyz(t *testing.T, srv *kmstest.Server) int {
	t.Helper()
	resp, err := srv.HTTP.Client().Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitReady(t *testing.T, srv *kmstest.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for readyz(t, srv) != want {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not become %d within 30s", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuditUnavailableIs503: while the database rejects audit inserts,
// requests answer 503 AuditUnavailable (not 500) and /readyz turns 503
// without any traffic (it proves the audit writer with a rolled-back
// insert); both recover once inserts work again.
func TestAuditUnavailableIs503(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		srv := kmstest.Start(t, kmstest.WithDB(db), kmstest.WithConfig(func(c *config.Config) { c.Jobs.Enabled = false }))
		if code, body := srv.Do(t, http.MethodGet, "/v1/keys", nil); code != http.StatusOK {
			t.Fatalf("list: %d %s", code, body)
		}
		waitReady(t, srv, http.StatusOK)
		unblock := blockAudit(t, db)
		waitReady(t, srv, http.StatusServiceUnavailable)
		code, body := srv.Do(t, http.MethodGet, "/v1/keys", nil)
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if code != http.StatusServiceUnavailable || e.Error.Code != "AuditUnavailable" {
			t.Fatalf("request while audit inserts fail: %d %s, want 503 AuditUnavailable", code, body)
		}
		if err := db.Exec(unblock).Error; err != nil {
			t.Fatal(err)
		}
		waitReady(t, srv, http.StatusOK)
		if code, body := srv.Do(t, http.MethodGet, "/v1/keys", nil); code != http.StatusOK {
			t.Fatalf("after unblocking: %d %s", code, body)
		}
	})
}
