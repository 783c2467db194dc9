package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os/exec"
	"strings"
	"testing"
)

func TestHost(t *testing.T) {
	for _, c := range []struct{ in, port, host string }{
		{"kms.internal", "", "kms.internal"},
		{"kms.internal:8443", "8443", "kms.internal"},
		{"127.0.0.1:80", "80", "127.0.0.1"},
		{"[::1]:443", "443", "::1"},
		{"[::1]", "", "::1"},
		{"[fe80::1%25en0]:9000", "9000", "fe80::1%25en0"},
		{"h:", "", "h"},
		{"a:b:c", "b:c", "a"},
		{"", "", ""},
	} {
		if p, h := PortOnly(c.in), StripPort(c.in); p != c.port || h != c.host {
			t.Errorf("%q: port %q host %q, want %q %q", c.in, p, h, c.port, c.host)
		}
	}
	for _, c := range []struct {
		scheme, port string
		want         bool
	}{
		{"http", "", true}, {"http", "80", true}, {"HTTP", "80", true}, {"https", "443", true}, {"Https", "443", true},
		{"http", "443", false}, {"https", "80", false}, {"https", "8443", false}, {"ftp", "80", false}, {"", "80", false},
		{"httpſ", "443", false}, // ToLower, not Unicode case folding, as the SDK
	} {
		if got := IsDefaultPort(c.scheme, c.port); got != c.want {
			t.Errorf("IsDefaultPort(%q, %q) = %v", c.scheme, c.port, got)
		}
	}
}

func TestHeaderValues(t *testing.T) {
	for _, c := range []struct {
		in   []string
		host string // AppendStripExcessSpaces of in[0]
		want string // AppendHeaderValues
	}{
		{[]string{"value1"}, "value1", "value1"},
		{[]string{`"a   b   c"`}, `"a b c"`, `"a b c"`},
		{[]string{"  a   b  "}, "a b", "a b"},
		{[]string{"\tx  y\t"}, "\tx y\t", "x y"},
		{[]string{" \t a \t  b \t "}, "\t a \t b \t", "a \t b"},
		{[]string{"   "}, "", ""},
		{[]string{""}, "", ""},
		{[]string{"a", " b ", "c  d"}, "a", "a,b,c d"},
		{[]string{"\u00a0a\u00a0"}, "\u00a0a\u00a0", "a"},
	} {
		if got := string(AppendStripExcessSpaces([]byte("x"), c.in[0])); got != "x"+c.host {
			t.Errorf("AppendStripExcessSpaces(%q) = %q, want %q", c.in[0], got[1:], c.host)
		}
		if got := string(AppendHeaderValues([]byte("x"), c.in)); got != "x"+c.want {
			t.Errorf("AppendHeaderValues(%q) = %q, want %q", c.in, got[1:], c.want)
		}
	}
}

