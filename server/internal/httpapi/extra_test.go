package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/httpapi"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
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
