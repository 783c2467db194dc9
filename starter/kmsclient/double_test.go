package kmsclient

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testAK     = "AKTESTCLIENT0001"
	testSK     = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
	testRegion = "local"
)

// kmsdDouble is a TEST DOUBLE of kmsd for transport behaviour only: it
// verifies each request's SigV4 signature with the aws-sdk-go-v2 signer
// (the way FIELD_NOTES describes server-side verification), records the
// request and hands it to a per-test handler. It knows nothing about keys.
// End-to-end tests against the real kmsd live elsewhere.
type kmsdDouble struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []recorded
	handler func(w http.ResponseWriter, r *http.Request, body []byte, attempt int)
}

// recorded is one request as the double saw it.
type recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
	SignedHeaders          []string
}

func newDouble(t *testing.T, h func(w http.ResponseWriter, r *http.Request, body []byte, attempt int)) *kmsdDouble {
	t.Helper()
	d := &kmsdDouble{t: t, handler: h}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *kmsdDouble) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Request-Id", fmt.Sprintf("req-%d", len(d.requests())+1))
	signed, err := verifySigV4(r, body, testAK, testSK, testRegion, time.Now())
	d.mu.Lock()
	attempt := len(d.reqs)
	d.reqs = append(d.reqs, recorded{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body, SignedHeaders: signed})
	d.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusUnauthorized, CodeUnauthenticated, err.Error())
		return
	}
	d.handler(w, r, body, attempt)
}

func (d *kmsdDouble) requests() []recorded {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reqs)
}

func (d *kmsdDouble) count() int { return len(d.requests()) }

// client returns a Client for the double with fast retries.
func (d *kmsdDouble) client(t *testing.T, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{Endpoint: d.srv.URL, AccessKeyID: testAK, SecretAccessKey: testSK,
		RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg, "request_id": w.Header().Get("X-Request-Id")}})
}

// verifySigV4 checks r the way a kmsd would: parse Authorization, rebuild a
// request with only the signed headers, sign it with the same date and the
// hash of the received body, compare in constant time. It returns the
// signed header names.
func verifySigV4(r *http.Request, body []byte, ak, sk, region string, now time.Time) ([]string, error) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return nil, errors.New("no SigV4 Authorization header")
	}
	var cred, signedStr string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signedStr = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[0] != ak || scope[2] != region || scope[3] != "kms" || scope[4] != "aws4_request" {
		return nil, fmt.Errorf("bad credential scope %q", cred)
	}
	signed := strings.Split(signedStr, ";")
	for _, must := range []string{"host", "x-amz-date", "x-amz-content-sha256"} {
		if !slices.Contains(signed, must) {
			return nil, fmt.Errorf("%s not signed", must)
		}
	}
	if r.Header.Get("X-Kms-Nonce") != "" && !slices.Contains(signed, "x-kms-nonce") {
		return nil, errors.New("nonce present but not signed")
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if r.Header.Get("X-Amz-Content-Sha256") != hash {
		return nil, errors.New("body hash mismatch")
	}
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || date.Format("20060102") != scope[1] {
		return nil, errors.New("bad X-Amz-Date")
	}
	if d := now.Sub(date); d > 5*time.Minute || d < -5*time.Minute {
		return nil, errors.New("clock skew")
	}
	re, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return nil, err
	}
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			re.ContentLength = r.ContentLength
		default:
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	re.Header.Del("Authorization")
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, re, hash, "kms", region, date); err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(re.Header.Get("Authorization")), []byte(auth)) != 1 {
		return nil, errors.New("signature mismatch")
	}
	return signed, nil
}
