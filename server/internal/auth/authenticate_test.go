package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/server/dbtest"
)

const (
	testHost = "http://kms.example:8080"
	nonceA   = "n0nce-AAAAAAAAAAAAAAAAAAAAAAAA"
)

// testEnv is one Service with one enabled key holding AdminPolicy.
type testEnv struct {
	s      *Service
	clock  *fakeClock
	ak     string
	secret string
}

func newEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	clock := newClock(testStart)
	cfg.Now = clock.Now
	s := newService(t, dbtest.Open(t, dbtest.SQLite), testBackend(t), cfg)
	ak, secret, err := s.CreateAccessKey(context.Background(), "test", AdminPolicy())
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{s: s, clock: clock, ak: ak.ID, secret: secret}
}

func (e *testEnv) sign(t *testing.T, cr clientRequest) (*http.Request, []byte) {
	t.Helper()
	return sign(t, cr, e.ak, e.secret, e.s.Region(), ServiceName, e.clock.Now())
}

func jsonPost(body string, headers map[string]string) clientRequest {
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range headers {
		h[k] = v
	}
	return clientRequest{method: "POST", url: testHost + "/v1/decrypt", body: []byte(body), headers: h}
}

func TestAuthenticateRoundTrip(t *testing.T) {
	e := newEnv(t, Config{})
	cases := []struct {
		name string
		cr   clientRequest
	}{
		{"post json", jsonPost(`{"ciphertext_blob":"AAAA"}`, nil)},
		{"post with nonce", jsonPost(`{}`, map[string]string{NonceHeader: nonceA})},
		{"get with query", clientRequest{method: "GET", url: testHost + "/v1/keys?limit=10&alias=alias%2Forders&tag=team:pay"}},
		{"get with escaped path", clientRequest{method: "GET", url: testHost + "/v1/aliases/orders%20eu"}},
		{"delete", clientRequest{method: "DELETE", url: testHost + "/v1/aliases/orders"}},
		{"empty post", clientRequest{method: "POST", url: testHost + "/v1/keys/abc/enable"}},
		{"https default port", clientRequest{method: "GET", url: "https://kms.example/v1/keys"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, body := e.sign(t, c.cr)
			p, err := e.s.Authenticate(r, body)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if p.AccessKeyID != e.ak || !p.Policy.Allowed("kms:CreateKey") {
				t.Fatalf("principal = %+v", p)
			}
		})
	}
}

// TestAuthenticateHTTPServer runs the verifier behind a real HTTP server.
func TestAuthenticateHTTPServer(t *testing.T) {
	e := newEnv(t, Config{RequireNonce: true})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p, err := e.s.Authenticate(r, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, p.AccessKeyID)
	}))
	defer srv.Close()
	do := func(nonce string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/encrypt?x=1", strings.NewReader(`{"key_id":"alias/a"}`))
		req.Header.Set(NonceHeader, nonce)
		signed, _ := e.sign(t, clientRequest{method: "POST", url: srv.URL + "/v1/encrypt?x=1",
			body: []byte(`{"key_id":"alias/a"}`), headers: map[string]string{NonceHeader: nonce}})
		req.Header = signed.Header.Clone()
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := do(nonceA); got != http.StatusOK {
		t.Fatalf("first request: status %d", got)
	}
	if got := do(nonceA); got != http.StatusUnauthorized {
		t.Fatalf("replay: status %d", got)
	}
	if got := do(nonceA + "2"); got != http.StatusOK {
		t.Fatalf("fresh nonce: status %d", got)
	}
}

