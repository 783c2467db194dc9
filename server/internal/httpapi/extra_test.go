package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/internal/httpapi"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
	"github.com/kmsgo/kmsgo/server/kmsd"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// TestAliasInKeyPath: /v1/keys/:id takes an alias (escaped) in one request:
// one audit record, naming the key, and the policy sees the alias resource.
func TestAliasInKeyPath(t *testing.T) {
	srv := kmstest.Start(t)
	id := createKey(t, srv, map[string]any{"alias": "alias/team/pay"})
	var md kmsapi.KeyMetadata
	call(t, srv, "GET", "/v1/keys/alias%2Fteam%2Fpay", nil, 200, &md)
	if md.KeyID != id {
		t.Fatalf("describe by alias: key %q, want %q", md.KeyID, id)
	}
	// A caller allowed only on the alias may use it in the path.
	ak, sk := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:DescribeKey"],"resources":["alias/team/pay"]}]}`)
	if st, body := srv.DoAs(t, ak, sk, "GET", "/v1/keys/alias%2Fteam%2Fpay", nil); st != 200 {
		t.Fatalf("alias-scoped describe: %d %s", st, body)
	}
	if st, _ := srv.DoAs(t, ak, sk, "POST", "/v1/keys/alias%2Fteam%2Fpay/disable", nil); st != http.StatusForbidden {
		t.Fatalf("alias-scoped disable: %d, want 403", st)
	}
	recs := auditRecords(t, srv)
	var describes int
	for _, r := range recs {
		if r["action"] == "kms:DescribeKey" {
			describes++
			if r["key_id"] != id {
				t.Errorf("describe record names key %v, want %s", r["key_id"], id)
			}
		}
		if r["action"] == "kms:ListAliases" {
			t.Errorf("an alias lookup was made: %v", r)
		}
	}
	if describes != 2 {
		t.Fatalf("%d describe records, want 2 (one per request)", describes)
	}
}

// awsError is a stand-in protocol's error shape for TestExtraRoute.
func awsError(f httpapi.Failure) httpapi.Reply {
	b, _ := json.Marshal(map[string]string{"__type": f.Code + "Exception", "message": f.Message})
	return httpapi.Reply{Status: f.Status, ContentType: "application/x-amz-json-1.1", Body: b}
}

// TestExtraRoute: a route mounted through Options.Extra (at POST /extra: kmsd has POST /
// for the AWS protocol) gets
// kmsd's authentication, policy checks through the Call and a durable audit
// record before its answer; errors use its own shape.
func TestExtraRoute(t *testing.T) {
	route := httpapi.Route{
		Method: "POST", Path: "/extra", Summary: "test protocol",
		Serve: func(c *httpapi.Call) (httpapi.Reply, error) {
			var in struct{ KeyId, Plaintext string }
			if err := json.Unmarshal(c.Body(), &in); err != nil {
				return httpapi.Reply{}, err
			}
			c.SetAction("kms:Encrypt")
			k, err := c.AuthorizeKey("kms:Encrypt", in.KeyId)
			if err != nil {
				return httpapi.Reply{}, err
			}
			svc := kmsServiceOf(c)
			out, err := svc.Encrypt(c.Context(), kms.EncryptInput{KeyID: k.KeyID, Plaintext: []byte(in.Plaintext)})
			if err != nil {
				return httpapi.Reply{}, err
			}
			c.SetKeyVersion(out.KeyVersion)
			b, _ := json.Marshal(map[string]any{"KeyId": out.KeyID, "CiphertextBlob": out.CiphertextBlob})
			return httpapi.Reply{ContentType: "application/x-amz-json-1.1", Body: b}, nil
		},
		EncodeError: awsError,
	}
	srv := kmstest.Start(t, kmstest.WithExtra(route))
	extraKMS = kmsdinternal.Of(srv.App).KMS
	id := createKey(t, srv, map[string]any{"alias": "alias/extra"})

	resp, body := send(t, srv, "POST", "/extra", []byte(`{"KeyId":"alias/extra","Plaintext":"hi"}`), time.Now(), nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), id) {
		t.Fatalf("extra encrypt: %d %s", resp.StatusCode, body)
	}
	ak, sk := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:Decrypt"],"resources":["*"]}]}`)
	st, body2 := srv.DoAs(t, ak, sk, "POST", "/extra", `{"KeyId":"alias/extra","Plaintext":"hi"}`)
	if st != http.StatusForbidden || !strings.Contains(string(body2), `"__type":"AccessDeniedException"`) {
		t.Fatalf("denied extra call: %d %s", st, body2)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/extra", strings.NewReader(`{}`))
	unsigned, err := srv.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ub, _ := io.ReadAll(unsigned.Body)
	unsigned.Body.Close()
	if unsigned.StatusCode != http.StatusUnauthorized || !strings.Contains(string(ub), `"__type":"UnauthenticatedException"`) {
		t.Fatalf("unsigned extra call: %d %s", unsigned.StatusCode, ub)
	}

	var ok, denied int
	for _, r := range auditRecords(t, srv) {
		if r["action"] != "kms:Encrypt" {
			continue
		}
		switch {
		case r["result"] == "ok" && r["key_id"] == id && r["key_version"] == float64(1):
			ok++
		case r["result"] == "error" && r["reason_code"] == kmsapi.CodeAccessDenied && r["access_key_id"] == ak:
			denied++
		}
	}
	if ok != 1 || denied != 1 {
		t.Fatalf("audit: %d ok and %d denied extra records, want 1 and 1", ok, denied)
	}

	// Fail closed: no audit, no answer, in the route's error shape.
	if err := srv.App.Audit.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body = send(t, srv, "POST", "/extra", []byte(`{"KeyId":"alias/extra","Plaintext":"hi"}`), time.Now(), nil)
	if resp.StatusCode != 503 || !strings.Contains(string(body), "AuditUnavailableException") || strings.Contains(string(body), "CiphertextBlob") {
		t.Fatalf("extra call without audit: %d %s", resp.StatusCode, body)
	}
}

