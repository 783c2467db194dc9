package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/kmsd"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// TestInvalidIDsAre400AndAudited: ids that cannot be real (NUL, invalid
// UTF-8, 5,000 characters) get 400 ValidationError (they got 500 and no
// audit record), and each request is audited with the id in a sanitized
// form, on every database.
func TestInvalidIDsAre400AndAudited(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		srv := kmstest.Start(t, kmstest.WithDB(db), kmstest.WithConfig(func(c *config.Config) { c.Jobs.Enabled = false }))
		cases := []struct{ path, wantKey string }{
			{"/v1/keys/%00", "%00"},
			{"/v1/keys/%FF%FE", "%FF%FE"},
			{"/v1/keys/" + strings.Repeat("k", 5000), strings.Repeat("k", 64)},
			{"/v1/access-keys/%00x", ""},
		}
		for _, c := range cases {
			resp, body := send(t, srv, "GET", c.path, nil, time.Now(), nil)
			checkError(t, resp, body, http.StatusBadRequest, kmsapi.CodeValidation)
		}
		srv.FlushAudit(t)
		page, err := audit.List(context.Background(), db, audit.ListOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range page.Records {
			if r.ReasonCode == kmsapi.CodeValidation {
				got[r.KeyID] = true
			}
		}
		for _, c := range cases {
			if !got[c.wantKey] {
				t.Errorf("no audit record with key_id %q for %s (got %v)", c.wantKey, c.path[:min(len(c.path), 40)], got)
			}
		}
		if rep, err := audit.Verify(context.Background(), db, mustChainKey(t, srv)); err != nil || !rep.OK {
			t.Fatalf("chain after invalid ids: %+v, %v", rep, err)
		}
	})
}

func mustChainKey(t *testing.T, srv *kmstest.Server) []byte {
	t.Helper()
	k, err := kmsd.LoadOrCreateChainKey(srv.App.Config.DataDir + "/audit-chain.key")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
