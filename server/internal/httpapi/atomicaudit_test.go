package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// Issue 9 item 3: a state change and its audit record commit together or
// not at all (intent record first), and CreateKey / CreateAccessKey take an
// idempotency token so that clients can retry safely.

const adminPolicyJSON = `{"statements":[{"effect":"Allow","actions":["*"],"resources":["*"]}]}`

// blockAuditRows makes the database reject new audit rows, all of them or
// (outcomesOnly) all but intent records, and returns the statement that
// lifts it. Rows already stored pass the MariaDB/PostgreSQL check.
func blockAuditRows(t *testing.T, db *gorm.DB, outcomesOnly bool) (unblock string) {
	t.Helper()
	var add string
	switch db.Dialector.Name() {
	case "sqlite":
		when := ""
		if outcomesOnly {
			when = " WHEN NEW.result <> 'intent'"
		}
		add = "CREATE TRIGGER audit_block BEFORE INSERT ON kms_audit_records" + when + " BEGIN SELECT RAISE(ABORT, 'blocked'); END"
		unblock = "DROP TRIGGER audit_block"
	default:
		cond := fmt.Sprintf("time_us < %d", time.Now().UnixMicro())
		if outcomesOnly {
			cond += " OR result = 'intent'"
		}
		add = "ALTER TABLE kms_audit_records ADD CONSTRAINT audit_block CHECK (" + cond + ")"
		unblock = "ALTER TABLE kms_audit_records DROP CONSTRAINT audit_block"
	}
	if err := db.Exec(add).Error; err != nil {
		t.Fatal(err)
	}
	return unblock
}

func countRows(t *testing.T, db *gorm.DB, table, where string, args ...any) int64 {
	t.Helper()
	var n int64
	q := db.Table(table)
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func errCode(body []byte) string {
	var e apiErr
	_ = json.Unmarshal(body, &e)
	return e.Error.Code
}

func startNoJobs(t *testing.T, db *gorm.DB) *kmstest.Server {
	return kmstest.Start(t, kmstest.WithDB(db), kmstest.WithConfig(func(c *config.Config) { c.Jobs.Enabled = false }))
}

// TestStateChangeWithoutAuditChangesNothing: while audit inserts fail,
// CreateKey, DisableKey and CreateAccessKey answer 503 AuditUnavailable
// and the database is unchanged (they answered an error but were saved,
// unaudited, before).
func TestStateChangeWithoutAuditChangesNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		srv := startNoJobs(t, db)
		id := createKey(t, srv, nil)
		keys, aks := countRows(t, db, "kms_keys", ""), countRows(t, db, "kms_access_keys", "")
		unblock := blockAuditRows(t, db, false)
		for _, c := range []struct {
			name, path string
			body       any
		}{
			{"CreateKey", "/v1/keys", map[string]any{"alias": "alias/unaudited", "idempotency_token": "blocked-1"}},
			{"CreateKey/HSM", "/v1/keys", map[string]any{"protection_level": "HSM"}},
			{"DisableKey", "/v1/keys/" + id + "/disable", nil},
			{"CreateAccessKey", "/v1/access-keys", map[string]any{"policy": json.RawMessage(adminPolicyJSON), "idempotency_token": "blocked-2"}},
		} {
			code, body := srv.Do(t, http.MethodPost, c.path, c.body)
			if code != http.StatusServiceUnavailable || errCode(body) != kmsapi.CodeAuditUnavailable {
				t.Errorf("%s with audit blocked: %d %s, want 503 AuditUnavailable", c.name, code, body)
			}
		}
		if n := countRows(t, db, "kms_keys", ""); n != keys {
			t.Errorf("kms_keys: %d rows, want %d (a key was created without its audit record)", n, keys)
		}
		if n := countRows(t, db, "kms_access_keys", ""); n != aks {
			t.Errorf("kms_access_keys: %d rows, want %d", n, aks)
		}
		if n := countRows(t, db, "kms_aliases", "name = ?", "alias/unaudited"); n != 0 {
			t.Errorf("alias created without audit")
		}
		for _, tbl := range []string{"kms_key_idempotency", "kms_access_key_idempotency", "kms_hsm_intents"} {
			if n := countRows(t, db, tbl, ""); n != 0 {
				t.Errorf("%s: %d rows, want 0", tbl, n)
			}
		}
		k, err := store.New(db).GetKey(context.Background(), id)
		if err != nil || k.State != store.KeyState(kmsapi.KeyStateEnabled) {
			t.Errorf("key after blocked disable: %v %v, want Enabled", k.State, err)
		}
		if err := db.Exec(unblock).Error; err != nil {
			t.Fatal(err)
		}
		// The retry succeeds once audit works, and the chain is intact.
		code, body := srv.Do(t, http.MethodPost, "/v1/keys", map[string]any{"alias": "alias/unaudited", "idempotency_token": "blocked-1"})
		if code != http.StatusCreated {
			t.Fatalf("retry after unblock: %d %s", code, body)
		}
		var v kmsapi.AuditVerifyResult
		call(t, srv, "GET", "/v1/audit/verify", nil, 200, &v)
		if !v.OK {
			t.Fatalf("verify: %+v", v)
		}
	})
}