var extraKMS *kms.Service

func kmsServiceOf(*httpapi.Call) *kms.Service { return extraKMS }

// TestExtraRouteHooks: Check refuses a request before authentication (not
// audited), Observe sees every answer, the Route's Details and
// Call.SetDetail reach the audit records (also of a failed
// authentication), Call.WriteIntent makes the intent record durable before
// the change and the outcome names it, and the Reply's status and headers
// are sent.
func TestExtraRouteHooks(t *testing.T) {
	var (
		mu       sync.Mutex
		observed []int
	)
	route := httpapi.Route{
		Method: "POST", Path: "/hooks", Summary: "hooks test protocol", OperationID: "hooks", ContentType: "application/x-test",
		Details: map[string]string{"protocol": "test-1"},
		Check: func(r *http.Request) error {
			if r.Header.Get("X-Test-Op") == "" {
				return fmt.Errorf("%w: X-Test-Op is required", httpapi.ErrValidation)
			}
			return nil
		},
		Serve: func(c *httpapi.Call) (httpapi.Reply, error) {
			c.SetAction("kms:CreateKey")
			c.SetDetail("operation", c.Request().Header.Get("X-Test-Op"))
			if err := c.Authorize("kms:CreateKey"); err != nil {
				return httpapi.Reply{}, err
			}
			if err := c.WriteIntent(); err != nil {
				return httpapi.Reply{}, err
			}
			md, err := kmsServiceOf(c).CreateKey(c.Context(), kms.CreateKeyInput{})
			if err != nil {
				return httpapi.Reply{}, err
			}
			c.AddResources("key/" + md.KeyID)
			return httpapi.Reply{Status: http.StatusCreated, ContentType: "application/x-test",
				Header: http.Header{"X-Test-Key": {md.KeyID}}, Body: []byte(md.KeyID)}, nil
		},
		EncodeError: awsError,
		Observe: func(r *http.Request, status int, h http.Header, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			observed = append(observed, status)
		},
	}
	srv := kmstest.Start(t, kmstest.WithExtra(route))
	extraKMS = kmsdinternal.Of(srv.App).KMS
	op := func(v string) func(r *http.Request) {
		return func(r *http.Request) {
			if v != "" {
				r.Header.Set("X-Test-Op", v) // not signed: the signature covers the signed headers only
			}
		}
	}

	resp, body := send(t, srv, "POST", "/hooks", nil, time.Now(), op(""))
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"__type":"ValidationErrorException"`) {
		t.Fatalf("refused by Check: %d %s", resp.StatusCode, body)
	}
	resp, body = send(t, srv, "POST", "/hooks", nil, time.Now(), op("Make"))
	id := string(body)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Test-Key") != id || resp.Header.Get("Content-Type") != "application/x-test" {
		t.Fatalf("hooks call: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/hooks", nil)
	op("Make")(req)
	unsigned, err := srv.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	unsigned.Body.Close()
	if unsigned.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d", unsigned.StatusCode)
	}

	var intent, outcome, authFailure map[string]any
	for _, r := range auditRecords(t, srv) {
		d, _ := r["details"].(map[string]any)
		if d["path"] != "/hooks" {
			continue
		}
		if d["protocol"] != "test-1" {
			t.Fatalf("record without the route's details: %v", r)
		}
		switch {
		case r["action"] == "kms:CreateKey" && r["result"] == "intent" && intent == nil:
			intent = r
		case r["action"] == "kms:CreateKey" && r["result"] == "ok" && outcome == nil:
			outcome = r
		case r["action"] == httpapi.ActionAuthenticate:
			authFailure = r
		default:
			t.Fatalf("unexpected record (a Check refusal is not audited): %v", r)
		}
	}
	if intent == nil || outcome == nil || authFailure == nil {
		t.Fatalf("records: intent %v, outcome %v, failed authentication %v", intent, outcome, authFailure)
	}
	od := outcome["details"].(map[string]any)
	if intent["seq"].(float64) >= outcome["seq"].(float64) || od["intent_seq"] != fmt.Sprint(intent["seq"]) ||
		outcome["key_id"] != id || od["operation"] != "Make" || od["status"] != "201" ||
		intent["details"].(map[string]any)["operation"] != "Make" || authFailure["details"].(map[string]any)["status"] != "401" {
		t.Fatalf("intent %v, outcome %v, failed authentication %v", intent, outcome, authFailure)
	}

	mu.Lock()
	got := fmt.Sprint(observed)
	mu.Unlock()
	if got != "[400 201 401]" {
		t.Fatalf("observed %s, want [400 201 401]", got)
	}

	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string         `json:"operationId"`
			RequestBody map[string]any `json:"requestBody"`
		} `json:"paths"`
	}
	call(t, srv, "GET", "/openapi.json", nil, 200, &doc)
	op2 := doc.Paths["/hooks"]["post"]
	if ct, _ := op2.RequestBody["content"].(map[string]any); op2.OperationID != "hooks" || ct["application/x-test"] == nil {
		t.Fatalf("OpenAPI of the route: %+v", op2)
	}
}

// TestExtraRouteConflict: an Extra route that another route has (or that
// gin cannot take) is an error of New, and of kmsd.Open for POST /, the
// AWS protocol's.
func TestExtraRouteConflict(t *testing.T) {
	srv := kmstest.Start(t)
	in := kmsdinternal.Of(srv.App)
	serve := func(*httpapi.Call) (httpapi.Reply, error) { return httpapi.Reply{}, nil }
	for _, tc := range []struct {
		name   string
		routes []httpapi.Route
	}{
		{"twice", []httpapi.Route{{Method: "POST", Path: "/x", Serve: serve}, {Method: "POST", Path: "/x", Serve: serve}}},
		{"a /v1 route", []httpapi.Route{{Method: "POST", Path: "/v1/keys", Serve: serve}}},
		{"a wildcard gin refuses", []httpapi.Route{{Method: "GET", Path: "/v1/keys/:other", Serve: serve}}},
	} {
		_, err := httpapi.New(httpapi.Options{KMS: in.KMS, Auth: in.Auth, Audit: srv.App.Audit, Extra: tc.routes})
		if err == nil || !strings.Contains(err.Error(), "Extra route") {
			t.Errorf("%s: New: %v", tc.name, err)
		}
	}
	c := config.Defaults()
	c.DataDir = t.TempDir()
	c.Jobs.Enabled = false
	app, err := kmsd.Open(context.Background(), c, kmsd.Deps{Extra: []httpapi.Route{{Method: "POST", Path: "/", Serve: serve}}}, nil)
	if err == nil {
		app.Close()
		t.Fatal("kmsd.Open mounted a second POST /")
	}
	if !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("kmsd.Open: %v", err)
	}
}
