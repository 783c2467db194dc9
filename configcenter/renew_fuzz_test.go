package configcenter

import (
	"strings"
	"testing"
)

// FuzzScanText: markers are in order, do not overlap, sit between the
// prefix and the suffix, and hold only base64 characters; a decoded blob
// and an error never come together.
func FuzzScanText(f *testing.F) {
	for _, s := range []string{"", "a: ENC(AQID)\n", "ENC(ENC(AQID))", "# ENC(\nENC()ENC(=)", "x ENC(AAAA) y ENC(QUJD) z", "ENC(AQ"} {
		f.Add(s, "ENC(", ")")
	}
	f.Add("s: {cipher}QUJD tail", "{cipher}", "")
	f.Fuzz(func(t *testing.T, text, prefix, suffix string) {
		if prefix == "" {
			return
		}
		last := 0
		for _, m := range scanText(text, Marker{Prefix: prefix, Suffix: suffix}) {
			if m.start < last+len(prefix) || m.end <= m.start || m.end > len(text) {
				t.Fatalf("bad span %d..%d after %d", m.start, m.end, last)
			}
			if text[m.start-len(prefix):m.start] != prefix || !strings.HasPrefix(text[m.end:], suffix) {
				t.Fatal("span not delimited by the marker")
			}
			if !isB64Text(text[m.start:m.end]) {
				t.Fatal("non-base64 content")
			}
			if (m.err == nil) == (m.blob == nil) {
				t.Fatal("blob and error inconsistent")
			}
			last = m.end + len(suffix)
		}
	})
}
