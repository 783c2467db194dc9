package sigv4

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// The references below are aws-sdk-go-v2 v1.48.0's (aws/signer/internal/v4
// util.go and host.go) and smithy-go's (encoding/httpbinding EscapePath),
// copied as they are: the fuzz tests check the package against them.

func refStripExcessSpaces(str string) string {
	var j, k, l, m, spaces int
	for j = len(str) - 1; j >= 0 && str[j] == ' '; j-- {
	}
	for k = 0; k < j && str[k] == ' '; k++ {
	}
	str = str[k : j+1]
	j = strings.Index(str, "  ")
	if j < 0 {
		return str
	}
	buf := []byte(str)
	for k, m, l = j, j, len(buf); k < l; k++ {
		if buf[k] == ' ' {
			if spaces == 0 {
				buf[m] = buf[k]
				m++
			}
			spaces++
		} else {
			spaces = 0
			buf[m] = buf[k]
			m++
		}
	}
	return string(buf[:m])
}

func refEscapePath(path string) string {
	var buf strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			buf.WriteByte(c)
		} else {
			fmt.Fprintf(&buf, "%%%02X", c)
		}
	}
	return buf.String()
}

func refEncodeQuery(query url.Values) string {
	type queryParam struct{ key, value string }
	params := make([]queryParam, 0, len(query))
	for key, values := range query {
		encodedKey := refEncodeQueryComponent(key)
		for _, value := range values {
			params = append(params, queryParam{key: encodedKey, value: refEncodeQueryComponent(value)})
		}
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].key != params[j].key {
			return params[i].key < params[j].key
		}
		return params[i].value < params[j].value
	})
	var canonical strings.Builder
	for i, param := range params {
		if i > 0 {
			canonical.WriteByte('&')
		}
		canonical.WriteString(param.key)
		canonical.WriteByte('=')
		canonical.WriteString(param.value)
	}
	return canonical.String()
}

func refEncodeQueryComponent(s string) string {
	return strings.Replace(url.QueryEscape(s), "+", "%20", -1)
}

func refStripPort(hostport string) string {
	colon := strings.IndexByte(hostport, ':')
	if colon == -1 {
		return hostport
	}
	if i := strings.IndexByte(hostport, ']'); i != -1 {
		return strings.TrimPrefix(hostport[:i], "[")
	}
	return hostport[:colon]
}

func refPortOnly(hostport string) string {
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

func refIsDefaultPort(scheme, port string) bool {
	if port == "" {
		return true
	}
	lowerCaseScheme := strings.ToLower(scheme)
	if (lowerCaseScheme == "http" && port == "80") || (lowerCaseScheme == "https" && port == "443") {
		return true
	}
	return false
}

// refServerHeaderValue is how kmsd wrote a header value before this
// package: strings.TrimSpace, then runs of spaces collapsed.
func refServerHeaderValue(s string) string {
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
