package kmsclient

import "testing"

// BenchmarkSignOnly re-signs one built request (sign overwrites its own
// headers in place), so it measures the signer without the request
// construction BenchmarkSignLean includes.
func BenchmarkSignOnly(b *testing.B) {
	c, mk := benchSignCase(b)
	s := &sigv4Signer{accessKeyID: testAK, secret: testSK}
	req, h := mk()
	s.sign(req, h, "kms", c.region, c.at)
	want := req.Header.Get("Authorization")
	b.ReportAllocs()
	for b.Loop() {
		s.sign(req, h, "kms", c.region, c.at)
	}
	if got := req.Header.Get("Authorization"); got != want {
		b.Fatalf("re-signing changed the signature: %q != %q", got, want)
	}
}
