package auth

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestRebuildRejects covers requests whose SignedHeaders cannot be
// reproduced faithfully; each must fail before any key lookup.
func TestRebuildRejects(t *testing.T) {
	const sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		name   string
		signed string
		edit   func(r *http.Request)
		body   string
	}{
		{"host not signed", "x-amz-date", nil, ""},
		{"user-agent signed", "host;user-agent;x-amz-date", nil, ""},
		{"transfer-encoding signed", "host;transfer-encoding;x-amz-date", nil, ""},
		{"signed header missing", "host;x-amz-date;x-custom", nil, ""},
		{"content-length signed, chunked body", "content-length;host;x-amz-date", func(r *http.Request) { r.ContentLength = -1 }, "abc"},
		{"content-length signed, body differs", "content-length;host;x-amz-date", func(r *http.Request) { r.ContentLength = 4 }, "abc"},
		{"malformed query", "host;x-amz-date", func(r *http.Request) { r.URL.RawQuery = "a=%zz" }, ""},
		{"no host", "host;x-amz-date", func(r *http.Request) { r.Host = "" }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest("POST", "http://kms.example/v1/x", strings.NewReader(c.body))
			r.Header.Set("X-Amz-Date", "20260314T150926Z")
			r.Header.Set("User-Agent", "test")
			if c.edit != nil {
				c.edit(r)
			}
			h, err := parseAuthorization("AWS4-HMAC-SHA256 Credential=AK/20260314/local/kms/aws4_request, SignedHeaders=" + c.signed + ", Signature=" + sig)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := canonicalRequest(nil, nil, r, h, []byte(c.body), emptyHash); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("err = %v, want ErrUnauthenticated", err)
			}
		})
	}
}

func TestParseAuthorizationTable(t *testing.T) {
	const sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	good := "AWS4-HMAC-SHA256 Credential=AKKMSABCDEFGHIJKLMNOP/20260314/local/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig
	h, err := parseAuthorization(good)
	if err != nil {
		t.Fatal(err)
	}
	if h.AccessKeyID != "AKKMSABCDEFGHIJKLMNOP" || h.Date != "20260314" || h.Region != "local" || h.Service != "kms" ||
		strings.Join(h.SignedHeaders, ";") != "host;x-amz-date" || h.Signature != sig || h.canonical() != good {
		t.Fatalf("parsed %+v", h)
	}
	bad := []string{
		"",
		"AWS4-HMAC-SHA512 Credential=A/20260314/local/kms/aws4_request, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=A/20260314/local/kms/aws4_request, SignedHeaders=host",
		"AWS4-HMAC-SHA256 Credential=A/20260314/local/kms/aws4_request, SignedHeaders=host, Signature=" + sig + ", Extra=1",
		"AWS4-HMAC-SHA256 Credential=A/2026031/local/kms/aws4_request, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=A/20260314/local/kms/aws5_request, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=/20260314/local/kms/aws4_request, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=A-B/20260314/local/kms/aws4_request, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=A/20260314/Local/kms/aws4_request, SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=A/20260314/local/kms/aws4_request, SignedHeaders=Host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=A/20260314/local/kms/aws4_request, SignedHeaders=host;host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=A/20260314/local/kms/aws4_request, SignedHeaders=x;host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Credential=A/20260314/local/kms/aws4_request, SignedHeaders=host, Signature=" + sig[:63],
		"AWS4-HMAC-SHA256 Credential=A/20260314/local/kms/aws4_request, SignedHeaders=host, Signature=" + strings.ToUpper(sig),
		"AWS4-HMAC-SHA256 Credential=A/20260314/local/kms/aws4_request, SignedHeaders=host, Signature=" + sig + ", Signature=" + sig,
		"AWS4-HMAC-SHA256 " + strings.Repeat("x", maxAuthorizationLen),
	}
	for _, v := range bad {
		if _, err := parseAuthorization(v); err == nil {
			t.Errorf("accepted %q", v)
		}
	}
}
