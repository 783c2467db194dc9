package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/internal/httpapi"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// TestAuthFailuresAuditedRateLimited: failed authentications are audited
// (action kms:Authenticate, the claimed access key id, 401), but a flood of
// them writes at most the burst plus what the rate refills, not one record
// each.
func TestAuthFailuresAuditedRateLimited(t *testing.T) {
	srv := kmstest.Start(t)
	const n = 200
	start := time.Now()
	for range n {
		resp, body := send(t, srv, "GET", "/v1/keys", nil, time.Now(), func(r *http.Request) {
			r.Header.Set("X-Test", "tampered") // signed header changed: bad signature
		})
		checkError(t, resp, body, http.StatusUnauthorized, kmsapi.CodeUnauthenticated)
	}
	elapsed := time.Since(start)
	var got int
	after := ""
	srv.FlushAudit(t)
	for {
		page, err := audit.List(context.Background(), srv.App.DB, audit.ListOptions{Limit: 1000, After: after, Action: httpapi.ActionAuthenticate})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			if r.AccessKeyID != srv.AccessKeyID || r.ReasonCode != kmsapi.CodeUnauthenticated || r.Details["status"] != "401" {
				t.Fatalf("record %+v", r)
			}
		}
		got += len(page.Records)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	limit := 20 + int(elapsed.Seconds()*10) + 1
	if got == 0 || got > limit {
		t.Fatalf("%d audit records for %d failures in %s; want 1..%d", got, n, elapsed, limit)
	}
}
