package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/textproto"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kmsgo/kmsgo/server/dbtest"
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

// FuzzAuthenticate starts from a validly signed request and replaces its
// Authorization header, one header, the query and the body with fuzzed
// values (of any size). Authenticate must never panic, must refuse every
// change to something signed, and must accept changes to unsigned headers
// and reorderings of the query.
func FuzzAuthenticate(f *testing.F) {
	const (
		origQuery = "limit=10&alias=alias%2Forders"
		origBody  = `{"key_id":"alias/orders","plaintext":"aGVsbG8="}`
	)
	f.Add("", "X-Trace", "abc", origQuery, []byte(origBody))
	f.Add("", "Content-Type", "text/plain", origQuery, []byte(origBody))
	f.Add("AWS4-HMAC-SHA256 Credential=AKKMSAAAAAAAAAAAAAAAA/20260314/local/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("0", 64), "", "", origQuery, []byte(origBody))
	f.Add("", "X-Big", strings.Repeat("b", 64<<10), "alias=alias%2Forders&limit=10", []byte(origBody))
	// Set up once: cleanups registered on f run after the last iteration.
	clock := newClock(testStart)
	s := newService(f, dbtest.Open(f, dbtest.SQLite), testBackend(f), Config{Now: clock.Now})
	ak, secret, err := s.CreateAccessKey(context.Background(), "fuzz", AdminPolicy())
	if err != nil {
		f.Fatal(err)
	}
	e := &testEnv{s: s, clock: clock, ak: ak.ID, secret: secret}
	f.Fuzz(func(t *testing.T, authz, hname, hval, query string, body []byte) {
		cr := jsonPost(origBody, map[string]string{"X-Kms-Tenant": "acme"})
		cr.url = testHost + "/v1/encrypt?" + origQuery
		r, _ := e.sign(t, cr)
		signed, err := parseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}

		mustFail, mustPass := false, true
		if authz != "" && authz != r.Header.Get("Authorization") {
			r.Header.Set("Authorization", authz)
			mustFail = true
		}
		if key := textproto.CanonicalMIMEHeaderKey(hname); hname != "" && isHeaderToken(strings.ToLower(hname)) {
			old := r.Header.Values(key)
			r.Header.Set(key, hval)
			lower := strings.ToLower(key)
			switch {
			case lower == "host" || lower == "content-length" || lower == "authorization":
				mustPass = false // not read from the header map, or covered above
			case signed.signs(lower) || lower == "x-kms-nonce":
				if len(old) == 1 && strings.Join(strings.Fields(old[0]), " ") == strings.Join(strings.Fields(hval), " ") {
					mustPass = false // equal after SigV4 space trimming: no claim
				} else {
					mustFail = true
				}
			}
		}
		if query != origQuery {
			r.URL.RawQuery = query
			got, err := url.ParseQuery(query)
			want, _ := url.ParseQuery(origQuery)
			if err != nil || !reflect.DeepEqual(got, want) {
				mustFail = true
			}
		}
		if !bytes.Equal(body, []byte(origBody)) {
			mustFail = true
		}

		p, err := e.s.Authenticate(r, body)
		switch {
		case mustFail && err == nil:
			t.Fatalf("tampered request accepted as %s", p.AccessKeyID)
		case mustFail && !errors.Is(err, ErrUnauthenticated):
			t.Fatalf("tampered request: err = %v, want ErrUnauthenticated", err)
		case !mustFail && mustPass && err != nil:
			t.Fatalf("equivalent request rejected: %v", err)
		}
	})
}