// TestStateChangeIntentThenOutcome: each state change has an intent record
// before its outcome record, which names it; the chain verifies with no
// outcome unknown. When only the outcome cannot be written, the change
// (already made) answers 503 and verify reports the intent as "outcome
// unknown".
func TestStateChangeIntentThenOutcome(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		srv := startNoJobs(t, db)
		var md kmsapi.KeyMetadata
		call(t, srv, "POST", "/v1/keys", map[string]any{"alias": "alias/intent", "idempotency_token": "intent-1", "tags": map[string]string{"team": "secret-team"}}, 201, &md)
		call(t, srv, "POST", "/v1/keys/"+md.KeyID+"/disable", nil, 200, nil)
		var ak kmsapi.AccessKey
		call(t, srv, "POST", "/v1/access-keys", map[string]any{"policy": json.RawMessage(adminPolicyJSON), "description": "intent test"}, 201, &ak)

		srv.FlushAudit(t)
		page, err := audit.List(context.Background(), db, audit.ListOptions{Limit: audit.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct{ action, key string }{
			{"kms:CreateKey", md.KeyID}, {"kms:DisableKey", md.KeyID}, {"kms:CreateAccessKey", ""},
		} {
			var intents, outcomes []audit.Record
			for _, r := range page.Records {
				if r.Action != w.action {
					continue
				}
				if r.Result == audit.ResultIntent {
					intents = append(intents, r)
				} else {
					outcomes = append(outcomes, r)
				}
			}
			if len(intents) != 1 || len(outcomes) != 1 {
				t.Fatalf("%s: %d intents, %d outcomes, want 1 and 1", w.action, len(intents), len(outcomes))
			}
			in, out := intents[0], outcomes[0]
			if out.Result != audit.ResultOK || out.RequestID != in.RequestID || out.ReplicaID != in.ReplicaID ||
				out.Seq <= in.Seq || out.Details[audit.DetailIntent] != strconv.FormatInt(in.Seq, 10) {
				t.Errorf("%s: outcome %+v does not follow and name intent %+v", w.action, out, in)
			}
			if w.key != "" && out.KeyID != w.key {
				t.Errorf("%s: outcome key %q, want %q", w.action, out.KeyID, w.key)
			}
			if w.action == "kms:CreateKey" && (in.Details["idempotency_token"] != "intent-1" || in.Details["alias"] != "alias/intent" || in.Details["tags"] != "1") {
				t.Errorf("CreateKey intent details %v", in.Details)
			}
			if w.action == "kms:CreateAccessKey" && len(in.Details["policy_sha256"]) != 64 {
				t.Errorf("CreateAccessKey intent details %v", in.Details)
			}
		}
		raw, _ := json.Marshal(page.Records)
		if strings.Contains(string(raw), "secret-team") || strings.Contains(string(raw), ak.SecretAccessKey) {
			t.Fatal("audit records hold a tag value or a secret")
		}
		var v kmsapi.AuditVerifyResult
		call(t, srv, "GET", "/v1/audit/verify", nil, 200, &v)
		if !v.OK || v.OutcomeUnknownCount != 0 || len(v.OutcomeUnknown) != 0 {
			t.Fatalf("verify with every outcome written: %+v", v)
		}

		// The intent is durable, the change is made, the outcome fails.
		other := createKey(t, srv, nil)
		unblock := blockAuditRows(t, db, true)
		code, body := srv.Do(t, http.MethodPost, "/v1/keys/"+other+"/disable", nil)
		if code != http.StatusServiceUnavailable || errCode(body) != kmsapi.CodeAuditUnavailable {
			t.Fatalf("disable with outcomes blocked: %d %s", code, body)
		}
		if err := db.Exec(unblock).Error; err != nil {
			t.Fatal(err)
		}
		call(t, srv, "GET", "/v1/audit/verify", nil, 200, &v)
		if !v.OK || v.OutcomeUnknownCount != 1 || len(v.OutcomeUnknown) != 1 {
			t.Fatalf("verify after a lost outcome: %+v", v)
		}
		if u := v.OutcomeUnknown[0]; u.Action != "kms:DisableKey" || u.KeyID != other || u.RequestID == "" {
			t.Fatalf("outcome unknown: %+v", u)
		}
		// A retry (disable is idempotent) completes with its own records.
		call(t, srv, "POST", "/v1/keys/"+other+"/disable", nil, 200, nil)
		call(t, srv, "GET", "/v1/audit/verify", nil, 200, &v)
		if !v.OK || v.OutcomeUnknownCount != 1 {
			t.Fatalf("verify after the retry: %+v", v)
		}
	})
}

