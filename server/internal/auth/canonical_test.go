package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/dbtest"
)

// TestAuthenticateCanonicalForms: how the verifier treats requests whose
// query, path or headers are written differently on the wire from the way
// the client signed them. Equivalent forms (as SigV4 canonicalises them)
// verify; anything that changes what a handler would read is refused.
func TestAuthenticateCanonicalForms(t *testing.T) {
	e := newEnv(t, Config{})
	cases := []struct {
		name   string
		url    string                      // what the client signs
		hdr    map[string]string           // extra headers the client signs
		edit   func(r *http.Request) error // what reaches the server instead
		ok     bool
		reason string // substring of the error when !ok ("" = exactly ErrUnauthenticated)
	}{
		{name: "unsorted query as signed", url: "/v1/keys?z=1&a=2&m=3", ok: true},
		{name: "query reordered in transit", url: "/v1/keys?z=1&a=2", ok: true,
			edit: func(r *http.Request) error { r.URL.RawQuery = "a=2&z=1"; return nil }},
		{name: "space as + or %20", url: "/v1/keys?alias=a%20b", ok: true,
			edit: func(r *http.Request) error { r.URL.RawQuery = "alias=a+b"; return nil }},
		{name: "query value changed", url: "/v1/keys?limit=10",
			edit: func(r *http.Request) error { r.URL.RawQuery = "limit=11"; return nil }},
		{name: "query key case changed", url: "/v1/keys?limit=10",
			edit: func(r *http.Request) error { r.URL.RawQuery = "Limit=10"; return nil }},
		{name: "query parameter dropped", url: "/v1/keys?limit=10&state=Enabled",
			edit: func(r *http.Request) error { r.URL.RawQuery = "limit=10"; return nil }},
		{name: "duplicate query key signed", url: "/v1/keys?tag=a:1&tag=b:2", reason: "repeated query parameter"},
		{name: "duplicate query key added", url: "/v1/keys?tag=a:1",
			edit:   func(r *http.Request) error { r.URL.RawQuery = "tag=a:1&tag=a:1"; return nil },
			reason: "repeated query parameter"},
		{name: "semicolon separator", url: "/v1/keys?a=1",
			edit:   func(r *http.Request) error { r.URL.RawQuery = "a=1;b=2"; return nil },
			reason: "malformed query"},
		{name: "encoded path as signed", url: "/v1/aliases/orders%2Feu%20x", ok: true},
		{name: "encoded slash decoded in transit", url: "/v1/aliases/orders%2Feu",
			edit: func(r *http.Request) error { r.URL.RawPath = ""; r.URL.Path = "/v1/aliases/orders/eu"; return nil }},
		{name: "unreserved char percent-encoded in transit", url: "/v1/keys/abc",
			edit: func(r *http.Request) error { r.URL.RawPath = "/v1/keys/ab%63"; return nil }},
		{name: "path case changed", url: "/v1/keys/abc",
			edit: func(r *http.Request) error { r.URL.Path = "/v1/keys/ABC"; return nil }},
		{name: "dot segment added", url: "/v1/keys/abc",
			edit: func(r *http.Request) error { r.URL.Path = "/v1/keys/x/../abc"; return nil }},
		{name: "trailing slash added", url: "/v1/keys",
			edit: func(r *http.Request) error { r.URL.Path = "/v1/keys/"; return nil }},
		{name: "lower-case header name signed", url: "/v1/keys", hdr: map[string]string{"x-kms-tenant": "acme"}, ok: true},
		{name: "header name not canonicalised", url: "/v1/keys", hdr: map[string]string{"X-Kms-Tenant": "acme"},
			edit: func(r *http.Request) error {
				v := r.Header["X-Kms-Tenant"]
				delete(r.Header, "X-Kms-Tenant")
				r.Header["X-KMS-TENANT"] = v // as a handler that did not canonicalise would see it
				return nil
			},
			reason: "missing"},
		{name: "header value spacing differs", url: "/v1/keys", hdr: map[string]string{"X-Kms-Tenant": "acme corp"}, ok: true,
			edit: func(r *http.Request) error { r.Header.Set("X-Kms-Tenant", "  acme   corp "); return nil }},
		{name: "header value case differs", url: "/v1/keys", hdr: map[string]string{"X-Kms-Tenant": "acme"},
			edit: func(r *http.Request) error { r.Header.Set("X-Kms-Tenant", "Acme"); return nil }},
		{name: "second value of a signed header", url: "/v1/keys", hdr: map[string]string{"X-Kms-Tenant": "acme"},
			edit: func(r *http.Request) error { r.Header.Add("X-Kms-Tenant", "evil"); return nil }},
		{name: "second X-Amz-Date", url: "/v1/keys",
			edit:   func(r *http.Request) error { r.Header.Add("X-Amz-Date", r.Header.Get("X-Amz-Date")); return nil },
			reason: "X-Amz-Date"},
		{name: "second X-Amz-Content-Sha256", url: "/v1/keys",
			edit: func(r *http.Request) error {
				r.Header.Add("X-Amz-Content-Sha256", r.Header.Get("X-Amz-Content-Sha256"))
				return nil
			},
			reason: "X-Amz-Content-Sha256"},
		{name: "authorization lower-case algorithm", url: "/v1/keys",
			edit: func(r *http.Request) error {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), sigV4Algorithm, strings.ToLower(sigV4Algorithm), 1))
				return nil
			},
			reason: "must start with"},
		{name: "huge unsigned header", url: "/v1/keys", ok: true,
			edit: func(r *http.Request) error { r.Header.Set("X-Padding", strings.Repeat("p", 1<<20)); return nil }},
		{name: "huge authorization header", url: "/v1/keys",
			edit: func(r *http.Request) error {
				r.Header.Set("Authorization", r.Header.Get("Authorization")+strings.Repeat(" ", 1<<20))
				return nil
			},
			reason: "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, body := e.sign(t, clientRequest{method: "GET", url: testHost + c.url, headers: c.hdr})
			if c.edit != nil {
				if err := c.edit(r); err != nil {
					t.Fatal(err)
				}
			}
			_, err := e.s.Authenticate(r, body)
			switch {
			case c.ok:
				if err != nil {
					t.Fatalf("equivalent form rejected: %v", err)
				}
			case c.reason == "":
				if err != ErrUnauthenticated {
					t.Fatalf("err = %v, want exactly ErrUnauthenticated (signature mismatch)", err)
				}
			default:
				if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), c.reason) {
					t.Fatalf("err = %v, want ErrUnauthenticated mentioning %q", err, c.reason)
				}
			}
		})
	}
}

