package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/httpapi"
	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

type apiErr struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// send builds a request, signs it with the admin key at time at, lets
// tamper change it after signing, and returns the response (body read).
func send(t *testing.T, srv *kmstest.Server, method, path string, body []byte, at time.Time, tamper func(r *http.Request)) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test", "signed")
	if err := srv.Sign(req, srv.AccessKeyID, srv.SecretAccessKey, body, at); err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := srv.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// checkError asserts the one error shape, the code and the request id.
func checkError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	var e apiErr
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Error.Code != code {
		t.Fatalf("code %q, want %q (%s)", e.Error.Code, code, body)
	}
	id := resp.Header.Get(httpapi.HeaderRequestID)
	if id == "" || e.Error.RequestID != id {
		t.Fatalf("request id header %q, body %q", id, e.Error.RequestID)
	}
}

func createKey(t *testing.T, srv *kmstest.Server, body map[string]any) string {
	t.Helper()
	st, out := srv.Do(t, http.MethodPost, "/v1/keys", body)
	if st != http.StatusCreated {
		t.Fatalf("create key: %d %s", st, out)
	}
	var md kmsapi.KeyMetadata
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatal(err)
	}
	return md.KeyID
}

func encrypt(t *testing.T, srv *kmstest.Server, keyID string, pt []byte, ec map[string]string) []byte {
	t.Helper()
	st, out := srv.Do(t, http.MethodPost, "/v1/encrypt", map[string]any{"key_id": keyID, "plaintext": pt, "encryption_context": ec})
	if st != http.StatusOK {
		t.Fatalf("encrypt: %d %s", st, out)
	}
	var r kmsapi.EncryptResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r.CiphertextBlob
}

var paramRE = regexp.MustCompile(`:[a-z_]+`)

func TestNoRouteReachableUnauthenticated(t *testing.T) {
	srv := kmstest.Start(t)
	public := map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/openapi.json": true}
	routes := kmsdinternal.Of(srv.App).Handler.Engine().Routes()
	if len(routes) < 40 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, r := range routes {
		path := paramRE.ReplaceAllString(r.Path, "x")
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			if public[r.Path] {
				if r.Method != http.MethodGet {
					t.Fatalf("public route with method %s", r.Method)
				}
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("public route: %d", resp.StatusCode)
				}
				return
			}
			for name, auth := range map[string]string{
				"no header": "",
				"garbage":   "AWS4-HMAC-SHA256 Credential=AKKMSAAAAAAAAAAAAAAAA/20260101/local/kms/aws4_request, SignedHeaders=host, Signature=00",
			} {
				req, _ := http.NewRequest(r.Method, srv.URL+path, strings.NewReader(`{}`))
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				if r.Method == http.MethodPost && r.Path == "/" { // the AWS KMS JSON protocol, in its own error shape
					req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
					req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if r.Method == http.MethodPost && r.Path == "/" {
					want := map[string]string{"no header": `{"__type":"MissingAuthenticationTokenException",`,
						"garbage": `{"__type":"InvalidSignatureException",`}[name]
					if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest ||
						!strings.HasPrefix(string(body), want) {
						t.Fatalf("%s: %d %s, want %s...", name, resp.StatusCode, body, want)
					}
					continue
				}
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
				}
				checkError(t, resp, body, http.StatusUnauthorized, kmsapi.CodeUnauthenticated)
			}
		})
	}
}

func TestOpenAPIDocumentsExactlyTheRegisteredRoutes(t *testing.T) {
	srv := kmstest.Start(t)
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			documented[strings.ToUpper(m)+" "+p] = true
			if op["responses"] == nil || op["summary"] == "" {
				t.Errorf("%s %s: no responses or summary", m, p)
			}
		}
	}
	registered := map[string]bool{}
	for _, r := range kmsdinternal.Of(srv.App).Handler.Engine().Routes() {
		k := r.Method + " " + httpapi.OpenAPIPath(r.Path)
		registered[k] = true
		if !documented[k] {
			t.Errorf("registered but not documented: %s", k)
		}
	}
	for k := range documented {
		if !registered[k] {
			t.Errorf("documented but not registered: %s", k)
		}
	}
}

