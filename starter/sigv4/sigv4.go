package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

const (
	// Algorithm names SigV4 with HMAC-SHA256 in the Authorization header
	// and the string to sign.
	Algorithm = "AWS4-HMAC-SHA256"
	// ScopeTerminator ends every credential scope.
	ScopeTerminator = "aws4_request"
	// TimeFormat is the layout of X-Amz-Date.
	TimeFormat = "20060102T150405Z"
)

// Scope is a credential scope: the signing day (YYYYMMDD), region and
// service.
type Scope struct {
	Date, Region, Service string
}

// AppendTo appends "date/region/service/aws4_request" to dst.
func (s Scope) AppendTo(dst []byte) []byte {
	dst = append(dst, s.Date...)
	dst = append(dst, '/')
	dst = append(dst, s.Region...)
	dst = append(dst, '/')
	dst = append(dst, s.Service...)
	return append(dst, "/"+ScopeTerminator...)
}

// String returns "date/region/service/aws4_request".
func (s Scope) String() string {
	return string(s.AppendTo(make([]byte, 0, len(s.Date)+len(s.Region)+len(s.Service)+3+len(ScopeTerminator))))
}

// DeriveKey returns the signing key of secret for scope:
// HMAC-SHA256 chained over "AWS4"+secret, date, region, service and
// "aws4_request". The intermediate keys are cleared.
func DeriveKey(secret string, scope Scope) [sha256.Size]byte {
	k := make([]byte, 0, 4+len(secret))
	k = append(append(k, "AWS4"...), secret...)
	var key [sha256.Size]byte
	for _, part := range [...]string{scope.Date, scope.Region, scope.Service, ScopeTerminator} {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(part))
		clear(k)
		k = m.Sum(key[:0])
	}
	return key
}

// AppendStringToSign appends to dst the string to sign of canonicalRequest
// signed at amzDate (in TimeFormat) under scope:
// Algorithm, amzDate, the scope and the hex SHA-256 of canonicalRequest,
// one a line.
func AppendStringToSign(dst []byte, amzDate string, scope Scope, canonicalRequest []byte) []byte {
	sum := sha256.Sum256(canonicalRequest)
	dst = append(dst, Algorithm+"\n"...)
	dst = append(dst, amzDate...)
	dst = append(dst, '\n')
	dst = scope.AppendTo(dst)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, sum[:])
}

// HexSHA256 returns the lower-case hex SHA-256 of b: the payload hash of a
// body, as signed and sent in X-Amz-Content-Sha256.
func HexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
