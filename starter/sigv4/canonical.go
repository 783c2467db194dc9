package sigv4

import (
	"net/url"
	"slices"
	"strings"
)

// PortOnly returns the port of hostport without its colon, "" when it has
// none; StripPort returns hostport without its port (and without the
// brackets of an IPv6 literal with a port). Both are net/url's helpers of
// Go 1.8, as the SDK signer copies them.
func PortOnly(hostport string) string {
	colon := strings.IndexByte(hostport, ':')
	if colon == -1 {
		return ""
	}
	if i := strings.Index(hostport, "]:"); i != -1 {
		return hostport[i+len("]:"):]
	}
	if strings.Contains(hostport, "]") {
		return ""
	}
	return hostport[colon+len(":"):]
}

// StripPort: see PortOnly.
func StripPort(hostport string) string {
	colon := strings.IndexByte(hostport, ':')
	if colon == -1 {
		return hostport
	}
	if i := strings.IndexByte(hostport, ']'); i != -1 {
		return strings.TrimPrefix(hostport[:i], "[")
	}
	return hostport[:colon]
}

// IsDefaultPort reports whether port is empty or the default port of
// scheme (80 for http, 443 for https; the scheme in any case).
func IsDefaultPort(scheme, port string) bool {
	var want string
	switch port {
	case "":
		return true
	case "80":
		want = "http"
	case "443":
		want = "https"
	default:
		return false
	}
	return scheme == want || strings.ToLower(scheme) == want
}

// AppendStripExcessSpaces appends s without its leading and trailing
// spaces and with every run of spaces inside it collapsed to one (the
// SDK's StripExcessSpaces; only ' ' counts as a space). The canonical Host
// is written this way.
func AppendStripExcessSpaces(dst []byte, s string) []byte {
	s = strings.Trim(s, " ")
	i := strings.Index(s, "  ")
	if i < 0 {
		return append(dst, s...)
	}
	dst = append(dst, s[:i+1]...)
	space := true
	for i += 2; i < len(s); i++ {
		c := s[i]
		if c == ' ' && space {
			continue
		}
		space = c == ' '
		dst = append(dst, c)
	}
	return dst
}

// AppendHeaderValues appends the canonical value of a header with values:
// each without leading and trailing white space (strings.TrimSpace) and
// with runs of spaces collapsed, joined by commas.
func AppendHeaderValues(dst []byte, values []string) []byte {
	for i, v := range values {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendStripExcessSpaces(dst, strings.TrimSpace(v))
	}
	return dst
}

const upperHex = "0123456789ABCDEF"

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// appendEscape appends s with every byte percent-encoded (upper-case hex)
// but the unreserved characters and, if slash, '/'.
func appendEscape(dst []byte, s string, slash bool) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || slash && c == '/' {
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// AppendCanonicalPath appends the canonical URI of a request whose path,
// as sent (url.URL.EscapedPath), is escapedPath: "/" when it is empty,
// else escapedPath escaped once more, every byte but '/' and the
// unreserved characters percent-encoded.
func AppendCanonicalPath(dst []byte, escapedPath string) []byte {
	if escapedPath == "" {
		return append(dst, '/')
	}
	return appendEscape(dst, escapedPath, true)
}

// EscapeQuery returns s with every byte but the unreserved characters
// percent-encoded (a space becomes %20), as SigV4 encodes a query key or
// value; s itself when nothing needs escaping.
func EscapeQuery(s string) string {
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			return string(appendEscape(make([]byte, 0, len(s)+16), s, false))
		}
	}
	return s
}

// QueryParam is one escaped query parameter.
type QueryParam struct{ Key, Value string }

// AppendCanonicalQuery appends the canonical query string of q: every
// (key, value) pair escaped with EscapeQuery, sorted by escaped key, then
// escaped value, joined as k=v pairs by '&' (the SDK's EncodeQuery).
// scratch is reused for the pairs and returned for the next call.
func AppendCanonicalQuery(dst []byte, q url.Values, scratch []QueryParam) ([]byte, []QueryParam) {
	params := scratch[:0]
	for k, vs := range q {
		ek := EscapeQuery(k)
		for _, v := range vs {
			params = append(params, QueryParam{ek, EscapeQuery(v)})
		}
	}
	slices.SortFunc(params, func(a, b QueryParam) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	for i, p := range params {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.Key...)
		dst = append(dst, '=')
		dst = append(dst, p.Value...)
	}
	return dst, params
}
