package httpapi_test

import (
	"encoding/json"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/httpapi"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

func auditRecords(t *testing.T, srv *kmstest.Server) []map[string]any {
	t.Helper()
	var all []map[string]any
	after := ""
	for {
		var page struct {
			Records []map[string]any `json:"records"`
			Next    string           `json:"next"`
		}
		call(t, srv, "GET", "/v1/audit?limit=1000&after="+after, nil, 200, &page)
		all = append(all, page.Records...)
		if page.Next == "" {
			return all
		}
		after = page.Next
	}
}

func TestEveryAuthenticatedRequestIsAudited(t *testing.T) {
	srv := kmstest.Start(t)
	id := createKey(t, srv, map[string]any{"alias": "alias/audited"})
	blob := encrypt(t, srv, id, []byte("top secret"), nil)
	limitedID, limitedSecret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:Encrypt"],"resources":["*"]}]}`)
	if st, _ := srv.DoAs(t, limitedID, limitedSecret, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": blob}); st != http.StatusForbidden {
		t.Fatalf("limited decrypt: %d", st)
	}
	if st, _ := srv.Do(t, "POST", "/v1/encrypt", `{"key_id":1}`); st != http.StatusBadRequest {
		t.Fatalf("bad request: %d", st)
	}
	// A forged X-Forwarded-For is not believed (no trusted proxies).
	resp, body := send(t, srv, "POST", "/v1/keys/"+id+"/disable", nil, time.Now(), func(r *http.Request) {
		r.Header.Set("X-Forwarded-For", "6.6.6.6")
	})
	if resp.StatusCode != 200 {
		t.Fatalf("disable: %d %s", resp.StatusCode, body)
	}

	recs := auditRecords(t, srv)
	type want struct{ action, ak, key, result, reason string }
	// State changes write an intent record before the change (its key
	// id is not known yet for CreateKey), then the outcome.
	wants := []want{
		{"kms:CreateKey", srv.AccessKeyID, "", "intent", ""},
		{"kms:CreateKey", srv.AccessKeyID, id, "ok", ""},
		{"kms:Encrypt", srv.AccessKeyID, id, "ok", ""},
		{"kms:Decrypt", limitedID, id, "error", kmsapi.CodeAccessDenied},
		{"kms:Encrypt", srv.AccessKeyID, "", "error", kmsapi.CodeValidation},
		{"kms:DisableKey", srv.AccessKeyID, id, "intent", ""},
		{"kms:DisableKey", srv.AccessKeyID, id, "ok", ""},
	}
	if len(recs) != len(wants) {
		t.Fatalf("got %d records, want %d: %v", len(recs), len(wants), recs)
	}
	for i, w := range wants {
		r := recs[i]
		if r["action"] != w.action || r["access_key_id"] != w.ak || r["key_id"] != w.key || r["result"] != w.result || r["reason_code"] != w.reason {
			t.Errorf("record %d = %v, want %+v", i, r, w)
		}
		if r["request_id"] == "" {
			t.Errorf("record %d has no request id", i)
		}
	}
	for _, r := range recs {
		if r["source_addr"] != "127.0.0.1" {
			t.Fatalf("source_addr %v", r["source_addr"])
		}
	}
	raw, _ := json.Marshal(recs)
	if strings.Contains(string(raw), "top secret") || strings.Contains(string(raw), srv.SecretAccessKey) {
		t.Fatal("audit log holds plaintext or a secret")
	}
}

func TestAuditFailureFailsTheRequest(t *testing.T) {
	srv := kmstest.Start(t)
	id := createKey(t, srv, nil)
	if err := srv.App.Audit.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body := send(t, srv, "POST", "/v1/encrypt", []byte(`{"key_id":"`+id+`","plaintext":"c2VjcmV0"}`), time.Now(), nil)
	checkError(t, resp, body, http.StatusServiceUnavailable, kmsapi.CodeAuditUnavailable)
	if strings.Contains(string(body), "ciphertext_blob") {
		t.Fatal("result released without an audit record")
	}
	resp, body = send(t, srv, "POST", "/v1/random", []byte(`{"number_of_bytes":8}`), time.Now(), nil)
	checkError(t, resp, body, http.StatusServiceUnavailable, kmsapi.CodeAuditUnavailable)
}

func TestRequestIDsAndHealth(t *testing.T) {
	srv := kmstest.Start(t)
	seen := map[string]bool{}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/nope", "/v1/keys"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		id := resp.Header.Get(httpapi.HeaderRequestID)
		if len(id) != 32 || seen[id] {
			t.Fatalf("%s: request id %q", p, id)
		}
		seen[id] = true
	}
	// readyz fails when the database is gone; healthz does not.
	sqlDB, err := srv.App.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.Close()
	for p, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", p, resp.StatusCode, want)
		}
	}
}

