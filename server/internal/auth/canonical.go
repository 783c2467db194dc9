package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"sync"

	"github.com/kmsgo/kmsgo/starter/sigv4"
)

// The verifier below computes the SigV4 canonical request and signature of
// a received request directly, as aws-sdk-go-v2's signer (v4.Signer) would
// compute them for a request carrying only what the client signed: method,
// path, query, host and the headers in SignedHeaders. TestSigV4MatchesSDK
// proves it against the SDK signer over a table of requests; the AWS SigV4
// test suite (testdata/sigv4) checks both against AWS's published answers.

// unsignable lists headers the SDK signer never signs: a request that lists
// them in SignedHeaders cannot have been signed by it.
var unsignable = map[string]bool{
	"authorization": true, "user-agent": true, "x-amzn-trace-id": true,
	"expect": true, "transfer-encoding": true,
}

// sigBuf holds the scratch buffers of one verification.
type sigBuf struct {
	canon []byte // canonical request
	sts   []byte // string to sign
	qs    []sigv4.QueryParam
}

var sigBufs = sync.Pool{New: func() any { return &sigBuf{canon: make([]byte, 0, 512), sts: make([]byte, 0, 256)} }}

// putSigBuf returns sb to the pool unless a huge request grew it.
func putSigBuf(sb *sigBuf) {
	if cap(sb.canon) > 64<<10 || cap(sb.qs) > 256 {
		return
	}
	sigBufs.Put(sb)
}