func TestAuthenticateTampered(t *testing.T) {
	e := newEnv(t, Config{})
	const base = `{"plaintext":"aGVsbG8="}`
	cases := []struct {
		name  string
		exact bool
		fn    func(r *http.Request, body []byte) []byte
	}{
		{"method", true, func(r *http.Request, b []byte) []byte { r.Method = "PUT"; return b }},
		{"path", true, func(r *http.Request, b []byte) []byte { r.URL.Path = "/v1/encrypt"; return b }},
		{"query added", true, func(r *http.Request, b []byte) []byte { r.URL.RawQuery = "a=1"; return b }},
		{"host", true, func(r *http.Request, b []byte) []byte { r.Host = "evil.example:8080"; return b }},
		{"signed header", true, func(r *http.Request, b []byte) []byte { r.Header.Set("Content-Type", "text/plain"); return b }},
		{"nonce", true, func(r *http.Request, b []byte) []byte { r.Header.Set(NonceHeader, nonceA+"x"); return b }},
		{"body same length", false, func(r *http.Request, b []byte) []byte {
			c := bytes.Clone(b)
			c[5] ^= 1
			return c
		}},
		{"body and content sha256", true, func(r *http.Request, b []byte) []byte {
			c := bytes.Clone(b)
			c[5] ^= 1
			sum := sha256.Sum256(c)
			r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			return c
		}},
		{"body longer", false, func(r *http.Request, b []byte) []byte { return append(bytes.Clone(b), ' ') }},
		{"date", true, func(r *http.Request, b []byte) []byte {
			r.Header.Set("X-Amz-Date", testStart.Add(time.Second).Format(amzDateFormat))
			return b
		}},
		{"no authorization", false, func(r *http.Request, b []byte) []byte { r.Header.Del("Authorization"); return b }},
		{"two authorization", false, func(r *http.Request, b []byte) []byte {
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
			return b
		}},
		{"garbage authorization", false, func(r *http.Request, b []byte) []byte { r.Header.Set("Authorization", "Basic Zm9vOmJhcg=="); return b }},
		{"nonce removed", false, func(r *http.Request, b []byte) []byte { r.Header.Del(NonceHeader); return b }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nonce := func(kind string) map[string]string {
				return map[string]string{NonceHeader: fmt.Sprintf("nonce-%s-%02d-aaaaaaaaaaaa", kind, i)}
			}
			r, body := e.sign(t, jsonPost(base, nonce("good")))
			if _, err := e.s.Authenticate(r, body); err != nil {
				t.Fatalf("untampered request rejected: %v", err)
			}
			r, body = e.sign(t, jsonPost(base, nonce("bad")))
			body = c.fn(r, body)
			_, err := e.s.Authenticate(r, body)
			if c.exact && err != ErrUnauthenticated {
				t.Fatalf("err = %v, want exactly ErrUnauthenticated", err)
			}
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("err = %v, want ErrUnauthenticated", err)
			}
		})
	}
}

func TestAuthenticateClockWindow(t *testing.T) {
	e := newEnv(t, Config{})
	cases := []struct {
		offset time.Duration
		ok     bool
	}{
		{0, true}, {4 * time.Minute, true}, {-4 * time.Minute, true},
		{5 * time.Minute, true}, {-5 * time.Minute, true},
		{6 * time.Minute, false}, {-6 * time.Minute, false}, {24 * time.Hour, false},
	}
	for _, c := range cases {
		t.Run(c.offset.String(), func(t *testing.T) {
			r, body := sign(t, jsonPost(`{}`, nil), e.ak, e.secret, DefaultRegion, ServiceName, testStart.Add(c.offset))
			_, err := e.s.Authenticate(r, body)
			if c.ok && err != nil {
				t.Fatalf("skew %s rejected: %v", c.offset, err)
			}
			if !c.ok && !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("skew %s: err = %v, want ErrUnauthenticated", c.offset, err)
			}
		})
	}
}