func TestBadInput(t *testing.T) {
	srv := kmstest.Start(t)
	keyID := createKey(t, srv, map[string]any{"alias": "alias/bad-input"})
	blob := encrypt(t, srv, keyID, []byte("secret"), map[string]string{"a": "b"})
	tampered := bytes.Clone(blob)
	tampered[len(tampered)-1] ^= 1
	big := `{"key_id":"` + keyID + `","plaintext":"` + strings.Repeat("A", 70<<10) + `"}`
	b64 := base64.StdEncoding.EncodeToString

	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"malformed json", "POST", "/v1/encrypt", `{"key_id":`, 400, kmsapi.CodeValidation},
		{"not an object", "POST", "/v1/encrypt", `[1,2]`, 400, kmsapi.CodeValidation},
		{"trailing data", "POST", "/v1/encrypt", `{"key_id":"` + keyID + `","plaintext":"eA=="} {}`, 400, kmsapi.CodeValidation},
		{"unknown field", "POST", "/v1/encrypt", `{"key_id":"` + keyID + `","plaintext":"eA==","extra":1}`, 400, kmsapi.CodeValidation},
		{"wrong type", "POST", "/v1/encrypt", `{"key_id":42,"plaintext":"eA=="}`, 400, kmsapi.CodeValidation},
		{"wrong type context", "POST", "/v1/encrypt", `{"key_id":"` + keyID + `","plaintext":"eA==","encryption_context":{"a":1}}`, 400, kmsapi.CodeValidation},
		{"bad base64", "POST", "/v1/encrypt", `{"key_id":"` + keyID + `","plaintext":"!!notbase64"}`, 400, kmsapi.CodeValidation},
		{"bad base64 decrypt", "POST", "/v1/decrypt", `{"ciphertext_blob":"%%%"}`, 400, kmsapi.CodeValidation},
		{"empty plaintext", "POST", "/v1/encrypt", `{"key_id":"` + keyID + `"}`, 400, kmsapi.CodeValidation},
		{"oversized body", "POST", "/v1/encrypt", big, 413, kmsapi.CodePayloadTooLarge},
		{"unknown key id", "POST", "/v1/encrypt", `{"key_id":"00000000-0000-4000-8000-000000000000","plaintext":"eA=="}`, 404, kmsapi.CodeNotFound},
		{"unknown alias", "POST", "/v1/encrypt", `{"key_id":"alias/nope","plaintext":"eA=="}`, 404, kmsapi.CodeNotFound},
		{"unknown key path", "GET", "/v1/keys/00000000-0000-4000-8000-000000000000", ``, 404, kmsapi.CodeNotFound},
		{"unknown alias in key path", "POST", "/v1/keys/alias%2Fno-such-alias/disable", ``, 404, kmsapi.CodeNotFound},
		{"malformed key id", "POST", "/v1/keys/not-a-key/disable", ``, 404, kmsapi.CodeNotFound},
		{"unknown alias path", "GET", "/v1/aliases/nope", ``, 404, kmsapi.CodeNotFound},
		{"garbage ciphertext", "POST", "/v1/decrypt", `{"ciphertext_blob":"` + b64([]byte("garbage")) + `"}`, 400, kmsapi.CodeInvalidCiphertext},
		{"tampered ciphertext", "POST", "/v1/decrypt", `{"ciphertext_blob":"` + b64(tampered) + `","encryption_context":{"a":"b"}}`, 400, kmsapi.CodeInvalidCiphertext},
		{"wrong context", "POST", "/v1/decrypt", `{"ciphertext_blob":"` + b64(blob) + `","encryption_context":{"a":"B"}}`, 400, kmsapi.CodeInvalidCiphertext},
		{"wrong key named", "POST", "/v1/decrypt", `{"ciphertext_blob":"` + b64(blob) + `","encryption_context":{"a":"b"},"key_id":"alias/nope"}`, 400, kmsapi.CodeInvalidCiphertext},
		{"deletion window", "POST", "/v1/keys/" + keyID + "/schedule-deletion", `{"pending_window_days":3}`, 400, kmsapi.CodeValidation},
		{"random too many", "POST", "/v1/random", `{"number_of_bytes":4096}`, 400, kmsapi.CodeValidation},
		{"limit not a number", "GET", "/v1/keys?limit=abc", ``, 400, kmsapi.CodeValidation},
		{"unknown query", "GET", "/v1/keys?foo=1", ``, 400, kmsapi.CodeValidation},
		{"bad policy", "POST", "/v1/access-keys", `{"policy":{"statements":[{"effect":"Maybe","actions":["*"],"resources":["*"]}]}}`, 400, kmsapi.CodeValidation},
		{"unknown access key", "GET", "/v1/access-keys/AKKMSAAAAAAAAAAAAAAAA", ``, 404, kmsapi.CodeNotFound},
		{"empty batch", "POST", "/v1/decrypt/batch", `{"items":[]}`, 400, kmsapi.CodeValidation},
		{"no such route", "GET", "/v1/nothing", ``, 404, kmsapi.CodeNotFound},
		{"trailing slash is not redirected", "GET", "/v1/keys/", ``, 404, kmsapi.CodeNotFound},
		{"empty alias name is not redirected", "GET", "/v1/aliases/", ``, 404, kmsapi.CodeNotFound},
		{"bad audit cursor", "GET", "/v1/audit?after=zzz", ``, 400, kmsapi.CodeValidation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, srv, tc.method, tc.path, []byte(tc.body), time.Now(), nil)
			checkError(t, resp, body, tc.status, tc.code)
			if strings.Contains(string(body), "secret") {
				t.Fatal("error leaks plaintext")
			}
		})
	}

	// The batch route accepts up to 1 MiB.
	items := make([]map[string]any, 100)
	for i := range items {
		items[i] = map[string]any{"ciphertext_blob": blob, "encryption_context": map[string]string{"a": "b"}}
	}
	items[7]["encryption_context"] = map[string]string{"a": "x"}
	st, out := srv.Do(t, http.MethodPost, "/v1/decrypt/batch", map[string]any{"items": items})
	if st != http.StatusOK {
		t.Fatalf("batch: %d %s", st, out)
	}
	var br struct {
		Results []struct {
			Plaintext []byte `json:"plaintext"`
			Error     *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &br); err != nil || len(br.Results) != 100 {
		t.Fatalf("batch body: %v", err)
	}
	for i, r := range br.Results {
		if i == 7 {
			if r.Error == nil || r.Error.Code != kmsapi.CodeInvalidCiphertext || r.Plaintext != nil {
				t.Fatalf("item 7: %+v", r)
			}
		} else if string(r.Plaintext) != "secret" || r.Error != nil {
			t.Fatalf("item %d: %+v", i, r)
		}
	}
	if st, _ := srv.Do(t, http.MethodPost, "/v1/decrypt/batch", map[string]any{"items": append(items, items[0])}); st != http.StatusBadRequest {
		t.Fatalf("101 items: %d", st)
	}
}

