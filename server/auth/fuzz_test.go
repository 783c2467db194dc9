package auth

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseAuthorization: the parser never panics, and whatever it accepts
// re-serialises to a canonical header that parses to the same value.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	f.Fuzz(func(t *testing.T, v string) {
		h, err := parseAuthorization(v)
		if err != nil {
			if h != nil {
				t.Fatal("non-nil header with an error")
			}
			return
		}
		if h.AccessKeyID == "" || len(h.Date) != 8 || len(h.Signature) != 64 || len(h.SignedHeaders) == 0 {
			t.Fatalf("accepted incomplete header %+v", h)
		}
		for i := 1; i < len(h.SignedHeaders); i++ {
			if h.SignedHeaders[i-1] >= h.SignedHeaders[i] {
				t.Fatalf("signed headers not strictly sorted: %v", h.SignedHeaders)
			}
		}
		c := h.canonical()
		h2, err := parseAuthorization(c)
		if err != nil {
			t.Fatalf("canonical form %q rejected: %v", c, err)
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("canonical form parses differently: %+v vs %+v", h, h2)
		}
		if strings.ContainsAny(c, "\r\n") {
			t.Fatalf("canonical form has a line break: %q", c)
		}
	})
}

// FuzzParsePolicy: the parser never panics, accepted documents validate,
// round-trip through JSON, and can be evaluated.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(`{"statements":[{"effect":"Allow","actions":["*"],"resources":["*"]}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := ParsePolicy(doc)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted policy does not validate: %v", err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := ParsePolicy(b)
		if err != nil {
			t.Fatalf("re-encoded policy %s rejected: %v", b, err)
		}
		if len(p.Statements) != len(p2.Statements) {
			t.Fatal("round trip changed the statements")
		}
		_ = p.Allowed("kms:Decrypt", "key/k", "alias/a")
		_ = p.Allowed("kms:CreateKey")
	})
}

// FuzzWildcardMatch compares wildcardMatch with a regular expression.
func FuzzWildcardMatch(f *testing.F) {
	f.Add("alias/orders-*", "alias/orders-eu")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		// regexp works on UTF-8 runes, wildcardMatch on bytes: compare on
		// valid UTF-8 only.
		if len(pattern) > 64 || len(s) > 256 || !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return
		}
		parts := strings.Split(pattern, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re := regexp.MustCompile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
		if got, want := wildcardMatch(pattern, s), re.MatchString(s); got != want {
			t.Fatalf("wildcardMatch(%q, %q) = %v, regexp says %v", pattern, s, got, want)
		}
	})
}