func TestAuthenticateScope(t *testing.T) {
	e := newEnv(t, Config{Region: "eu-1"})
	cases := []struct {
		name, region, service string
		edit                  func(string) string
	}{
		{"wrong region", "local", ServiceName, nil},
		{"wrong service", "eu-1", "s3", nil},
		{"scope date differs from x-amz-date", "eu-1", ServiceName, func(a string) string {
			return strings.Replace(a, testStart.Format("20060102"), testStart.AddDate(0, 0, -1).Format("20060102"), 1)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, body := sign(t, jsonPost(`{}`, nil), e.ak, e.secret, c.region, c.service, testStart)
			if c.edit != nil {
				r.Header.Set("Authorization", c.edit(r.Header.Get("Authorization")))
			}
			if _, err := e.s.Authenticate(r, body); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("err = %v, want ErrUnauthenticated", err)
			}
		})
	}
	r, body := sign(t, jsonPost(`{}`, nil), e.ak, e.secret, "eu-1", ServiceName, testStart)
	if _, err := e.s.Authenticate(r, body); err != nil {
		t.Fatalf("right scope rejected: %v", err)
	}
}

func TestAuthenticateNonceRules(t *testing.T) {
	cases := []struct {
		name    string
		require bool
		nonce   string // "" = none
		unsign  bool   // send the nonce without signing it
		ok      bool
	}{
		{"optional absent", false, "", false, true},
		{"optional present", false, nonceA, false, true},
		{"required absent", true, "", false, false},
		{"required present", true, nonceA, false, true},
		{"too short", false, "short-nonce-123", false, false},
		{"16 chars", false, "0123456789abcdef", false, true},
		{"64 chars", false, strings.Repeat("z", 64), false, true},
		{"65 chars", false, strings.Repeat("z", 65), false, false},
		{"bad character", false, "0123456789abcdef gh", false, false},
		{"not signed", false, nonceA, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, Config{RequireNonce: c.require})
			h := map[string]string{}
			if c.nonce != "" && !c.unsign {
				h[NonceHeader] = c.nonce
			}
			r, body := e.sign(t, jsonPost(`{}`, h))
			if c.unsign {
				r.Header.Set(NonceHeader, c.nonce)
			}
			_, err := e.s.Authenticate(r, body)
			if c.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !c.ok && !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("err = %v, want ErrUnauthenticated", err)
			}
		})
	}
}

// TestReplayAcrossReplicas: two Services with separate connection pools on
// one database (two kmsd replicas); a nonce used on one is refused on both.
func TestReplayAcrossReplicas(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			dsn, db1 := dbtest.OpenDSN(t, d)
			db2, err := dbtest.Connect(d, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if sqlDB, err := db2.DB(); err == nil {
					sqlDB.Close()
				}
			})
			be := testBackend(t)
			clock := newClock(testStart)
			a := newService(t, db1, be, Config{Now: clock.Now, RequireNonce: true})
			b := newService(t, db2, be, Config{Now: clock.Now, RequireNonce: true})
			ak, secret, err := a.CreateAccessKey(context.Background(), "replica test", AdminPolicy())
			if err != nil {
				t.Fatal(err)
			}
			signed := func(nonce string) (*http.Request, []byte) {
				return sign(t, jsonPost(`{"x":1}`, map[string]string{NonceHeader: nonce}), ak.ID, secret, DefaultRegion, ServiceName, clock.Now())
			}
			r, body := signed(nonceA)
			if _, err := a.Authenticate(r.Clone(context.Background()), body); err != nil {
				t.Fatalf("first use on A: %v", err)
			}
			for name, s := range map[string]*Service{"A": a, "B": b} {
				if _, err := s.Authenticate(r.Clone(context.Background()), body); !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("replay on %s: err = %v, want ErrUnauthenticated", name, err)
				}
			}
			r2, body2 := signed(nonceA + "-2")
			if _, err := b.Authenticate(r2, body2); err != nil {
				t.Fatalf("fresh nonce on B: %v", err)
			}

			// After the window the row has expired: the same nonce in a new
			// request is accepted again even before the purge removed it.
			clock.Add(DefaultClockSkew + nonceSlack + 2*time.Second)
			a.lastPurge.Store(clock.Now().Unix()) // keep the expired row in place
			r3, body3 := signed(nonceA)
			if _, err := a.Authenticate(r3, body3); err != nil {
				t.Fatalf("nonce reuse after expiry: %v", err)
			}

			// Purge removes expired rows only.
			clock.Add(DefaultClockSkew + nonceSlack + 2*time.Second)
			r4, body4 := signed(nonceA + "-4")
			b.lastPurge.Store(clock.Now().Unix())
			if _, err := b.Authenticate(r4, body4); err != nil {
				t.Fatal(err)
			}
			n, err := a.PurgeExpiredNonces(context.Background())
			if err != nil || n != 2 {
				t.Fatalf("purge = %d, %v; want 2 (nonceA reuse and -2)", n, err)
			}
			var left int64
			db1.Model(&nonceRow{}).Count(&left)
			if left != 1 {
				t.Fatalf("%d nonce rows left, want 1", left)
			}
		})
	}
}

