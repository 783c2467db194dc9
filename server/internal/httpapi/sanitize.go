package httpapi

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxIDParam bounds a key id, alias or access-key id taken from the path.
// Real ids are at most 64 bytes and aliases "alias/" plus at most 191;
// longer ones are refused before any lookup.
const maxIDParam = 256

// checkIDParam refuses ids that cannot be real: empty, too long, not
// UTF-8, or holding control characters.
func checkIDParam(what, id string) error {
	if id == "" || len(id) > maxIDParam || !utf8.ValidString(id) || strings.IndexFunc(id, isControl) >= 0 {
		return fmt.Errorf("%w: %s must be 1-%d bytes of printable UTF-8", ErrValidation, what, maxIDParam)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// sanitize returns s as printable UTF-8 of at most n bytes for the audit
// log: invalid bytes and control characters (NUL included) become %XX, and
// the result is cut on a rune boundary. Distinct inputs mostly stay
// distinct, and nothing in it can break the record.
func sanitize(s string, n int) string {
	if len(s) <= n && printableASCII(s) {
		return s // the usual case: nothing to change, nothing to copy
	}
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "%%%02X", s[i])
		case isControl(r):
			fmt.Fprintf(&b, "%%%02X", r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return truncUTF8(b.String(), n)
}

// printableASCII reports whether s has only bytes 0x20-0x7e.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}
