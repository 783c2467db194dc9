package configcenter

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Properties is a koanf.Parser for Java-style .properties documents
// (koanf ships none). It follows java.util.Properties.load: '#' and '!'
// comments, '=', ':' or whitespace between key and value, a trailing odd
// backslash continues the line, and \t \n \r \f \uXXXX and \<char>
// escapes. Input is read as UTF-8. Dotted keys become nested maps
// ("db.password" -> {"db": {"password": ...}}); every value is a string.
// A repeated key keeps its last value (as in Java); a key that is both a
// value and a parent of other keys ("a=1", "a.b=2") is an error.
type Properties struct{}

// Unmarshal parses b into a nested map.
func (Properties) Unmarshal(b []byte) (map[string]any, error) {
	flat, err := parseProperties(string(b))
	if err != nil {
		return nil, err
	}
	return nestFlat(flat)
}

// Marshal writes a nested map as properties, one sorted "key=value" line
// per leaf, escaped so that Unmarshal reads it back unchanged. Non-string
// leaves are written with fmt's %v.
func (Properties) Marshal(m map[string]any) ([]byte, error) {
	flat := map[string]string{}
	flattenInto(m, "", true, flat)
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(escapeProperty(k, true))
		sb.WriteByte('=')
		sb.WriteString(escapeProperty(flat[k], false))
		sb.WriteByte('\n')
	}
	return []byte(sb.String()), nil
}

func flattenInto(m map[string]any, prefix string, root bool, out map[string]string) {
	for k, v := range m {
		key := k
		if !root {
			key = prefix + "." + k
		}
		switch t := v.(type) {
		case map[string]any:
			flattenInto(t, key, false, out)
		case string:
			out[key] = t
		default:
			out[key] = fmt.Sprintf("%v", t)
		}
	}
}

// propLine is one logical line of a properties document.
type propEntry struct {
	key, value string
	line       int
}

// parseProperties returns the entries of a properties document in order.
func parseProperties(s string) ([]propEntry, error) {
	var out []propEntry
	lines := splitLines(s)
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		l := strings.TrimLeft(lines[i], " \t\f")
		if l == "" || l[0] == '#' || l[0] == '!' {
			continue
		}
		// Join continuation lines: an odd number of trailing backslashes.
		logical := l
		for endsWithOddBackslashes(logical) {
			logical = logical[:len(logical)-1]
			if i+1 >= len(lines) {
				break
			}
			i++
			logical += strings.TrimLeft(lines[i], " \t\f")
		}
		key, value, err := splitKeyValue(logical)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		out = append(out, propEntry{key: key, value: value, line: lineNo})
	}
	return out, nil
}

// splitLines splits on \n, \r\n and \r, as Java does.
func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n':
			out = append(out, s[start:i])
			start = i + 1
		case '\r':
			out = append(out, s[start:i])
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func endsWithOddBackslashes(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits a logical line (leading whitespace removed) into its
// unescaped key and value.
func splitKeyValue(l string) (string, string, error) {
	// The key ends at the first unescaped '=', ':' or whitespace.
	end := len(l)
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c == '\\' {
			i++
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			end = i
			break
		}
	}
	rawKey := l[:end]
	rest := l[end:]
	// Skip whitespace, at most one '=' or ':', then whitespace again.
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	key, err := unescapeProperty(rawKey)
	if err != nil {
		return "", "", err
	}
	val, err := unescapeProperty(rest)
	if err != nil {
		return "", "", err
	}
	return key, val, nil
}

func unescapeProperty(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			sb.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			break // a lone trailing backslash is dropped, as in Java
		}
		switch c = s[i]; c {
		case 't':
			sb.WriteByte('\t')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 'f':
			sb.WriteByte('\f')
		case 'u':
			r, err := hex4(s, i+1)
			if err != nil {
				return "", err
			}
			i += 4
			if utf16IsHigh(r) && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if lo, err := hex4(s, i+3); err == nil && utf16IsLow(lo) {
					r = (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000
					i += 6
				}
			}
			sb.WriteRune(r)
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String(), nil
}

func utf16IsHigh(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16IsLow(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }

func hex4(s string, at int) (rune, error) {
	if at+4 > len(s) {
		return 0, fmt.Errorf("%w: truncated \\u escape", ErrParse)
	}
	var r rune
	for _, c := range []byte(s[at : at+4]) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("%w: malformed \\u escape", ErrParse)
		}
		r = r<<4 | rune(d)
	}
	return r, nil
}

// escapeProperty escapes s so that parseProperties reads it back as is.
func escapeProperty(s string, isKey bool) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			sb.WriteString(`\\`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\f':
			sb.WriteString(`\f`)
		case c == '=' || c == ':' || c == '#' || c == '!':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c == ' ' && (isKey || i == 0):
			sb.WriteString(`\ `)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&sb, `\u%04X`, c)
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				sb.WriteByte(c) // invalid UTF-8 byte: kept as is
			} else {
				sb.WriteString(s[i : i+n])
			}
			i += n
			continue
		default:
			sb.WriteByte(c)
		}
		i++
	}
	return sb.String()
}

// nestFlat turns ordered dotted entries into a nested map.
func nestFlat(entries []propEntry) (map[string]any, error) {
	root := map[string]any{}
	for _, e := range entries {
		parts := strings.Split(e.key, ".")
		m := root
		for i, p := range parts {
			last := i == len(parts)-1
			cur, exists := m[p]
			if last {
				if exists {
					if _, isMap := cur.(map[string]any); isMap {
						return nil, fmt.Errorf("%w: line %d: key %q is also a parent of other keys", ErrParse, e.line, e.key)
					}
				}
				m[p] = e.value
				break
			}
			if !exists {
				child := map[string]any{}
				m[p] = child
				m = child
				continue
			}
			child, isMap := cur.(map[string]any)
			if !isMap {
				return nil, fmt.Errorf("%w: line %d: key %q is under a key that has a value", ErrParse, e.line, e.key)
			}
			m = child
		}
	}
	return root, nil
}
