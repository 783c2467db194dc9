package sigv4

import (
	"cmp"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// prefix stands before every appended result, to catch an Append function
// that overwrites dst instead of appending to it.
const prefix = "dst:"

// FuzzHeaderValues: a canonical header value has no leading, trailing or
// repeated spaces and keeps every other byte in order; values are joined by
// commas; and kmsd's former writing of them (formerServerHeaderValue)
// agrees. (Agreement with the AWS SDK's signer is checked end to end by
// kmsclient's FuzzSigv4MatchesSDK and TestSigv4MatchesSDK.)
func FuzzHeaderValues(f *testing.F) {
	f.Add("  a   b  ", "\tx  y\t")
	f.Add("", " ")
	f.Fuzz(func(t *testing.T, a, b string) {
		stripped := string(AppendStripExcessSpaces([]byte(prefix), a))
		if !strings.HasPrefix(stripped, prefix) {
			t.Fatalf("AppendStripExcessSpaces(%q) overwrote dst: %q", a, stripped)
		}
		stripped = stripped[len(prefix):]
		if strings.Contains(stripped, "  ") || strings.HasPrefix(stripped, " ") || strings.HasSuffix(stripped, " ") {
			t.Fatalf("AppendStripExcessSpaces(%q) = %q: spaces left", a, stripped)
		}
		if strings.ReplaceAll(stripped, " ", "") != strings.ReplaceAll(a, " ", "") {
			t.Fatalf("AppendStripExcessSpaces(%q) = %q: lost or changed more than spaces", a, stripped)
		}
		got := string(AppendHeaderValues([]byte(prefix), []string{a, b}))
		want := prefix + strings.TrimSpace(string(AppendStripExcessSpaces(nil, a))) + "," + strings.TrimSpace(string(AppendStripExcessSpaces(nil, b)))
		if got != want {
			t.Fatalf("AppendHeaderValues(%q, %q) = %q, want %q", a, b, got, want)
		}
		if old := prefix + formerServerHeaderValue(a) + "," + formerServerHeaderValue(b); got != old {
			t.Fatalf("AppendHeaderValues(%q, %q) = %q, kmsd wrote %q", a, b, got, old)
		}
		if one := string(AppendHeaderValues(nil, []string{a})); strings.Contains(one, "  ") || one != strings.TrimSpace(one) {
			t.Fatalf("value %q not canonical: %q", a, one)
		}
	})
}

// FuzzHost: PortOnly and StripPort split a host:port without losing
// anything, and IsDefaultPort holds exactly for http:80 and https:443 (any
// case of the scheme).
func FuzzHost(f *testing.F) {
	f.Add("kms.internal:443", "https")
	f.Add("[::1]:80", "HTTP")
	f.Fuzz(func(t *testing.T, hostport, scheme string) {
		port, host := PortOnly(hostport), StripPort(hostport)
		sc := strings.ToLower(scheme)
		if want := port == "" || sc == "http" && port == "80" || sc == "https" && port == "443"; IsDefaultPort(scheme, port) != want {
			t.Fatalf("IsDefaultPort(%q, %q) = %v", scheme, port, !want)
		}
		if strings.Count(hostport, ":") == 0 && (port != "" || host != hostport) {
			t.Fatalf("%q has no port: port %q host %q", hostport, port, host)
		}
		if port != "" && !strings.HasSuffix(hostport, ":"+port) {
			t.Fatalf("%q: port %q is not its suffix", hostport, port)
		}
		if !strings.Contains(hostport, host) {
			t.Fatalf("%q: host %q is not part of it", hostport, host)
		}
		if port != "" && !strings.Contains(hostport, "]") && hostport != host+":"+port {
			t.Fatalf("%q: host %q and port %q do not rebuild it", hostport, host, port)
		}
	})
}

// FuzzCanonicalPath: the canonical URI of a path holds only unreserved
// characters, '/' and upper-case escapes, and unescapes back to the path as
// sent.
func FuzzCanonicalPath(f *testing.F) {
	f.Add("/v1/keys/alias%2Forders/encrypt")
	f.Add("/v1/keys/ä中 x")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s) // sets RawPath when s is not escaped the default way
		if err != nil || u.Opaque != "" {
			u = &url.URL{Path: s}
		}
		escaped := u.EscapedPath()
		got := AppendCanonicalPath([]byte(prefix), escaped)
		if !strings.HasPrefix(string(got), prefix) {
			t.Fatalf("%q: dst overwritten: %q", s, got)
		}
		got = got[len(prefix):]
		for i := 0; i < len(got); i++ {
			c := got[i]
			switch {
			case unreserved(c), c == '/':
			case c == '%' && i+2 < len(got) && strings.IndexByte(upperHex, got[i+1]) >= 0 && strings.IndexByte(upperHex, got[i+2]) >= 0:
				i += 2
			default:
				t.Fatalf("%q: canonical %q has %q at %d", s, got, c, i)
			}
		}
		back, err := url.PathUnescape(string(got))
		if err != nil {
			t.Fatalf("canonical %q does not unescape: %v", got, err)
		}
		if want := cmp.Or(escaped, "/"); back != want {
			t.Fatalf("canonical %q unescapes to %q, want %q", got, back, want)
		}
	})
}

