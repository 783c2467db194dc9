package auth

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func mustPolicy(t *testing.T, doc string) Policy {
	t.Helper()
	p, err := ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatalf("ParsePolicy(%s): %v", doc, err)
	}
	return p
}

func TestPolicyAllowed(t *testing.T) {
	orders := `{"statements":[{"effect":"Allow","actions":["kms:Decrypt","kms:GenerateDataKey*"],
		"resources":["alias/orders-*","key/9f1c"]}]}`
	denyOne := `{"statements":[
		{"effect":"Allow","actions":["*"],"resources":["*"]},
		{"effect":"Deny","actions":["kms:Decrypt"],"resources":["alias/secret-*"]}]}`
	type check struct {
		action    string
		resources []string
		want      bool
	}
	cases := []struct {
		name   string
		doc    string
		checks []check
	}{
		{"empty denies everything", `{"statements":[]}`, []check{
			{"kms:Decrypt", []string{"key/a"}, false},
			{"kms:CreateKey", nil, false},
		}},
		{"admin allows everything", `{"statements":[{"effect":"Allow","actions":["*"],"resources":["*"]}]}`, []check{
			{"kms:Decrypt", []string{"key/a", "alias/x"}, true},
			{"kms:CreateKey", nil, true},
			{"kms:ReadAudit", nil, true},
		}},
		{"exact and wildcard actions", orders, []check{
			{"kms:Decrypt", []string{"key/9f1c"}, true},
			{"kms:GenerateDataKey", []string{"key/9f1c"}, true},
			{"kms:GenerateDataKeyWithoutPlaintext", []string{"key/9f1c"}, true},
			{"kms:generatedatakey", []string{"key/9f1c"}, true}, // actions are case-insensitive
			{"kms:Encrypt", []string{"key/9f1c"}, false},
			{"kms:DecryptX", []string{"key/9f1c"}, false},
		}},
		{"resources by key or any alias", orders, []check{
			{"kms:Decrypt", []string{"key/other", "alias/orders-eu"}, true},
			{"kms:Decrypt", []string{"key/other", "alias/billing", "alias/orders-"}, true},
			{"kms:Decrypt", []string{"key/other", "alias/orders"}, false},
			{"kms:Decrypt", []string{"key/9F1C"}, false}, // resources are case-sensitive
			{"kms:Decrypt", []string{"key/9f1c2"}, false},
			{"kms:Decrypt", nil, false}, // keyless action needs resource "*"
		}},
		{"explicit deny wins", denyOne, []check{
			{"kms:Decrypt", []string{"key/a"}, true},
			{"kms:Decrypt", []string{"key/a", "alias/secret-db"}, false},
			{"kms:Encrypt", []string{"key/a", "alias/secret-db"}, true},
			{"kms:CreateKey", nil, true},
		}},
		{"deny without allow", `{"statements":[{"effect":"Deny","actions":["*"],"resources":["*"]}]}`, []check{
			{"kms:Decrypt", []string{"key/a"}, false},
		}},
		{"deny on everything blocks keyless", `{"statements":[
			{"effect":"Allow","actions":["kms:*"],"resources":["*"]},
			{"effect":"Deny","actions":["kms:Create*"],"resources":["*"]}]}`, []check{
			{"kms:CreateKey", nil, false},
			{"kms:CreateAlias", []string{"key/a", "alias/b"}, false},
			{"kms:ListKeys", nil, true},
		}},
		{"star in the middle", `{"statements":[{"effect":"Allow","actions":["kms:*Key"],"resources":["key/*-prod-*"]}]}`, []check{
			{"kms:DescribeKey", []string{"key/a-prod-1"}, true},
			{"kms:DescribeKey", []string{"key/-prod-"}, true},
			{"kms:DescribeKey", []string{"key/a-dev-1"}, false},
			{"kms:DescribeKeys", []string{"key/a-prod-1"}, false},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustPolicy(t, c.doc)
			for _, ch := range c.checks {
				if got := p.Allowed(ch.action, ch.resources...); got != ch.want {
					t.Errorf("Allowed(%s, %v) = %v, want %v", ch.action, ch.resources, got, ch.want)
				}
			}
		})
	}
}

