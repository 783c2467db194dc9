package kmsclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// sigv4Case is one request to sign with both signers.
type sigv4Case struct {
	method, target string
	body           []byte
	headers        [][2]string // added with Header.Add, in order
	rawHeaders     [][2]string // assigned as is (non-canonical keys)
	nonce          bool
	token          string
	region         string
	at             time.Time
}

func (c sigv4Case) String() string {
	return fmt.Sprintf("%s %s body=%d headers=%q raw=%q nonce=%t token=%q region=%s at=%s",
		c.method, c.target, len(c.body), c.headers, c.rawHeaders, c.nonce, c.token, c.region, c.at.Format(time.RFC3339Nano))
}

// build makes the request as attempt does, plus the case's extra headers.
func (c sigv4Case) build(t testing.TB) (*http.Request, string) {
	t.Helper()
	var body io.Reader = http.NoBody
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, c.target, body)
	if err != nil {
		t.Fatalf("%v: %v", c, err)
	}
	sum := sha256.Sum256(c.body)
	hash := hex.EncodeToString(sum[:])
	if len(c.body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if c.nonce {
		req.Header.Set("X-Kms-Nonce", "0123456789abcdef0123456789abcdef")
	}
	for _, h := range c.headers {
		req.Header.Add(h[0], h[1])
	}
	for _, h := range c.rawHeaders {
		req.Header[h[0]] = append(req.Header[h[0]], h[1])
	}
	return req, hash
}

var (
	sigv4Endpoints = []string{
		"http://127.0.0.1:8080", "https://kms.internal:8443", "https://kms.internal:443", "http://kms.internal:80",
		"http://kms.internal", "https://[::1]:443", "http://[::1]:9000", "https://gw.example/kms", "HTTPS://Kms.Example:443",
	}
	sigv4Paths = []string{
		"/v1/keys", "/v1/keys/abc", "/v1/keys/alias%2Forders/encrypt", "/v1/aliases/alias%2Fa%20b",
		"/v1/keys/%C3%A4%E4%B8%AD", "/v1/keys/ä中/x", "/v1/keys/a+b", "/v1/keys/~tilde.-_", "/v1/keys/%7E%2B%25",
		"/v1/keys/a!b$c&d'e(f)g*h,i;j=k:l@m", "", "/", "/v1//keys", "/v1/keys/abc/",
	}
	sigv4Queries = []string{
		"", "limit=10", "b=2&a=1&a=0", "next=abc%2Fdef&limit=5", "x=%20y+z", "k=a;b&c=d", "&&a", "empty=&noval",
		"%E4%B8%AD=%2F&z=~", "a=1&a=1&a=0&A=2", "q=%25%26%3D", "m=ä+ö", "%zz=1&ok=2",
	}
	sigv4Extra = [][2]string{
		{"X-Custom", "  a   b  "}, {"X-Custom", "second"}, {"User-Agent", "kmsgo"}, {"Expect", "100-continue"},
		{"X-Amzn-Trace-Id", "Root=1"}, {"X-Request-Id", "\tx  y\t"}, {"Content-Md5", "abc="}, {"X-Empty", ""},
		{"Authorization", "stale"}, {"X-Amz-Date", "19990101T000000Z"}, {"Content-Length", "99"},
	}
	sigv4Raw = [][2]string{
		{"x-lower", "v"}, {"user-agent", "lowercase keys are signed by the SDK"}, {"host", "other.example"}, {"content-length", "7"},
	}
	sigv4Regions = []string{"local", "us-east-1", "eu-west-3", "cn-north-1"}
	sigv4Methods = []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
)

