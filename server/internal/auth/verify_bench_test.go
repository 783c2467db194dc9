package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// BenchmarkVerifySignature measures the pure part of verification: the
// canonical request of a signed request (with a query and a few headers)
// and its signature under a cached key, without the database or cache.
func BenchmarkVerifySignature(b *testing.B) {
	const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	cr := jsonPost(`{"plaintext":"aGVsbG8="}`, map[string]string{NonceHeader: "bench-nonce-0123456789", "X-Kms-Tenant": "  acme   corp "})
	cr.url = testHost + "/v1/keys/alias%2Forders/encrypt?limit=10&next=a%20b"
	r, body := sign(b, cr, "AKBENCH", secret, DefaultRegion, ServiceName, testStart)
	h, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		b.Fatal(err)
	}
	s := &Service{region: DefaultRegion, service: ServiceName}
	e := &cacheEntry{secret: secret}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	amzDate := r.Header.Get("X-Amz-Date")
	sb := &sigBuf{}
	b.ReportAllocs()
	for b.Loop() {
		sb.canon, sb.qs, err = canonicalRequest(sb.canon[:0], sb.qs, r, h, body, payloadHash)
		if err != nil || !s.signatureMatches(e, h, amzDate, sb.canon, sb) {
			b.Fatalf("does not verify: %v", err)
		}
	}
}