// signedPost sends a signed JSON POST as (ak, sk); safe to call from any
// goroutine (errors are returned, not fatal).
func signedPost(srv *kmstest.Server, ak, sk, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := srv.Sign(req, ak, sk, body, time.Now()); err != nil {
		return 0, nil, err
	}
	resp, err := srv.HTTP.Client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// concurrently sends n identical POSTs and returns the answers.
func concurrently(t *testing.T, srv *kmstest.Server, n int, path string, body []byte) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			code, b, err := signedPost(srv, srv.AccessKeyID, srv.SecretAccessKey, path, body)
			if err == nil && code != http.StatusCreated {
				err = fmt.Errorf("status %d: %s", code, b)
			}
			out[i], errs[i] = b, err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent request %d: %v", i, err)
		}
	}
	return out
}

func TestCreateKeyIdempotencyToken(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		srv := startNoJobs(t, db)
		body := map[string]any{"description": "idem", "alias": "alias/idem", "tags": map[string]string{"a": "1"}, "idempotency_token": "tok-1"}
		var first, again kmsapi.KeyMetadata
		call(t, srv, "POST", "/v1/keys", body, 201, &first)
		call(t, srv, "POST", "/v1/keys", body, 201, &again)
		if again.KeyID != first.KeyID || again.Description != "idem" || len(again.Aliases) != 1 {
			t.Fatalf("retry answered %+v, want key %s", again, first.KeyID)
		}
		if n := countRows(t, db, "kms_keys", "description = ?", "idem"); n != 1 {
			t.Fatalf("%d keys after a retry, want 1", n)
		}
		for _, c := range []struct {
			name string
			body map[string]any
			code int
			err  string
		}{
			{"other description", map[string]any{"description": "changed", "alias": "alias/idem", "tags": map[string]string{"a": "1"}, "idempotency_token": "tok-1"}, 409, kmsapi.CodeIdempotencyMismatch},
			{"other tags", map[string]any{"description": "idem", "alias": "alias/idem", "idempotency_token": "tok-1"}, 409, kmsapi.CodeIdempotencyMismatch},
			{"too long", map[string]any{"idempotency_token": strings.Repeat("a", 65)}, 400, kmsapi.CodeValidation},
			{"bad character", map[string]any{"idempotency_token": "a b"}, 400, kmsapi.CodeValidation},
		} {
			code, b := srv.Do(t, "POST", "/v1/keys", c.body)
			if code != c.code || errCode(b) != c.err {
				t.Errorf("%s: %d %s, want %d %s", c.name, code, b, c.code, c.err)
			}
		}
		// Tokens are per caller: another access key's same token is its own.
		otherID, otherSK := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:CreateKey"],"resources":["*"]}]}`)
		code, b := srv.DoAs(t, otherID, otherSK, "POST", "/v1/keys", map[string]any{"description": "idem", "idempotency_token": "tok-1"})
		var mine kmsapi.KeyMetadata
		_ = json.Unmarshal(b, &mine)
		if code != 201 || mine.KeyID == "" || mine.KeyID == first.KeyID {
			t.Fatalf("other caller's token: %d %s", code, b)
		}
		// Concurrent duplicates create one key (HSM keys: the losers'
		// token objects are destroyed again).
		raw, _ := json.Marshal(map[string]any{"description": "conc", "protection_level": "HSM", "idempotency_token": "tok-conc"})
		ids := map[string]bool{}
		for _, b := range concurrently(t, srv, 8, "/v1/keys", raw) {
			var m kmsapi.KeyMetadata
			if err := json.Unmarshal(b, &m); err != nil || m.KeyID == "" {
				t.Fatalf("answer %s", b)
			}
			ids[m.KeyID] = true
		}
		if len(ids) != 1 {
			t.Fatalf("8 concurrent requests with one token answered %d keys", len(ids))
		}
		if n := countRows(t, db, "kms_keys", "description = ?", "conc"); n != 1 {
			t.Fatalf("%d keys stored, want 1", n)
		}
		if n := countRows(t, db, "kms_key_idempotency", "token = ?", "tok-conc"); n != 1 {
			t.Fatalf("%d idempotency rows, want 1", n)
		}
		if n := countRows(t, db, "kms_hsm_intents", ""); n != 0 {
			t.Fatalf("%d HSM object intents left by the losers, want 0", n)
		}
	})
}