func randomSigv4Case(r *rand.Rand) sigv4Case {
	c := sigv4Case{
		method: sigv4Methods[r.IntN(len(sigv4Methods))],
		region: sigv4Regions[r.IntN(len(sigv4Regions))],
		nonce:  r.IntN(2) == 0,
	}
	c.target = sigv4Endpoints[r.IntN(len(sigv4Endpoints))] + sigv4Paths[r.IntN(len(sigv4Paths))]
	if q := sigv4Queries[r.IntN(len(sigv4Queries))]; q != "" {
		c.target += "?" + q
	}
	switch r.IntN(3) {
	case 1:
		c.body = []byte(`{"key_id":"alias/orders","plaintext":"AAEC"}`)
	case 2:
		c.body = make([]byte, r.IntN(5000))
	}
	for range r.IntN(4) {
		c.headers = append(c.headers, sigv4Extra[r.IntN(len(sigv4Extra))])
	}
	if r.IntN(4) == 0 {
		c.rawHeaders = append(c.rawHeaders, sigv4Raw[r.IntN(len(sigv4Raw))])
	}
	if r.IntN(3) == 0 {
		c.token = "FwoGZXIvYXdzE" + strings.Repeat("x", r.IntN(40)) + "=="
	}
	// Times over several days, including just before and after midnight
	// UTC, and in a non-UTC zone.
	base := time.Date(2026, 12, 1, 23, 59, 58, 0, time.UTC)
	c.at = base.Add(time.Duration(r.Int64N(int64(72 * time.Hour))))
	if r.IntN(5) == 0 {
		c.at = base.Add(time.Duration(r.IntN(5)) * time.Second)
	}
	if r.IntN(4) == 0 {
		c.at = c.at.In(time.FixedZone("UTC+8", 8*3600))
	}
	if r.IntN(20) == 0 {
		c.at = time.Date(1999+r.IntN(60), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), 0, time.UTC)
	}
	return c
}

// TestSigv4MatchesSDK: for many requests, the lean signer produces the same
// Authorization (and the same X-Amz-Date, security token, Host and query)
// as aws-sdk-go-v2's signer, byte for byte.
func TestSigv4MatchesSDK(t *testing.T) {
	const ak, sk = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	sdk := v4.NewSigner()
	// One signer per session token, shared by all cases, so that its key
	// cache sees days and regions change.
	lean := map[string]*sigv4Signer{}
	r := rand.New(rand.NewPCG(1, 2))
	cases := []sigv4Case{
		{method: "POST", target: "http://127.0.0.1:8080/v1/keys/alias%2Forders/encrypt", body: []byte(`{}`), nonce: true, region: "local", at: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)},
		{method: "GET", target: "https://kms.internal/v1/keys?limit=2&after=a%2Fb", region: "us-east-1", at: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC), token: "tok"},
	}
	for range 3000 {
		cases = append(cases, randomSigv4Case(r))
	}
	for i, c := range cases {
		want, wantHash := c.build(t)
		got, gotHash := c.build(t)
		if wantHash != gotHash {
			t.Fatal("payload hash differs")
		}
		if err := sdk.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk, SessionToken: c.token}, want, wantHash, "kms", c.region, c.at); err != nil {
			t.Fatalf("case %d %v: SDK: %v", i, c, err)
		}
		s := lean[c.token]
		if s == nil {
			s = &sigv4Signer{accessKeyID: ak, secret: sk, sessionToken: c.token}
			lean[c.token] = s
		}
		s.sign(got, gotHash, "kms", c.region, c.at)
		for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
			if w, g := want.Header.Values(h), got.Header.Values(h); strings.Join(w, "\x00") != strings.Join(g, "\x00") || len(w) != len(g) {
				t.Fatalf("case %d %v:\n%s: sdk %q\n%s: got %q", i, c, h, w, h, g)
			}
		}
		if want.Host != got.Host || want.URL.String() != got.URL.String() {
			t.Fatalf("case %d %v: request differs: sdk host %q url %q, got host %q url %q", i, c, want.Host, want.URL, got.Host, got.URL)
		}
	}
	if len(lean) < 2 {
		t.Fatal("no case with a session token")
	}
}

// TestSigv4KeyCache: the signing key is derived once per (day, region,
// service) and re-derived when any of them changes.
func TestSigv4KeyCache(t *testing.T) {
	s := &sigv4Signer{accessKeyID: "AK", secret: "SK"}
	k1 := s.signingKey([]byte("20261202"), "local", "kms")
	if k2 := s.signingKey([]byte("20261202"), "local", "kms"); k2 != k1 {
		t.Fatal("same day re-derived the key")
	}
	for _, next := range []struct{ day, region, service string }{
		{"20261203", "local", "kms"}, {"20261203", "us-east-1", "kms"}, {"20261203", "us-east-1", "s3"},
	} {
		k := s.signingKey([]byte(next.day), next.region, next.service)
		if k == k1 || string(k.day[:]) != next.day || k.region != next.region || k.service != next.service {
			t.Fatalf("%v: stale key %+v", next, k)
		}
		if want := next.day + "/" + next.region + "/" + next.service + "/aws4_request"; k.scope != want || k.credential != "AK/"+want {
			t.Fatalf("scope %q credential %q", k.scope, k.credential)
		}
		k1 = k
	}
}