func TestSignatureTampering(t *testing.T) {
	srv := kmstest.Start(t)
	countKeys := func() int {
		st, out := srv.Do(t, http.MethodGet, "/v1/keys", nil)
		if st != 200 {
			t.Fatalf("list: %d %s", st, out)
		}
		var r kmsapi.ListKeysResponse
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		return len(r.Keys)
	}
	body := []byte(`{"description":"tamper","alias":"alias/tamper"}`)
	cases := []struct {
		name   string
		method string
		path   string
		at     time.Time
		tamper func(r *http.Request)
	}{
		{"skewed clock past", "POST", "/v1/keys", time.Now().Add(-10 * time.Minute), nil},
		{"skewed clock future", "POST", "/v1/keys", time.Now().Add(10 * time.Minute), nil},
		{"method changed", "POST", "/v1/keys", time.Now(), func(r *http.Request) { r.Method = http.MethodGet }},
		{"path changed", "POST", "/v1/keys", time.Now(), func(r *http.Request) { r.URL.Path = "/v1/aliases" }},
		{"query added", "POST", "/v1/keys", time.Now(), func(r *http.Request) { r.URL.RawQuery = "x=1" }},
		{"query changed", "POST", "/v1/keys?a=1", time.Now(), func(r *http.Request) { r.URL.RawQuery = "a=2" }},
		{"signed header changed", "POST", "/v1/keys", time.Now(), func(r *http.Request) { r.Header.Set("X-Test", "evil") }},
		{"body changed", "POST", "/v1/keys", time.Now(), func(r *http.Request) {
			b := []byte(`{"description":"evil!!","alias":"alias/tamper"}`)
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.ContentLength = int64(len(b))
		}},
		{"body changed keeping claimed hash", "POST", "/v1/keys", time.Now(), func(r *http.Request) {
			b := []byte(`{"description":"EVIL!!","alias":"alias/tamper"}`)
			r.Body = io.NopCloser(bytes.NewReader(b))
			r.ContentLength = int64(len(b))
			r.Header.Del("X-Amz-Content-Sha256")
		}},
		{"wrong secret", "POST", "/v1/keys", time.Now(), func(r *http.Request) {
			_ = srv.Sign(r, srv.AccessKeyID, strings.Repeat("x", 40), body, time.Now())
		}},
	}
	before := countKeys()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := send(t, srv, tc.method, tc.path, body, tc.at, tc.tamper)
			checkError(t, resp, out, http.StatusUnauthorized, kmsapi.CodeUnauthenticated)
		})
	}
	if after := countKeys(); after != before {
		t.Fatalf("a rejected request created a key: %d -> %d", before, after)
	}
	if st, _ := srv.Do(t, http.MethodGet, "/v1/aliases/tamper", nil); st != http.StatusNotFound {
		t.Fatalf("a rejected request created the alias: %d", st)
	}

	// Replayed nonce: the first use passes, the replay is refused.
	replay := func() (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/keys", nil)
		req.Header.Set("X-Kms-Nonce", "nonce-0123456789abcdef")
		if err := srv.Sign(req, srv.AccessKeyID, srv.SecretAccessKey, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := srv.HTTP.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, out
	}
	if resp, out := replay(); resp.StatusCode != http.StatusOK {
		t.Fatalf("first nonce use: %d %s", resp.StatusCode, out)
	}
	resp, out := replay()
	checkError(t, resp, out, http.StatusUnauthorized, kmsapi.CodeUnauthenticated)
}