// TestUnknownKeyLooksLikeBadSignature: unknown key, bad signature, disabled
// and deleted keys all yield exactly ErrUnauthenticated.
func TestUnknownKeyLooksLikeBadSignature(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	disabled, dsecret, err := e.s.CreateAccessKey(ctx, "to disable", AdminPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.DisableAccessKey(ctx, disabled.ID); err != nil {
		t.Fatal(err)
	}
	deleted, delsecret, err := e.s.CreateAccessKey(ctx, "to delete", AdminPolicy())
	if err != nil {
		t.Fatal(err)
	}
	// Warm the cache so deletion must invalidate it.
	r, body := sign(t, jsonPost(`{}`, nil), deleted.ID, delsecret, DefaultRegion, ServiceName, testStart)
	if _, err := e.s.Authenticate(r, body); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteAccessKey(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, ak, secret string }{
		{"unknown key", "AKKMSAAAAAAAAAAAAAAAA", e.secret},
		{"unknown non-kms key", "AKIDEXAMPLE", e.secret},
		{"bad signature", e.ak, strings.Repeat("x", SecretLen)},
		{"disabled key", disabled.ID, dsecret},
		{"deleted key", deleted.ID, delsecret},
	}
	var msgs []string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, body := sign(t, jsonPost(`{}`, nil), c.ak, c.secret, DefaultRegion, ServiceName, testStart)
			_, err := e.s.Authenticate(r, body)
			if err != ErrUnauthenticated {
				t.Fatalf("err = %v, want exactly ErrUnauthenticated", err)
			}
			msgs = append(msgs, err.Error())
		})
	}
	for _, m := range msgs {
		if m != msgs[0] {
			t.Fatalf("error messages differ: %q", msgs)
		}
	}
	// Enabling the disabled key lets it in again.
	if _, err := e.s.EnableAccessKey(ctx, disabled.ID); err != nil {
		t.Fatal(err)
	}
	r, body = sign(t, jsonPost(`{}`, nil), disabled.ID, dsecret, DefaultRegion, ServiceName, testStart)
	if _, err := e.s.Authenticate(r, body); err != nil {
		t.Fatalf("re-enabled key rejected: %v", err)
	}
}

// TestUnknownKeyCachedForTTL: an unknown id is cached like a known key, so
// a key that appears later (created through another replica) is accepted
// within CacheTTL.
func TestUnknownKeyCachedForTTL(t *testing.T) {
	e := newEnv(t, Config{})
	try := func() error {
		r, body := sign(t, jsonPost(`{}`, nil), suiteAK, suiteSecret, DefaultRegion, ServiceName, e.clock.Now())
		_, err := e.s.Authenticate(r, body)
		return err
	}
	if err := try(); err != ErrUnauthenticated {
		t.Fatalf("unknown key: %v", err)
	}
	putKey(t, e.s, suiteAK, suiteSecret, AdminPolicy(), StatusEnabled) // as another replica would
	if err := try(); err != ErrUnauthenticated {
		t.Fatalf("within TTL: %v", err)
	}
	e.clock.Add(DefaultCacheTTL)
	if err := try(); err != nil {
		t.Fatalf("after TTL: %v", err)
	}
}

