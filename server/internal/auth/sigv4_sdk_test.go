package auth

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var emptyHash = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// sdkRebuild is the verifier's former implementation, kept as the
// reference: a request carrying only what r signed (method, path, query,
// host and the SignedHeaders), for aws-sdk-go-v2's signer to sign again.
func sdkRebuild(r *http.Request, h *authHeader, body []byte) (*http.Request, error) {
	if !h.signs("host") || r.Host == "" {
		return nil, fmt.Errorf("%w: host", ErrUnauthenticated)
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed query string", ErrUnauthenticated)
	}
	for _, v := range query {
		if len(v) > 1 {
			return nil, fmt.Errorf("%w: repeated query parameter", ErrUnauthenticated)
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	req := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host:   r.Host,
		Header: make(http.Header, len(h.SignedHeaders)),
	}
	for _, name := range h.SignedHeaders {
		switch {
		case name == "host":
		case name == "content-length":
			if r.ContentLength <= 0 || r.ContentLength != int64(len(body)) {
				return nil, fmt.Errorf("%w: content-length", ErrUnauthenticated)
			}
			req.ContentLength = r.ContentLength
		case unsignable[name]:
			return nil, fmt.Errorf("%w: header %s cannot be signed", ErrUnauthenticated, name)
		default:
			key := textproto.CanonicalMIMEHeaderKey(name)
			vals := r.Header.Values(key)
			if len(vals) == 0 {
				return nil, fmt.Errorf("%w: signed header %s is missing", ErrUnauthenticated, name)
			}
			req.Header[key] = vals
		}
	}
	return req, nil
}

// sdkSignature is the signature aws-sdk-go-v2's signer gives the rebuilt r.
func sdkSignature(t *testing.T, r *http.Request, h *authHeader, body []byte, secret string) (string, error) {
	req, err := sdkRebuild(r, h, body)
	if err != nil {
		return "", err
	}
	at, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: h.AccessKeyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), h.Service, h.Region, at); err != nil {
		t.Fatal(err)
	}
	got, err := parseAuthorization(req.Header.Get("Authorization"))
	if err != nil {
		t.Fatalf("SDK header: %v", err)
	}
	if got.signedRaw != h.signedRaw {
		t.Fatalf("SDK signed %q, request lists %q", got.signedRaw, h.signedRaw)
	}
	return got.Signature, nil
}

// directSignature is the verifier's own computation for r.
func directSignature(s *Service, e *cacheEntry, r *http.Request, h *authHeader, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	canon, _, err := canonicalRequest(nil, nil, r, h, body, hex.EncodeToString(sum[:]))
	if err != nil {
		return "", err
	}
	sig := s.signature(e, h, r.Header.Get("X-Amz-Date"), canon, &sigBuf{})
	return string(sig[:]), nil
}

