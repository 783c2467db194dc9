package main

import (
	"strings"
	"testing"
)

// FuzzParseENC checks that ParseENC only ever strips whitespace and one
// ENC( ) wrapper, and is idempotent on unwrapped input.
func FuzzParseENC(f *testing.F) {
	for _, s := range []string{"ENC(YWJj)", " ENC(x) ", "ENC(", "ENC()", ")", "abc", "ENC(ENC(a))"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseENC(s)
		if !strings.Contains(s, got) {
			t.Fatalf("ParseENC(%q) = %q is not part of the input", s, got)
		}
		trimmed := strings.TrimSpace(s)
		wrapped := strings.HasPrefix(trimmed, "ENC(") && strings.HasSuffix(trimmed, ")") && len(trimmed) >= 5
		if !wrapped && got != trimmed {
			t.Fatalf("ParseENC(%q) = %q changed an unwrapped value", s, got)
		}
		if wrapped && "ENC("+got+")" != trimmed {
			t.Fatalf("ParseENC(%q) = %q lost data", s, got)
		}
	})
}