func TestCreateAccessKeyIdempotencyToken(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		srv := startNoJobs(t, db)
		before := countRows(t, db, "kms_access_keys", "")
		body := map[string]any{"description": "idem ak", "policy": json.RawMessage(adminPolicyJSON), "idempotency_token": "ak-1"}
		var first, again kmsapi.AccessKey
		call(t, srv, "POST", "/v1/access-keys", body, 201, &first)
		call(t, srv, "POST", "/v1/access-keys", body, 201, &again)
		if first.SecretAccessKey == "" || first.IdempotentReplay {
			t.Fatalf("first answer %+v", first)
		}
		if again.AccessKeyID != first.AccessKeyID || again.SecretAccessKey != "" || !again.IdempotentReplay {
			t.Fatalf("replay answered %+v, want %s without secret, replay flag set", again, first.AccessKeyID)
		}
		if code, b := srv.DoAs(t, first.AccessKeyID, first.SecretAccessKey, "GET", "/v1/keys", nil); code != 200 {
			t.Fatalf("the first secret does not work: %d %s", code, b)
		}
		code, b := srv.Do(t, "POST", "/v1/access-keys", map[string]any{"description": "other", "policy": json.RawMessage(adminPolicyJSON), "idempotency_token": "ak-1"})
		if code != 409 || errCode(b) != kmsapi.CodeIdempotencyMismatch {
			t.Fatalf("mismatch: %d %s", code, b)
		}
		code, b = srv.Do(t, "POST", "/v1/access-keys", map[string]any{"policy": json.RawMessage(adminPolicyJSON), "idempotency_token": "no/slash"})
		if code != 400 || errCode(b) != kmsapi.CodeValidation {
			t.Fatalf("bad token: %d %s", code, b)
		}
		raw, _ := json.Marshal(map[string]any{"description": "conc ak", "policy": json.RawMessage(adminPolicyJSON), "idempotency_token": "ak-conc"})
		ids, secrets := map[string]bool{}, 0
		for _, b := range concurrently(t, srv, 8, "/v1/access-keys", raw) {
			var k kmsapi.AccessKey
			if err := json.Unmarshal(b, &k); err != nil || k.AccessKeyID == "" {
				t.Fatalf("answer %s", b)
			}
			ids[k.AccessKeyID] = true
			if k.SecretAccessKey != "" {
				secrets++
			}
		}
		if len(ids) != 1 || secrets != 1 {
			t.Fatalf("8 concurrent requests: %d access keys, %d secrets shown; want 1 and 1", len(ids), secrets)
		}
		if n := countRows(t, db, "kms_access_keys", ""); n != before+2 {
			t.Fatalf("%d access keys, want %d", n, before+2)
		}
	})
}
