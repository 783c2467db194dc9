package p11

import (
	"strings"
	"testing"
)

// FuzzParsePIN checks the PIN file parser: the result is the input minus
// leading and trailing blanks and line endings, nothing else.
func FuzzParsePIN(f *testing.F) {
	for _, s := range []string{"1234\n", "  pin \r\n", "\n", "", "a b\tc", "\x00\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := parsePIN(in)
		if !strings.Contains(string(in), got) {
			t.Fatalf("parsePIN(%q) = %q, not a substring", in, got)
		}
		if got != "" && (strings.ContainsAny(got[:1], " \t\r\n") || strings.ContainsAny(got[len(got)-1:], " \t\r\n")) {
			t.Fatalf("parsePIN(%q) = %q keeps blanks at an end", in, got)
		}
		if strings.Trim(string(in), " \t\r\n") != "" && got == "" {
			t.Fatalf("parsePIN(%q) lost a non-blank PIN", in)
		}
		if strings.Count(string(in), got) == 0 || len(got) > len(in) {
			t.Fatalf("parsePIN(%q) = %q", in, got)
		}
	})
}