// canonicalRequest appends to dst the SigV4 canonical request of r (whose
// body hashes to payloadHash), as the SDK signer builds it. It refuses
// requests whose SignedHeaders cannot be reproduced faithfully.
func canonicalRequest(dst []byte, qs []sigv4.QueryParam, r *http.Request, h *authHeader, body []byte, payloadHash string) ([]byte, []sigv4.QueryParam, error) {
	if !h.signs("host") {
		return dst, qs, fmt.Errorf("%w: host must be signed", ErrUnauthenticated)
	}
	if r.Host == "" {
		return dst, qs, fmt.Errorf("%w: missing Host", ErrUnauthenticated)
	}
	// Check every signed header before writing anything, so that the
	// failures do not depend on the order of work.
	for _, name := range h.SignedHeaders {
		switch {
		case name == "host":
		case name == "content-length":
			if r.ContentLength <= 0 || r.ContentLength != int64(len(body)) {
				return dst, qs, fmt.Errorf("%w: signed content-length does not match the body", ErrUnauthenticated)
			}
		case unsignable[name]:
			return dst, qs, fmt.Errorf("%w: header %s cannot be signed", ErrUnauthenticated, name)
		default:
			if len(headerValues(r.Header, name)) == 0 {
				return dst, qs, fmt.Errorf("%w: signed header %s is missing", ErrUnauthenticated, name)
			}
		}
	}

	// Method and path: the escaped path, escaped once more.
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	dst = sigv4.AppendCanonicalPath(dst, r.URL.EscapedPath())
	dst = append(dst, '\n')

	// Query: parsed, each key and value encoded, sorted by key then value.
	var err error
	if dst, qs, err = appendCanonicalQuery(dst, qs, r.URL.RawQuery); err != nil {
		return dst, qs, err
	}
	dst = append(dst, '\n')

	// Headers, in SignedHeaders order (sorted).
	for _, name := range h.SignedHeaders {
		dst = append(dst, name...)
		dst = append(dst, ':')
		switch name {
		case "host":
			dst = sigv4.AppendStripExcessSpaces(dst, signedHost(r))
		case "content-length":
			dst = strconv.AppendInt(dst, r.ContentLength, 10)
		default:
			dst = sigv4.AppendHeaderValues(dst, headerValues(r.Header, name))
		}
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = append(dst, h.signedRaw...)
	dst = append(dst, '\n')
	dst = append(dst, payloadHash...)
	return dst, qs, nil
}

// headerValues returns the values of header name (lower case) as a server
// received them: under the canonical MIME key.
func headerValues(hdr http.Header, name string) []string {
	if v, ok := hdr[commonKey(name)]; ok {
		return v
	}
	return hdr[textproto.CanonicalMIMEHeaderKey(name)]
}

// commonKey returns the canonical form of the headers every request signs,
// without an allocation ("" for others).
func commonKey(name string) string {
	switch name {
	case "x-amz-date":
		return "X-Amz-Date"
	case "x-amz-content-sha256":
		return "X-Amz-Content-Sha256"
	case "content-type":
		return "Content-Type"
	case "x-kms-nonce":
		return NonceHeader
	case "x-amz-target":
		return "X-Amz-Target"
	case "accept":
		return "Accept"
	case "x-amz-user-agent":
		return "X-Amz-User-Agent"
	case "amz-sdk-invocation-id":
		return "Amz-Sdk-Invocation-Id"
	case "amz-sdk-request":
		return "Amz-Sdk-Request"
	}
	return ""
}

// signedHost is the Host the SDK signer signs: without the scheme's
// default port when one is given, as the SDK's SanitizeHostForHeader does
// ("[::1]" and "h:" are signed as they are).
func signedHost(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if port := sigv4.PortOnly(r.Host); port != "" && sigv4.IsDefaultPort(scheme, port) {
		return sigv4.StripPort(r.Host)
	}
	return r.Host
}

// appendCanonicalQuery appends the canonical query string of raw: parsed
// as url.ParseQuery parses it (malformed escapes and semicolons refused),
// keys and values percent-encoded, sorted by key. A repeated key is
// refused: SigV4 sorts the values of a repeated key, so their order is not
// signed ("a=1&a=2" and "a=2&a=1" verify alike, yet a handler reading the
// first value sees different input), and no API route takes one.
func appendCanonicalQuery(dst []byte, qs []sigv4.QueryParam, raw string) ([]byte, []sigv4.QueryParam, error) {
	if raw == "" {
		return dst, qs[:0], nil
	}
	query, err := url.ParseQuery(raw)
	if err != nil {
		return dst, qs[:0], fmt.Errorf("%w: malformed query string", ErrUnauthenticated)
	}
	// Every key holds at least one value, so one pair a key means no key
	// is repeated.
	out, qs := sigv4.AppendCanonicalQuery(dst, query, qs)
	if len(qs) != len(query) {
		return dst, qs, fmt.Errorf("%w: repeated query parameter", ErrUnauthenticated)
	}
	return out, qs, nil
}

// derivedKey is the SigV4 signing key of one secret for one date (the
// region and service are fixed per Service).
type derivedKey struct {
	date string
	key  [sha256.Size]byte
	macs sync.Pool // of hash.Hash: HMAC-SHA256 under key, reset before use
}

// mac returns an HMAC-SHA256 under d.key in its initial state; give it back
// with d.macs.Put.
func (d *derivedKey) mac() hash.Hash {
	if m, ok := d.macs.Get().(hash.Hash); ok {
		m.Reset()
		return m
	}
	return hmac.New(sha256.New, d.key[:])
}

// signingKey returns HMAC("AWS4"+secret, date, region, service,
// "aws4_request"), cached in e for the last date used.
func (s *Service) signingKey(e *cacheEntry, date string) *derivedKey {
	if d := e.derived.Load(); d != nil && d.date == date {
		return d
	}
	d := &derivedKey{date: date, key: sigv4.DeriveKey(e.secret, sigv4.Scope{Date: date, Region: s.region, Service: s.service})}
	e.derived.Store(d)
	return d
}

// signatureMatches computes the signature of canonical for h and entry e
// and compares it with h.Signature in constant time.
func (s *Service) signatureMatches(e *cacheEntry, h *authHeader, amzDate string, canonical []byte, sb *sigBuf) bool {
	want := s.signature(e, h, amzDate, canonical, sb)
	return subtle.ConstantTimeCompare(want[:], []byte(h.Signature)) == 1
}

// signature returns the hex SigV4 signature of canonical under the scope of
// h and the secret of e.
func (s *Service) signature(e *cacheEntry, h *authHeader, amzDate string, canonical []byte, sb *sigBuf) [2 * sha256.Size]byte {
	sts := sigv4.AppendStringToSign(sb.sts[:0], amzDate, sigv4.Scope{Date: h.Date, Region: s.region, Service: s.service}, canonical)
	sb.sts = sts

	key := s.signingKey(e, h.Date)
	m := key.mac()
	m.Write(sts)
	var mac [sha256.Size]byte
	m.Sum(mac[:0])
	key.macs.Put(m)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], mac[:])
	return out
}