// FuzzCanonicalQuery: the canonical query of a parsed query string is
// sorted, parses back to the same parameters and is its own canonical form.
func FuzzCanonicalQuery(f *testing.F) {
	f.Add("b=2&a=1&a=0")
	f.Add("x=%20y+z&%E4%B8%AD=%2F&empty=&noval")
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw) // as url.URL.Query: malformed pairs dropped
		got, scratch := AppendCanonicalQuery([]byte(prefix), q, make([]QueryParam, 1, 2))
		if !strings.HasPrefix(string(got), prefix) {
			t.Fatalf("%q: dst overwritten: %q", raw, got)
		}
		if len(got) > len(prefix) {
			var prev [2]string
			for i, pair := range strings.Split(string(got[len(prefix):]), "&") {
				k, v, _ := strings.Cut(pair, "=")
				if i > 0 && (k < prev[0] || k == prev[0] && v < prev[1]) {
					t.Fatalf("%q: canonical query %q not sorted by key, then value", raw, got[len(prefix):])
				}
				prev = [2]string{k, v}
			}
		}
		n := 0
		for _, vs := range q {
			n += len(vs)
		}
		if len(scratch) != n {
			t.Fatalf("%q: %d params in scratch, want %d", raw, len(scratch), n)
		}
		canon := string(got[len(prefix):])
		back, err := url.ParseQuery(canon)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", canon, raw, err)
		}
		if !sameValues(q, back) {
			t.Fatalf("canonical %q of %q parses to %v, want %v", canon, raw, back, q)
		}
		again, _ := AppendCanonicalQuery(nil, back, scratch)
		if string(again) != canon {
			t.Fatalf("canonical %q canonicalises to %q", canon, again)
		}
		for k, vs := range q {
			for _, s := range append(vs, k) {
				e := EscapeQuery(s)
				for i := 0; i < len(e); i++ {
					if c := e[i]; !unreserved(c) && c != '%' {
						t.Fatalf("EscapeQuery(%q) = %q leaves %q", s, e, c)
					}
				}
				if u, err := url.QueryUnescape(e); err != nil || u != s {
					t.Fatalf("EscapeQuery(%q) = %q unescapes to %q, %v", s, e, u, err)
				}
			}
		}
	})
}

// sameValues reports whether a and b hold the same values per key, in any
// order.
func sameValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok {
			return false
		}
		va, vb = slices.Clone(va), slices.Clone(vb)
		slices.Sort(va)
		slices.Sort(vb)
		if !reflect.DeepEqual(va, vb) {
			return false
		}
	}
	return true
}

// formerServerHeaderValue is how kmsd wrote a header value before this
// package: strings.TrimSpace, then runs of spaces collapsed.
func formerServerHeaderValue(s string) string {
	s = strings.Trim(strings.TrimSpace(s), " ")
	var b []byte
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b = append(b, c)
	}
	return string(b)
}