// TestSigv4Concurrent signs from many goroutines across a day change; run
// with -race.
func TestSigv4Concurrent(t *testing.T) {
	const ak, sk = "AK", "SK"
	s := &sigv4Signer{accessKeyID: ak, secret: sk}
	sdk := v4.NewSigner()
	base := time.Date(2026, 12, 2, 23, 59, 59, 0, time.UTC)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 50 {
				at := base.Add(time.Duration((g+i)%3) * time.Second)
				c := sigv4Case{method: "POST", target: "http://127.0.0.1:1/v1/keys/k/encrypt", body: []byte("{}"), region: "local", at: at}
				want, h := c.build(t)
				got, _ := c.build(t)
				_ = sdk.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, want, h, "kms", "local", at)
				s.sign(got, h, "kms", "local", at)
				if want.Header.Get("Authorization") != got.Header.Get("Authorization") {
					errs <- fmt.Errorf("at %s: %q != %q", at, got.Header.Get("Authorization"), want.Header.Get("Authorization"))
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func benchSignCase(b *testing.B) (sigv4Case, func() (*http.Request, string)) {
	c := sigv4Case{method: "POST", target: "http://127.0.0.1:8080/v1/keys/alias%2Forders/encrypt",
		body:  []byte(`{"key_id":"alias/orders","plaintext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-Pw==","encryption_context":{"a":"b"}}`),
		nonce: true, region: "local", at: time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)}
	return c, func() (*http.Request, string) { return c.build(b) }
}

// BenchmarkSignSDK and BenchmarkSignLean sign the same Encrypt request
// (request construction included in both, so compare the difference).
func BenchmarkSignSDK(b *testing.B) {
	c, mk := benchSignCase(b)
	s := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
	b.ReportAllocs()
	for b.Loop() {
		req, h := mk()
		if err := s.SignHTTP(context.Background(), creds, req, h, "kms", c.region, c.at); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignLean(b *testing.B) {
	c, mk := benchSignCase(b)
	s := &sigv4Signer{accessKeyID: testAK, secret: testSK}
	b.ReportAllocs()
	for b.Loop() {
		req, h := mk()
		s.sign(req, h, "kms", c.region, c.at)
	}
}

// BenchmarkSignBuildOnly is the request construction both include.
func BenchmarkSignBuildOnly(b *testing.B) {
	_, mk := benchSignCase(b)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = mk()
	}
}

// FuzzSigv4MatchesSDK: for any host, path, query and header value that
// net/http can send, the lean signer's Authorization is aws-sdk-go-v2's,
// byte for byte. It checks the canonicalization of starter/sigv4 (host and
// default port, path and query escaping, header value spaces) against the
// SDK through the SDK's public signer.
func FuzzSigv4MatchesSDK(f *testing.F) {
	f.Add("https", "kms.internal:443", "/v1/keys/alias%2Forders/encrypt", "b=2&a=1&a=0", "  a   b  ")
	f.Add("http", "[::1]:80", "/v1/keys/ä中 x", "x=%20y+z&%E4%B8%AD=%2F&empty=&noval", "\tx  y\t")
	f.Add("HTTP", "h:", "", "", "")
	const ak, sk = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	sdk := v4.NewSigner()
	at := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, scheme, host, path, query, value string) {
		target := scheme + "://" + host + path
		if query != "" {
			target += "?" + query
		}
		if _, err := http.NewRequest(http.MethodPost, target, nil); err != nil {
			return // not a request net/http would send
		}
		c := sigv4Case{method: http.MethodPost, target: target, body: []byte(`{}`), region: "local", at: at,
			headers: [][2]string{{"X-Kms-Note", value}}}
		want, hash := c.build(t)
		got, _ := c.build(t)
		if want.Header.Get("X-Kms-Note") != value {
			return // a value net/http would not carry as given
		}
		if err := sdk.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, want, hash, "kms", "local", at); err != nil {
			return
		}
		(&sigv4Signer{accessKeyID: ak, secret: sk}).sign(got, hash, "kms", "local", at)
		if w, g := want.Header.Get("Authorization"), got.Header.Get("Authorization"); w != g {
			t.Fatalf("%s (X-Kms-Note %q):\nSDK  %s\nlean %s", target, value, w, g)
		}
		if want.Host != got.Host || want.URL.String() != got.URL.String() {
			t.Fatalf("%s: SDK host %q url %q, lean host %q url %q", target, want.Host, want.URL, got.Host, got.URL)
		}
	})
}