// TestCacheBound: a change made through one replica reaches another within
// CacheTTL, and at once on the replica that made it.
func TestCacheBound(t *testing.T) {
	ctx := context.Background()
	dsn, db1 := dbtest.OpenDSN(t, dbtest.SQLite)
	db2, err := dbtest.Connect(dbtest.SQLite, dsn)
	if err != nil {
		t.Fatal(err)
	}
	be := testBackend(t)
	clock := newClock(testStart)
	a := newService(t, db1, be, Config{Now: clock.Now})
	b := newService(t, db2, be, Config{Now: clock.Now})
	ak, oldSecret, err := a.CreateAccessKey(ctx, "", AdminPolicy())
	if err != nil {
		t.Fatal(err)
	}
	auth := func(s *Service, secret string) error {
		r, body := sign(t, jsonPost(`{}`, nil), ak.ID, secret, DefaultRegion, ServiceName, clock.Now())
		_, err := s.Authenticate(r, body)
		return err
	}
	if err := auth(b, oldSecret); err != nil {
		t.Fatal(err)
	}
	_, newSecret, err := a.RotateSecret(ctx, ak.ID)
	if err != nil {
		t.Fatal(err)
	}
	if newSecret == oldSecret || len(newSecret) != SecretLen {
		t.Fatalf("rotated secret %d chars, same=%v", len(newSecret), newSecret == oldSecret)
	}
	if err := auth(a, oldSecret); err != ErrUnauthenticated {
		t.Fatalf("old secret on rotating replica: %v", err)
	}
	if err := auth(a, newSecret); err != nil {
		t.Fatalf("new secret on rotating replica: %v", err)
	}
	// B still holds the old secret in its cache, for at most CacheTTL.
	if err := auth(b, oldSecret); err != nil {
		t.Fatalf("old secret on other replica within TTL: %v", err)
	}
	clock.Add(DefaultCacheTTL)
	if err := auth(b, oldSecret); err != ErrUnauthenticated {
		t.Fatalf("old secret on other replica after TTL: %v", err)
	}
	if err := auth(b, newSecret); err != nil {
		t.Fatalf("new secret on other replica after TTL: %v", err)
	}
	// Policy updates follow the same rule.
	deny := Policy{Statements: []Statement{{Effect: Allow, Actions: []string{"kms:Decrypt"}, Resources: []string{"key/k1"}}}}
	if _, err := a.UpdatePolicy(ctx, ak.ID, deny); err != nil {
		t.Fatal(err)
	}
	clock.Add(DefaultCacheTTL)
	r, body := sign(t, jsonPost(`{}`, nil), ak.ID, newSecret, DefaultRegion, ServiceName, clock.Now())
	p, err := b.Authenticate(r, body)
	if err != nil {
		t.Fatal(err)
	}
	if p.Policy.Allowed("kms:CreateKey") || !p.Policy.Allowed("kms:Decrypt", "key/k1") {
		t.Fatalf("policy not refreshed: %+v", p.Policy)
	}
}

