package auth

import (
	"fmt"
	"strings"

	"github.com/kmsgo/kmsgo/starter/sigv4"
)

// SigV4 constants.
const (
	sigV4Algorithm  = sigv4.Algorithm
	scopeTerminator = sigv4.ScopeTerminator
	amzDateFormat   = sigv4.TimeFormat

	maxAuthorizationLen = 4096
	maxSignedHeaders    = 64
	maxAccessKeyIDLen   = 128
	maxScopePartLen     = 64
)

// authHeader is a parsed SigV4 Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AK/20150830/region/service/aws4_request,
//	  SignedHeaders=host;x-amz-date, Signature=<64 hex>
type authHeader struct {
	AccessKeyID   string
	Date          string // yyyymmdd from the credential scope
	Region        string
	Service       string
	SignedHeaders []string // lower case, strictly ascending
	signedRaw     string
	Signature     string // 64 lower-case hex characters
}

// canonical returns the header in the form aws-sdk-go-v2's signer writes.
func (h *authHeader) canonical() string {
	var b strings.Builder
	b.Grow(len(sigV4Algorithm) + 64 + len(h.AccessKeyID) + len(h.Region) + len(h.Service) + len(h.signedRaw) + len(h.Signature))
	b.WriteString(sigV4Algorithm)
	b.WriteString(" Credential=")
	b.WriteString(h.AccessKeyID)
	b.WriteByte('/')
	b.WriteString(h.Date)
	b.WriteByte('/')
	b.WriteString(h.Region)
	b.WriteByte('/')
	b.WriteString(h.Service)
	b.WriteString("/" + scopeTerminator + ", SignedHeaders=")
	b.WriteString(h.signedRaw)
	b.WriteString(", Signature=")
	b.WriteString(h.Signature)
	return b.String()
}

// signs reports whether name (lower case) is in SignedHeaders.
func (h *authHeader) signs(name string) bool {
	for _, s := range h.SignedHeaders {
		if s == name {
			return true
		}
	}
	return false
}

// parseAuthorization parses a SigV4 Authorization header strictly: the
// algorithm, then Credential, SignedHeaders and Signature exactly once each,
// in any order, separated by commas and optional spaces.
func parseAuthorization(v string) (*authHeader, error) {
	if len(v) > maxAuthorizationLen {
		return nil, fmt.Errorf("authorization header longer than %d bytes", maxAuthorizationLen)
	}
	rest, ok := strings.CutPrefix(v, sigV4Algorithm+" ")
	if !ok {
		return nil, fmt.Errorf("authorization must start with %q", sigV4Algorithm)
	}
	var h authHeader
	var haveCred, haveSigned, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.Trim(part, " ")
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("authorization component without '='")
		}
		switch key {
		case "Credential":
			if haveCred {
				return nil, fmt.Errorf("duplicate Credential")
			}
			haveCred = true
			if err := h.parseCredential(val); err != nil {
				return nil, err
			}
		case "SignedHeaders":
			if haveSigned {
				return nil, fmt.Errorf("duplicate SignedHeaders")
			}
			haveSigned = true
			if err := h.parseSignedHeaders(val); err != nil {
				return nil, err
			}
		case "Signature":
			if haveSig {
				return nil, fmt.Errorf("duplicate Signature")
			}
			haveSig = true
			if !isLowerHex(val, 64) {
				return nil, fmt.Errorf("signature must be 64 lower-case hex characters")
			}
			h.Signature = val
		default:
			return nil, fmt.Errorf("unknown authorization component")
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return nil, fmt.Errorf("authorization needs Credential, SignedHeaders and Signature")
	}
	return &h, nil
}

func (h *authHeader) parseCredential(v string) error {
	var parts [5]string
	n := 0
	for p := range strings.SplitSeq(v, "/") {
		if n == len(parts) {
			n++
			break
		}
		parts[n] = p
		n++
	}
	if n != len(parts) {
		return fmt.Errorf("credential must be AK/date/region/service/%s", scopeTerminator)
	}
	ak, date, region, service, term := parts[0], parts[1], parts[2], parts[3], parts[4]
	if ak == "" || len(ak) > maxAccessKeyIDLen || !isAlnum(ak) {
		return fmt.Errorf("malformed access key id")
	}
	if len(date) != 8 || !isDigits(date) {
		return fmt.Errorf("malformed credential date")
	}
	if !isScopePart(region) || !isScopePart(service) {
		return fmt.Errorf("malformed credential region or service")
	}
	if term != scopeTerminator {
		return fmt.Errorf("credential must end with %s", scopeTerminator)
	}
	h.AccessKeyID, h.Date, h.Region, h.Service = ak, date, region, service
	return nil
}

func (h *authHeader) parseSignedHeaders(v string) error {
	if strings.Count(v, ";") >= maxSignedHeaders {
		return fmt.Errorf("more than %d signed headers", maxSignedHeaders)
	}
	names := strings.Split(v, ";")
	for i, n := range names {
		if n == "" || !isHeaderToken(n) {
			return fmt.Errorf("malformed signed header name")
		}
		if i > 0 && names[i-1] >= n {
			return fmt.Errorf("signed headers must be sorted and unique")
		}
	}
	h.SignedHeaders = names
	h.signedRaw = v
	return nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isScopePart(s string) bool {
	if s == "" || len(s) > maxScopePartLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isHeaderToken accepts lower-case HTTP header names (RFC 9110 tchar without
// upper-case letters).
func isHeaderToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// nonceOK reports whether a replay nonce has 16-64 characters from
// [A-Za-z0-9._~+/=-].
func nonceOK(n string) bool {
	if len(n) < 16 || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._~+/=-", c) >= 0) {
			return false
		}
	}
	return true
}