func TestCanonicalPath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/v1/keys", "/v1/keys"},
		{"/v1/keys/alias%2Forders/encrypt", "/v1/keys/alias%252Forders/encrypt"},
		{"/v1//keys/~tilde.-_/", "/v1//keys/~tilde.-_/"},
		{"/a+b!$&'()*,;=:@", "/a%2Bb%21%24%26%27%28%29%2A%2C%3B%3D%3A%40"},
		{"/%C3%A4 x", "/%25C3%25A4%20x"},
		{"/ä", "/%C3%A4"},
	} {
		if got := string(AppendCanonicalPath([]byte("x"), c.in)); got != "x"+c.want {
			t.Errorf("AppendCanonicalPath(%q) = %q, want %q", c.in, got[1:], c.want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"", ""},
		{"b=2&a=1&a=0", "a=0&a=1&b=2"},
		{"a=1&a=1&a=0&A=2", "A=2&a=0&a=1&a=1"},
		{"x=%20y+z", "x=%20y%20z"},
		{"empty=&noval", "empty=&noval="},
		{"%E4%B8%AD=%2F&z=~", "%E4%B8%AD=%2F&z=~"},
		{"q=%25%26%3D&p=a%2Bb", "p=a%2Bb&q=%25%26%3D"},
		// Sorted after encoding: "a-b" < "a%2Fb" is false, '%' < '-'.
		{"v=a-b&v=a/b", "v=a%2Fb&v=a-b"},
		{"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
			"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"},
	} {
		q, err := url.ParseQuery(c.raw)
		if err != nil {
			t.Fatal(err)
		}
		got, scratch := AppendCanonicalQuery([]byte("x"), q, nil)
		if string(got) != "x"+c.want {
			t.Errorf("%q: %q, want %q", c.raw, got[1:], c.want)
		}
		if again, _ := AppendCanonicalQuery(nil, q, scratch); string(again) != c.want {
			t.Errorf("%q with scratch: %q", c.raw, again)
		}
	}
	for in, want := range map[string]string{"": "", "abc-._~": "abc-._~", "a b+c": "a%20b%2Bc", "ä/?": "%C3%A4%2F%3F"} {
		if got := EscapeQuery(in); got != want {
			t.Errorf("EscapeQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDeriveKey: the example of the AWS documentation ("Examples of how to
// derive a signing key for Signature Version 4"), and the HMAC chain.
func TestDeriveKey(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	k := DeriveKey(secret, Scope{Date: "20120215", Region: "us-east-1", Service: "iam"})
	if got := hex.EncodeToString(k[:]); got != "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d" {
		t.Fatalf("signing key %s", got)
	}
	mac := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	for _, s := range []Scope{{"20261202", "local", "kms"}, {"20261203", "local", "kms"}, {"20261202", "eu-1", "kms"}, {"20261202", "local", "s3"}} {
		want := mac(mac(mac(mac([]byte("AWS4"+"SK"), s.Date), s.Region), s.Service), "aws4_request")
		if got := DeriveKey("SK", s); string(got[:]) != string(want) {
			t.Errorf("%v: %x, want %x", s, got, want)
		}
	}
}

// TestStringToSign: the AWS SigV4 test suite's get-vanilla.
func TestStringToSign(t *testing.T) {
	const canonical = "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	scope := Scope{Date: "20150830", Region: "us-east-1", Service: "service"}
	if got := scope.String(); got != "20150830/us-east-1/service/aws4_request" {
		t.Fatalf("scope %q", got)
	}
	sts := AppendStringToSign([]byte("x"), "20150830T123600Z", scope, []byte(canonical))
	const want = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" +
		"bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
	if string(sts) != "x"+want {
		t.Fatalf("string to sign %q", sts[1:])
	}
	if h := HexSHA256(nil); h != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("HexSHA256 %s", h)
	}
}

// TestAppendAllocs: the hot-path functions do not allocate when dst has
// room and nothing needs a new string.
func TestAppendAllocs(t *testing.T) {
	buf := make([]byte, 0, 1024)
	vals := []string{"  a   b  ", "application/json"}
	scope := Scope{Date: "20261202", Region: "local", Service: "kms"}
	canonical := []byte("POST\n/v1/keys\n\n")
	n := testing.AllocsPerRun(100, func() {
		b := AppendCanonicalPath(buf[:0], "/v1/keys/alias%2Forders/encrypt")
		b = AppendStripExcessSpaces(b, "127.0.0.1:8080")
		b = AppendHeaderValues(b, vals)
		b = AppendStringToSign(b, "20261202T070000Z", scope, canonical)
		_ = EscapeQuery("limit")
		_, _ = PortOnly("h:1"), StripPort("h:1")
	})
	if n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// TestStdlibOnly: the package links only the standard library (the client
// must not link anything else through it).
func TestStdlibOnly(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if deps := strings.Fields(string(out)); len(deps) != 1 || deps[0] != "github.com/kmsgo/kmsgo/starter/sigv4" {
		t.Fatalf("non-standard dependencies: %q", deps)
	}
}
