package configcenter

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Default marker of an encrypted value: ENC(<base64 ciphertext>), as
// printed by `kmsctl enc`.
const (
	DefaultMarkerPrefix = "ENC("
	DefaultMarkerSuffix = ")"
)

// Marker delimits an encrypted value. The zero Marker is ENC( and ).
type Marker struct {
	Prefix string
	Suffix string
}

func (m Marker) orDefault() Marker {
	if m.Prefix == "" && m.Suffix == "" {
		return Marker{Prefix: DefaultMarkerPrefix, Suffix: DefaultMarkerSuffix}
	}
	return m
}

// markerSpan is one marker found in a string: s[Start:End] is the whole
// marker, Blob the decoded ciphertext and B64 its base64 text.
type markerSpan struct {
	Start, End int
	B64        string
	Blob       []byte
}

// isB64Char reports whether c belongs to the standard base64 alphabet or
// is padding.
func isB64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}

func isB64Text(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isB64Char(s[i]) {
			return false
		}
	}
	return true
}

// decodeB64 decodes canonical standard base64 (what kmsctl enc prints).
func decodeB64(s string) ([]byte, error) {
	return base64.StdEncoding.Strict().DecodeString(s)
}

// findMarkers returns the ENC markers in s, in order and not overlapping.
//
// Without embedded, only a value that is exactly prefix+content+suffix is
// a marker; its content must then be canonical base64, otherwise the
// result is ErrMalformedMarker (fail closed: a value that looks encrypted
// is never passed through as plaintext). With embedded, every
// prefix...suffix whose content is made of base64 characters is a marker;
// other text is left as is, but base64-looking content that does not
// decode is ErrMalformedMarker.
func findMarkers(s string, m Marker, embedded bool) ([]markerSpan, error) {
	p, sfx := m.Prefix, m.Suffix
	if len(s) >= len(p)+len(sfx) && strings.HasPrefix(s, p) && strings.HasSuffix(s, sfx) {
		content := s[len(p) : len(s)-len(sfx)]
		if !embedded || isB64Text(content) {
			if !isB64Text(content) {
				return nil, fmt.Errorf("%w: content is not base64", ErrMalformedMarker)
			}
			blob, err := decodeB64(content)
			if err != nil || len(blob) == 0 {
				return nil, fmt.Errorf("%w: content is not canonical base64", ErrMalformedMarker)
			}
			return []markerSpan{{Start: 0, End: len(s), B64: content, Blob: blob}}, nil
		}
	}
	if !embedded || p == "" {
		return nil, nil
	}
	var out []markerSpan
	for pos := 0; pos < len(s); {
		i := strings.Index(s[pos:], p)
		if i < 0 {
			break
		}
		start := pos + i
		cStart := start + len(p)
		j := -1
		if sfx == "" {
			// No suffix: the marker runs to the end of the base64 text.
			j = cStart
			for j < len(s) && isB64Char(s[j]) {
				j++
			}
			j -= cStart
		} else {
			j = strings.Index(s[cStart:], sfx)
		}
		if j < 0 {
			break
		}
		content := s[cStart : cStart+j]
		if !isB64Text(content) {
			pos = start + 1
			continue
		}
		blob, err := decodeB64(content)
		if err != nil || len(blob) == 0 {
			return nil, fmt.Errorf("%w: embedded content is not canonical base64", ErrMalformedMarker)
		}
		end := cStart + j + len(sfx)
		out = append(out, markerSpan{Start: start, End: end, B64: content, Blob: blob})
		pos = end
	}
	return out, nil
}