func TestMetrics(t *testing.T) {
	srv := kmstest.Start(t)
	id := createKey(t, srv, nil)
	encrypt(t, srv, id, []byte("x"), nil)
	srv.Do(t, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": []byte("junk")})
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	text := string(b)
	for _, want := range []string{
		`kms_http_requests_total{method="POST",route="/v1/encrypt",status="200"} 1`,
		`kms_http_requests_total{method="POST",route="/v1/decrypt",status="400"} 1`,
		`kms_crypto_operations_total{key_id="` + id + `",operation="Encrypt",result="ok"} 1`,
		`kms_crypto_operations_total{key_id="unknown",operation="Decrypt",result="InvalidCiphertext"} 1`,
		`kms_http_request_duration_seconds_bucket{method="POST",route="/v1/encrypt"`,
		`kms_hsm_pool_size`, `kms_hsm_available 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestPolicies(t *testing.T) {
	srv := kmstest.Start(t)
	orders := createKey(t, srv, map[string]any{"alias": "alias/orders-eu"})
	other := createKey(t, srv, map[string]any{"alias": "alias/users"})
	ordersBlob := encrypt(t, srv, orders, []byte("o"), nil)
	otherBlob := encrypt(t, srv, other, []byte("u"), nil)
	policy := `{"statements":[
	  {"effect":"Allow","actions":["kms:Decrypt","kms:GenerateDataKey*","kms:Encrypt"],"resources":["alias/orders-*","key/` + other + `"]},
	  {"effect":"Deny","actions":["kms:Encrypt"],"resources":["key/` + other + `"]}]}`
	ak, sk := srv.CreateAccessKey(t, policy)
	cases := []struct {
		name, path string
		body       any
		want       int
	}{
		{"decrypt via alias pattern (key found in ciphertext)", "/v1/decrypt", map[string]any{"ciphertext_blob": ordersBlob}, 200},
		{"decrypt by key id", "/v1/decrypt", map[string]any{"ciphertext_blob": otherBlob}, 200},
		{"data key wildcard action", "/v1/generate-data-key-without-plaintext", map[string]any{"key_id": orders}, 200},
		{"explicit deny wins", "/v1/encrypt", map[string]any{"key_id": other, "plaintext": []byte("x")}, 403},
		{"allowed encrypt", "/v1/encrypt", map[string]any{"key_id": "alias/orders-eu", "plaintext": []byte("x")}, 200},
		{"deny by default", "/v1/random", map[string]any{"number_of_bytes": 4}, 403},
		{"no management", "/v1/keys/" + orders + "/disable", nil, 403},
		{"no access keys", "/v1/access-keys", map[string]any{"policy": map[string]any{}}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body := srv.DoAs(t, ak, sk, "POST", tc.path, tc.body)
			if st != tc.want {
				t.Fatalf("%d %s, want %d", st, body, tc.want)
			}
		})
	}
	var md kmsapi.KeyMetadata
	call(t, srv, "GET", "/v1/keys/"+orders, nil, 200, &md)
	if md.KeyState != "Enabled" {
		t.Fatal("denied request changed the key")
	}
}

// TestRejectedWritesLeaveNothing checks that refused key creations and
// alias changes leave no key or alias behind.
func TestRejectedWritesLeaveNothing(t *testing.T) {
	srv := kmstest.Start(t)
	id := createKey(t, srv, map[string]any{"alias": "alias/taken"})
	limited, secret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:CreateKey"],"resources":["*"]}]}`)
	count := func() int {
		var r kmsapi.ListKeysResponse
		call(t, srv, "GET", "/v1/keys", nil, 200, &r)
		return len(r.Keys)
	}
	before := count()
	cases := []struct {
		name string
		ak   [2]string
		body string
		want int
	}{
		{"taken alias", [2]string{srv.AccessKeyID, srv.SecretAccessKey}, `{"alias":"alias/taken"}`, 409},
		{"invalid alias", [2]string{srv.AccessKeyID, srv.SecretAccessKey}, `{"alias":"no-prefix"}`, 400},
		{"bad spec", [2]string{srv.AccessKeyID, srv.SecretAccessKey}, `{"key_spec":"RSA_4096"}`, 400},
		{"bad protection", [2]string{srv.AccessKeyID, srv.SecretAccessKey}, `{"protection_level":"QUANTUM"}`, 400},
		{"alias without kms:CreateAlias", [2]string{limited, secret}, `{"alias":"alias/sneaky"}`, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if st, body := srv.DoAs(t, tc.ak[0], tc.ak[1], "POST", "/v1/keys", []byte(tc.body)); st != tc.want {
				t.Fatalf("%d %s, want %d", st, body, tc.want)
			}
		})
	}
	if after := count(); after != before {
		t.Fatalf("rejected creations left keys: %d -> %d", before, after)
	}
	if st, _ := srv.Do(t, "GET", "/v1/aliases/sneaky", nil); st != 404 {
		t.Fatalf("alias/sneaky exists: %d", st)
	}
	// A refused alias move leaves the alias where it was.
	other := createKey(t, srv, nil)
	mover, msecret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:UpdateAlias"],"resources":["key/`+other+`"]}]}`)
	if st, _ := srv.DoAs(t, mover, msecret, "PUT", "/v1/aliases/taken", map[string]any{"key_id": other}); st != 403 {
		t.Fatalf("alias move without permission on the current key: %d", st)
	}
	var al kmsapi.Alias
	call(t, srv, "GET", "/v1/aliases/taken", nil, 200, &al)
	if al.KeyID != id {
		t.Fatalf("alias moved to %s", al.KeyID)
	}
}