// TestEveryRejectedKeyComputesSignature: an unknown, disabled or deleted
// key and a bad signature each cost exactly one signature computation (an
// HMAC chain over the request), so they do the same work and return the
// same error. BenchmarkAuthenticateRejected measures their timing.
func TestEveryRejectedKeyComputesSignature(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	disabled, dsecret, err := e.s.CreateAccessKey(ctx, "disabled", AdminPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.DisableAccessKey(ctx, disabled.ID); err != nil {
		t.Fatal(err)
	}
	deleted, delsecret, err := e.s.CreateAccessKey(ctx, "deleted", AdminPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteAccessKey(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, ak, secret string
		ok               bool
	}{
		{"valid", e.ak, e.secret, true},
		{"unknown key", "AKKMSAAAAAAAAAAAAAAAA", e.secret, false},
		{"bad signature", e.ak, strings.Repeat("x", SecretLen), false},
		{"disabled key", disabled.ID, dsecret, false},
		{"deleted key", deleted.ID, delsecret, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for round := range 2 { // cold and cached
				before := e.s.signatures.Load()
				r, body := sign(t, jsonPost(`{}`, nil), c.ak, c.secret, DefaultRegion, ServiceName, e.clock.Now())
				_, err := e.s.Authenticate(r, body)
				if got := e.s.signatures.Load() - before; got != 1 {
					t.Fatalf("round %d: %d signature computations, want 1", round, got)
				}
				if c.ok != (err == nil) || (!c.ok && err != ErrUnauthenticated) {
					t.Fatalf("round %d: err = %v", round, err)
				}
			}
		})
	}
	// A request rejected before the key lookup (malformed, skewed) computes
	// nothing: it reveals nothing about keys.
	r, body := sign(t, jsonPost(`{}`, nil), e.ak, e.secret, DefaultRegion, ServiceName, e.clock.Now().Add(-time.Hour))
	before := e.s.signatures.Load()
	if _, err := e.s.Authenticate(r, body); !errors.Is(err, ErrUnauthenticated) || e.s.signatures.Load() != before {
		t.Fatalf("skewed request: err = %v, computations %d", err, e.s.signatures.Load()-before)
	}
}

// BenchmarkAuthenticateRejected compares the cost of the rejection paths
// with a valid request (cached entries, as an attacker probing repeatedly
// would see them).
func BenchmarkAuthenticateRejected(b *testing.B) {
	clock := newClock(testStart)
	s := newService(b, dbtest.Open(b, dbtest.SQLite), testBackend(b), Config{Now: clock.Now})
	ctx := context.Background()
	ak, secret, err := s.CreateAccessKey(ctx, "", AdminPolicy())
	if err != nil {
		b.Fatal(err)
	}
	dis, dsecret, err := s.CreateAccessKey(ctx, "", AdminPolicy())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.DisableAccessKey(ctx, dis.ID); err != nil {
		b.Fatal(err)
	}
	cases := []struct{ name, ak, secret string }{
		{"valid", ak.ID, secret},
		{"unknown-key", "AKKMSAAAAAAAAAAAAAAAA", secret},
		{"bad-signature", ak.ID, strings.Repeat("x", SecretLen)},
		{"disabled-key", dis.ID, dsecret},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r, body := sign(b, jsonPost(`{"plaintext":"aGVsbG8="}`, nil), c.ak, c.secret, DefaultRegion, ServiceName, testStart)
			_, _ = s.Authenticate(r, body) // warm the cache
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_, _ = s.Authenticate(r, body)
			}
		})
	}
}