func TestParsePolicyRejects(t *testing.T) {
	cases := []struct{ name, doc string }{
		{"not json", `{`},
		{"unknown effect", `{"statements":[{"effect":"Permit","actions":["*"],"resources":["*"]}]}`},
		{"lower-case effect", `{"statements":[{"effect":"allow","actions":["*"],"resources":["*"]}]}`},
		{"missing effect", `{"statements":[{"actions":["*"],"resources":["*"]}]}`},
		{"empty actions", `{"statements":[{"effect":"Allow","actions":[],"resources":["*"]}]}`},
		{"missing actions", `{"statements":[{"effect":"Allow","resources":["*"]}]}`},
		{"empty resources", `{"statements":[{"effect":"Allow","actions":["*"],"resources":[]}]}`},
		{"action without prefix", `{"statements":[{"effect":"Allow","actions":["Decrypt"],"resources":["*"]}]}`},
		{"action with space", `{"statements":[{"effect":"Allow","actions":["kms:De crypt"],"resources":["*"]}]}`},
		{"empty action", `{"statements":[{"effect":"Allow","actions":[""],"resources":["*"]}]}`},
		{"bad resource kind", `{"statements":[{"effect":"Allow","actions":["*"],"resources":["arn:aws:kms:x"]}]}`},
		{"empty key resource", `{"statements":[{"effect":"Allow","actions":["*"],"resources":["key/"]}]}`},
		{"control char in resource", `{"statements":[{"effect":"Allow","actions":["*"],"resources":["alias/a\u0001"]}]}`},
		{"unknown field", `{"statements":[],"version":"2012"}`},
		{"unknown statement field", `{"statements":[{"effect":"Allow","actions":["*"],"resources":["*"],"condition":{}}]}`},
		{"trailing data", `{"statements":[]} {}`},
		{"wrong type", `{"statements":{}}`},
		{"too long pattern", `{"statements":[{"effect":"Allow","actions":["*"],"resources":["alias/` + strings.Repeat("a", 300) + `"]}]}`},
		{"too large", `{"statements":[` + strings.Repeat(`{"effect":"Allow","actions":["*"],"resources":["*"]},`, 1000) + `]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParsePolicy([]byte(c.doc)); !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("err = %v, want ErrInvalidPolicy", err)
			}
			// Decoding a policy embedded in a request validates it too.
			var req struct {
				Policy Policy `json:"policy"`
			}
			if err := json.Unmarshal([]byte(`{"policy":`+c.doc+`}`), &req); err == nil {
				t.Fatalf("embedded policy accepted")
			}
		})
	}
}

func TestPolicyJSONRoundTrip(t *testing.T) {
	for _, p := range []Policy{AdminPolicy(), {}, mustPolicy(t, `{"statements":[{"effect":"Deny","actions":["kms:Decrypt"],"resources":["alias/a-*","key/k"]}]}`)} {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePolicy(b)
		if err != nil {
			t.Fatalf("ParsePolicy(%s): %v", b, err)
		}
		b2, _ := json.Marshal(back)
		if string(b) != string(b2) {
			t.Fatalf("round trip %s != %s", b, b2)
		}
	}
	b, _ := json.Marshal(Policy{})
	if string(b) != `{"statements":[]}` {
		t.Fatalf("zero policy = %s", b)
	}
	want := `{"statements":[{"effect":"Allow","actions":["*"],"resources":["*"]}]}`
	if b, _ := json.Marshal(AdminPolicy()); string(b) != want {
		t.Fatalf("admin policy = %s, want %s (API.md)", b, want)
	}
}

func TestWildcardMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true}, {"", "a", false}, {"*", "", true}, {"*", "anything/at all", true},
		{"a*", "a", true}, {"a*", "abc", true}, {"a*", "ba", false},
		{"*c", "abc", true}, {"*c", "abcd", false}, {"a*c", "ac", true}, {"a*c", "abbbc", true},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "aXcYb", false}, {"**", "x", true},
		{"alias/orders-*", "alias/orders-eu", true}, {"alias/orders-*", "alias/orders", false},
		{"a*a*a*a*b", strings.Repeat("a", 200), false},
	}
	for _, c := range cases {
		if got := wildcardMatch(c.pattern, c.s); got != c.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

// TestPolicyErrorsNameTheProblem: a validation error says which statement
// and which value is wrong, so an admin can fix the document.
func TestPolicyErrorsNameTheProblem(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`{"statements":[{"effect":"Allow","actions":["*"],"resources":["*"]},{"effect":"Permit","actions":["*"],"resources":["*"]}]}`,
			`statement 1: effect must be "Allow" or "Deny"`},
		{`{"statements":[{"effect":"Allow","actions":["Decrypt"],"resources":["*"]}]}`,
			`statement 0: action "Decrypt": must be "*" or "kms:<Operation>"`},
		{`{"statements":[{"effect":"Deny","actions":["kms:Decrypt"],"resources":["orders-*"]}]}`,
			`statement 0: resource "orders-*": must be "*", "key/<id>" or "alias/<name>"`},
		{`{"statements":[{"effect":"Allow","actions":["kms:Decrypt"],"resources":[]}]}`,
			`statement 0: no resources`},
		{`{"statements":[{"effect":"Allow","actions":["kms:Decrypt"],"resources":["*"],"principal":"x"}]}`,
			`unknown field "principal"`},
	}
	for _, c := range cases {
		_, err := ParsePolicy([]byte(c.doc))
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePolicy(%s) = %v, want an error containing %q", c.doc, err, c.want)
		}
	}
}