// TestSigV4MatchesSDK checks the direct verifier against aws-sdk-go-v2's
// signer, an independent implementation: each request is signed by the
// SDK as a client signs it, sent through the HTTP/1.1 wire format, then
// optionally changed in transit. The verifier's signature must equal the
// SDK's for the received request (same errors for requests neither can
// verify), and must equal the client's signature exactly when the request
// arrived as signed or in an equivalent form.
func TestSigV4MatchesSDK(t *testing.T) {
	const ak, secret = "AKKMSTESTDIFFERENTIAL", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"
	s := &Service{region: DefaultRegion, service: ServiceName}
	at := testStart
	body := []byte(`{"key_id":"alias/x","plaintext":"AAAA"}`)
	cases := []struct {
		name    string
		method  string
		url     string
		body    []byte
		hdr     map[string]string
		edit    func(r *http.Request)
		same    bool // the received request must verify with the client's signature
		wantErr bool // both must refuse it
	}{
		{name: "post vanilla", method: "POST", url: "http://kms.local:8080/v1/encrypt", body: body, same: true},
		{name: "get no body", method: "GET", url: "http://kms.local:8080/v1/keys", same: true},
		{name: "default http port", method: "POST", url: "http://kms.local:80/v1/encrypt", body: body, same: true},
		{name: "ipv6 host", method: "GET", url: "http://[::1]:9000/v1/keys", same: true},
		{name: "ipv6 host default port", method: "GET", url: "http://[::1]:80/v1/keys", same: true},
		{name: "ipv6 host no port", method: "GET", url: "http://[::1]/v1/keys", same: true},
		{name: "ipv6 host no port https", method: "GET", url: "https://[::1]/v1/keys", same: true,
			edit: func(r *http.Request) { r.TLS = &tls.ConnectionState{} }},
		{name: "host with empty port", method: "GET", url: "http://h:/v1/keys", same: true},
		{name: "https", method: "POST", url: "https://kms.local/v1/encrypt", body: body, same: true,
			edit: func(r *http.Request) { r.TLS = &tls.ConnectionState{} }},
		{name: "https port 443", method: "POST", url: "https://kms.local:443/v1/encrypt", body: body, same: true,
			edit: func(r *http.Request) { r.TLS = &tls.ConnectionState{} }},
		{name: "query sorted", method: "GET", url: "http://h/v1/keys?z=1&a=2&m=&k", same: true},
		{name: "query reserved chars", method: "GET", url: "http://h/v1/keys?q=a%2Bb%20c%26d%3D%2F~._-&x=%E2%9C%93", same: true},
		{name: "query plus is space", method: "GET", url: "http://h/v1/keys?q=a+b", same: true},
		{name: "query key needs escaping", method: "GET", url: "http://h/v1/keys?%C3%A9t%C3%A9=%E6%97%A5", same: true},
		{name: "query reordered", method: "GET", url: "http://h/v1/keys?b=1&a=2", same: true,
			edit: func(r *http.Request) { r.URL.RawQuery = "a=2&b=1" }},
		{name: "query value changed", method: "GET", url: "http://h/v1/keys?a=1",
			edit: func(r *http.Request) { r.URL.RawQuery = "a=2" }},
		{name: "query repeated key", method: "GET", url: "http://h/v1/keys?a=1&a=2", wantErr: true},
		{name: "query bad escape", method: "GET", url: "http://h/v1/keys?a=1",
			edit: func(r *http.Request) { r.URL.RawQuery = "a=%zz" }, wantErr: true},
		{name: "query semicolon", method: "GET", url: "http://h/v1/keys?a=1",
			edit: func(r *http.Request) { r.URL.RawQuery = "a=1;b=2" }, wantErr: true},
		{name: "unicode path", method: "GET", url: "http://h/v1/aliases/%E6%97%A5%E6%9C%AC/caf%C3%A9", same: true},
		{name: "encoded slash and space", method: "GET", url: "http://h/v1/aliases/a%2Fb%20c", same: true},
		{name: "reserved path chars", method: "GET", url: "http://h/v1/a:b@c!$&'()*+,;=d", same: true},
		{name: "path with tilde and dot", method: "GET", url: "http://h/v1/~x/./y", same: true},
		{name: "empty path", method: "GET", url: "http://h", same: true},
		{name: "path changed", method: "GET", url: "http://h/v1/keys/abc",
			edit: func(r *http.Request) { r.URL.Path = "/v1/keys/abd" }},
		{name: "header spaces", method: "POST", url: "http://h/v1/encrypt", body: body, same: true,
			hdr: map[string]string{"X-Kms-Tenant": "  a   b  c ", "X-Custom": "\tx  \t y "}},
		{name: "header spaces changed in transit", method: "POST", url: "http://h/v1/encrypt", body: body, same: true,
			hdr:  map[string]string{"X-Kms-Tenant": "a b"},
			edit: func(r *http.Request) { r.Header.Set("X-Kms-Tenant", "  a    b ") }},
		{name: "header value changed", method: "POST", url: "http://h/v1/encrypt", body: body,
			hdr:  map[string]string{"X-Kms-Tenant": "a"},
			edit: func(r *http.Request) { r.Header.Set("X-Kms-Tenant", "b") }},
		{name: "header second value added", method: "POST", url: "http://h/v1/encrypt", body: body,
			hdr:  map[string]string{"X-Kms-Tenant": "a"},
			edit: func(r *http.Request) { r.Header.Add("X-Kms-Tenant", "b") }},
		{name: "header unicode value", method: "POST", url: "http://h/v1/encrypt", body: body, same: true,
			hdr: map[string]string{"X-Kms-Note": "caf\u00e9 \u65e5\u672c"}},
		{name: "header underscore name", method: "POST", url: "http://h/v1/encrypt", body: body, same: true,
			hdr: map[string]string{"x_odd_name": "v"}},
		{name: "sdk headers", method: "POST", url: "http://h/v1/encrypt", body: body, same: true,
			hdr: map[string]string{"Content-Type": "application/json", "X-Amz-Target": "TrentService.Encrypt",
				"Amz-Sdk-Invocation-Id": "0b0e9f0e", "Amz-Sdk-Request": "attempt=1; max=3", "Accept": "*/*",
				"X-Kms-Nonce": "abcdefghijklmnop"}},
		{name: "host changed", method: "GET", url: "http://h/v1/keys",
			edit: func(r *http.Request) { r.Host = "evil" }},
		{name: "method changed", method: "POST", url: "http://h/v1/encrypt", body: body,
			edit: func(r *http.Request) { r.Method = "PUT" }},
		{name: "content-length removed", method: "POST", url: "http://h/v1/encrypt", body: body,
			edit: func(r *http.Request) { r.ContentLength = -1 }, wantErr: true},
		{name: "host empty", method: "GET", url: "http://h/v1/keys",
			edit: func(r *http.Request) { r.Host = "" }, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, got := sign(t, clientRequest{method: c.method, url: c.url, body: c.body, headers: c.hdr}, ak, secret, DefaultRegion, ServiceName, at)
			h, err := parseAuthorization(r.Header.Get("Authorization"))
			if err != nil {
				t.Fatal(err)
			}
			clientSig := h.Signature
			if c.edit != nil {
				c.edit(r)
			}
			e := &cacheEntry{secret: secret}
			want, werr := sdkSignature(t, r, h, got, secret)
			have, herr := directSignature(s, e, r, h, got)
			if (werr != nil) != (herr != nil) || (werr != nil) != c.wantErr {
				t.Fatalf("errors: sdk %v, direct %v, want error %v", werr, herr, c.wantErr)
			}
			if have != want {
				t.Fatalf("direct signature %s, SDK %s", have, want)
			}
			if werr == nil && (have == clientSig) != c.same {
				t.Fatalf("verifies with the client's signature: %v, want %v", have == clientSig, c.same)
			}
			// The constant-time comparison agrees.
			if werr == nil {
				sum := sha256.Sum256(got)
				canon, _, _ := canonicalRequest(nil, nil, r, h, got, hex.EncodeToString(sum[:]))
				if ok := s.signatureMatches(e, h, r.Header.Get("X-Amz-Date"), canon, &sigBuf{}); ok != c.same {
					t.Fatalf("signatureMatches = %v, want %v", ok, c.same)
				}
			}
		})
	}
}

// TestSigningKeyCache: the derived key is cached per date and recomputed
// when the date changes.
func TestSigningKeyCache(t *testing.T) {
	s := &Service{region: "eu-1", service: ServiceName}
	e := &cacheEntry{secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	want := func(date string) []byte {
		k := hmacSum([]byte("AWS4"+e.secret), date)
		for _, p := range []string{"eu-1", ServiceName, scopeTerminator} {
			k = hmacSum(k, p)
		}
		return k
	}
	for _, date := range []string{"20260314", "20260314", "20260315", "20260314"} {
		k := s.signingKey(e, date)
		if string(k.key[:]) != string(want(date)) || e.derived.Load().date != date {
			t.Fatalf("date %s: wrong key or cache", date)
		}
		// The pooled MACs start from a clean state every time.
		for i := range 3 {
			m := k.mac()
			m.Write([]byte{byte(i)})
			got := m.Sum(nil)
			k.macs.Put(m)
			if string(got) != string(hmacSum(k.key[:], string([]byte{byte(i)}))) {
				t.Fatalf("pooled MAC %d differs", i)
			}
		}
	}
}