// BenchmarkAuthenticate measures verifying a signed 100-byte POST with the
// secret cached.
func BenchmarkAuthenticate(b *testing.B) {
	for _, withNonce := range []bool{false, true} {
		b.Run(fmt.Sprintf("nonce=%v", withNonce), func(b *testing.B) {
			clock := newClock(testStart)
			s := newService(b, dbtest.Open(b, dbtest.SQLite), testBackend(b), Config{Now: clock.Now})
			ak, secret, err := s.CreateAccessKey(context.Background(), "", AdminPolicy())
			if err != nil {
				b.Fatal(err)
			}
			body := bytes.Repeat([]byte("a"), 100)
			reqs := make([]*http.Request, 0, 1)
			n := 1
			if withNonce {
				n = b.N
			}
			for i := 0; i < n; i++ {
				h := map[string]string{"Content-Type": "application/json"}
				if withNonce {
					h[NonceHeader] = fmt.Sprintf("bench-nonce-%016d", i)
				}
				r, _ := sign(b, clientRequest{method: "POST", url: testHost + "/v1/encrypt", body: body, headers: h}, ak.ID, secret, DefaultRegion, ServiceName, testStart)
				reqs = append(reqs, r)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Authenticate(reqs[i%len(reqs)], body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAuthenticateFailsClosed: HSM faults and damaged rows are server
// errors (not ErrUnauthenticated, so they are not mistaken for a client
// mistake) and never let a request through.
func TestAuthenticateFailsClosed(t *testing.T) {
	ctx := context.Background()
	clock := newClock(testStart)
	db := dbtest.Open(t, dbtest.SQLite)
	be, err := devhsm.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := newService(t, db, be, Config{Now: clock.Now})
	a, secretA, err := s.CreateAccessKey(ctx, "a", AdminPolicy())
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := s.CreateAccessKey(ctx, "b", AdminPolicy())
	if err != nil {
		t.Fatal(err)
	}
	try := func() error {
		r, body := sign(t, jsonPost(`{}`, nil), a.ID, secretA, DefaultRegion, ServiceName, clock.Now())
		_, err := s.Authenticate(r, body)
		return err
	}

	// B's wrapped secret copied into A's row does not unwrap: AAD binds it.
	var rowB accessKeyRow
	if err := db.Where("id = ?", b.ID).Take(&rowB).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Model(&accessKeyRow{}).Where("id = ?", a.ID).Update("wrapped_secret", rowB.WrappedSecret).Error; err != nil {
		t.Fatal(err)
	}
	if err := try(); !errors.Is(err, hsm.ErrDecrypt) || errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("swapped secret: err = %v, want hsm.ErrDecrypt", err)
	}

	// HSM gone: a key that is not cached cannot be checked.
	if _, _, err := s.RotateSecret(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	be.Close()
	if err := try(); err == nil || errors.Is(err, ErrUnauthenticated) || !errors.Is(err, hsm.ErrClosed) {
		t.Fatalf("closed HSM: err = %v, want hsm.ErrClosed", err)
	}
}

// TestConcurrentReplayAcrossReplicas: the same signed request sent at once
// to two replicas (separate pools on one database), many times each, is
// accepted exactly once.
func TestConcurrentReplayAcrossReplicas(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			dsn, db1 := dbtest.OpenDSN(t, d)
			db2, err := dbtest.Connect(d, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if sqlDB, err := db2.DB(); err == nil {
					sqlDB.Close()
				}
			})
			be := testBackend(t)
			clock := newClock(testStart)
			a := newService(t, db1, be, Config{Now: clock.Now, RequireNonce: true})
			b := newService(t, db2, be, Config{Now: clock.Now, RequireNonce: true})
			ak, secret, err := a.CreateAccessKey(context.Background(), "", AdminPolicy())
			if err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				r, body := sign(t, jsonPost(`{"x":1}`, map[string]string{NonceHeader: fmt.Sprintf("%s-race-%d", nonceA, round)}),
					ak.ID, secret, DefaultRegion, ServiceName, clock.Now())
				const each = 8
				results := make(chan error, 2*each)
				var wg sync.WaitGroup
				for i := range 2 * each {
					s := a
					if i%2 == 1 {
						s = b
					}
					req := r.Clone(context.Background())
					wg.Go(func() {
						_, err := s.Authenticate(req, body)
						results <- err
					})
				}
				wg.Wait()
				close(results)
				ok := 0
				for err := range results {
					switch {
					case err == nil:
						ok++
					case !errors.Is(err, ErrUnauthenticated):
						t.Errorf("round %d: err = %v, want nil or ErrUnauthenticated", round, err)
					}
				}
				if ok != 1 {
					t.Fatalf("round %d: %d of %d concurrent copies accepted, want exactly 1", round, ok, 2*each)
				}
			}
		})
	}
}
