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

// FuzzHeaderValues: the canonical header values are the SDK's
// (TrimSpace of StripExcessSpaces, joined by commas), and kmsd's former
// writing of them (StripExcessSpaces of TrimSpace) agrees.
func FuzzHeaderValues(f *testing.F) {
	f.Add("  a   b  ", "\tx  y\t")
	f.Add("", " ")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := string(AppendStripExcessSpaces([]byte(prefix), a)), prefix+refStripExcessSpaces(a); got != want {
			t.Fatalf("AppendStripExcessSpaces(%q) = %q, SDK %q", a, got, want)
		}
		got := string(AppendHeaderValues([]byte(prefix), []string{a, b}))
		sdk := prefix + strings.TrimSpace(refStripExcessSpaces(a)) + "," + strings.TrimSpace(refStripExcessSpaces(b))
		if got != sdk {
			t.Fatalf("AppendHeaderValues(%q, %q) = %q, SDK %q", a, b, got, sdk)
		}
		if old := prefix + refServerHeaderValue(a) + "," + refServerHeaderValue(b); got != old {
			t.Fatalf("AppendHeaderValues(%q, %q) = %q, kmsd wrote %q", a, b, got, old)
		}
		if one := string(AppendHeaderValues(nil, []string{a})); strings.Contains(one, "  ") || one != strings.TrimSpace(one) {
			t.Fatalf("value %q not canonical: %q", a, one)
		}
	})
}

// FuzzHost: PortOnly, StripPort and IsDefaultPort are the SDK's, and
// split a host:port without losing anything.
func FuzzHost(f *testing.F) {
	f.Add("kms.internal:443", "https")
	f.Add("[::1]:80", "HTTP")
	f.Fuzz(func(t *testing.T, hostport, scheme string) {
		port, host := PortOnly(hostport), StripPort(hostport)
		if port != refPortOnly(hostport) || host != refStripPort(hostport) {
			t.Fatalf("%q: port %q host %q, SDK %q %q", hostport, port, host, refPortOnly(hostport), refStripPort(hostport))
		}
		if IsDefaultPort(scheme, port) != refIsDefaultPort(scheme, port) {
			t.Fatalf("IsDefaultPort(%q, %q) = %v", scheme, port, !refIsDefaultPort(scheme, port))
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

// FuzzCanonicalPath: the canonical URI of a path is the SDK's, and
// unescapes back to the path as sent.
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
		if want := prefix + refEscapePath(cmp.Or(escaped, "/")); string(got) != want {
			t.Fatalf("%q (sent %q): %q, SDK %q", s, escaped, got, want)
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

// FuzzCanonicalQuery: the canonical query of a parsed query string is the
// SDK's, parses back to the same parameters and is its own canonical form.
func FuzzCanonicalQuery(f *testing.F) {
	f.Add("b=2&a=1&a=0")
	f.Add("x=%20y+z&%E4%B8%AD=%2F&empty=&noval")
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw) // as url.URL.Query: malformed pairs dropped
		got, scratch := AppendCanonicalQuery([]byte(prefix), q, make([]QueryParam, 1, 2))
		if want := prefix + refEncodeQuery(q); string(got) != want {
			t.Fatalf("%q: %q, SDK %q", raw, got, want)
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
				if e != refEncodeQueryComponent(s) {
					t.Fatalf("EscapeQuery(%q) = %q, SDK %q", s, e, refEncodeQueryComponent(s))
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
