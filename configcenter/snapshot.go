package configcenter

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// Snapshot is one immutable, decrypted view of the merged configuration.
// Paths are dotted ("db.password"). Every getter returns its default when
// the path is missing or its value cannot be converted. A Snapshot is safe
// for concurrent use; its fmt output is redacted.
type Snapshot struct {
	k         *koanf.Koanf
	revisions []string
	loadedAt  time.Time
}

func newSnapshot(resolved map[string]any, revisions []string) (*Snapshot, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(resolved, ""), nil); err != nil {
		return nil, err
	}
	return &Snapshot{k: k, revisions: revisions, loadedAt: time.Now()}, nil
}

// Revisions returns the revision of each source (State.Revision), in the
// order of Options.Sources.
func (s *Snapshot) Revisions() []string { return append([]string(nil), s.revisions...) }

// LoadedAt is when the snapshot was built.
func (s *Snapshot) LoadedAt() time.Time { return s.loadedAt }

// Has reports whether path holds a value (or a subtree).
func (s *Snapshot) Has(path string) bool { return s.k.Exists(path) }

// Keys returns every leaf path, sorted.
func (s *Snapshot) Keys() []string { return s.k.Keys() }

// Get returns the value at path as parsed and decrypted (string, int64,
// float64, bool, []any or map[string]any; a copy), or nil.
func (s *Snapshot) Get(path string) any { return s.k.Get(path) }

// String returns the value at path as a string (numbers and booleans
// formatted), or def.
func (s *Snapshot) String(path, def string) string {
	v := s.k.Get(path)
	switch t := v.(type) {
	case nil, map[string]any, []any:
		return def
	case string:
		return t
	default:
		return fmt.Sprint(t)
	}
}

// Int returns the value at path as an int (a number or a decimal string),
// or def.
func (s *Snapshot) Int(path string, def int) int {
	v, ok := s.int64(path)
	if !ok || int64(int(v)) != v {
		return def
	}
	return int(v)
}

// Int64 is Int for int64.
func (s *Snapshot) Int64(path string, def int64) int64 {
	v, ok := s.int64(path)
	if !ok {
		return def
	}
	return v
}

func (s *Snapshot) int64(path string) (int64, bool) {
	switch t := s.k.Get(path).(type) {
	case int:
		return int64(t), true
	case int64:
		return t, true
	case int32:
		return int64(t), true
	case uint64:
		if t > 1<<63-1 {
			return 0, false
		}
		return int64(t), true
	case float64:
		if t != float64(int64(t)) {
			return 0, false
		}
		return int64(t), true
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		return i, err == nil
	}
	return 0, false
}

// Float64 returns the value at path as a float64, or def.
func (s *Snapshot) Float64(path string, def float64) float64 {
	switch t := s.k.Get(path).(type) {
	case float64:
		return t
	case int:
		return float64(t)
	case int64:
		return float64(t)
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(t), 64); err == nil {
			return f
		}
	}
	return def
}

// Bool returns the value at path as a bool (true/false, or a string
// strconv.ParseBool accepts), or def.
func (s *Snapshot) Bool(path string, def bool) bool {
	switch t := s.k.Get(path).(type) {
	case bool:
		return t
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(t)); err == nil {
			return b
		}
	}
	return def
}

// Duration returns the value at path as a time.Duration: a
// time.ParseDuration string ("1m30s") or an integer number of
// nanoseconds; otherwise def.
func (s *Snapshot) Duration(path string, def time.Duration) time.Duration {
	switch t := s.k.Get(path).(type) {
	case string:
		if d, err := time.ParseDuration(strings.TrimSpace(t)); err == nil {
			return d
		}
	case int, int64, float64:
		if v, ok := s.int64(path); ok {
			return time.Duration(v)
		}
	}
	return def
}

// Strings returns the list at path as strings. A string value is split on
// commas and each part trimmed (the properties convention: "a, b"). A
// missing path gives def.
func (s *Snapshot) Strings(path string, def []string) []string {
	switch t := s.k.Get(path).(type) {
	case []any:
		out := make([]string, 0, len(t))
		for _, v := range t {
			if str, ok := v.(string); ok {
				out = append(out, str)
			} else {
				out = append(out, fmt.Sprint(v))
			}
		}
		return out
	case string:
		if strings.TrimSpace(t) == "" {
			return []string{}
		}
		parts := strings.Split(t, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	return def
}

// StringMap returns the subtree at path as a flat map of dotted
// sub-paths to strings, or def when path is not a subtree.
func (s *Snapshot) StringMap(path string, def map[string]string) map[string]string {
	sub := s.k
	if path != "" {
		if _, ok := s.k.Get(path).(map[string]any); !ok {
			return def
		}
		sub = s.k.Cut(path)
	}
	out := map[string]string{}
	for p, v := range sub.All() {
		if str, ok := v.(string); ok {
			out[p] = str
		} else {
			out[p] = fmt.Sprint(v)
		}
	}
	return out
}

// Bind decodes the whole configuration into out, a pointer to a struct
// tagged with `koanf:"name"` (mapstructure rules, weakly typed: "8080"
// fills an int, "5s" a time.Duration).
func (s *Snapshot) Bind(out any) error { return s.BindPath("", out) }

// BindPath decodes the subtree (or value) at path into out.
func (s *Snapshot) BindPath(path string, out any) error {
	if err := s.k.Unmarshal(path, out); err != nil {
		// mapstructure errors name fields and types, and can quote the
		// offending value: keep only the field part.
		return fmt.Errorf("configcenter: bind %q: %s", path, redactDecodeError(err))
	}
	return nil
}

// changed reports whether the value at path differs between a and b.
func changed(a, b *Snapshot, path string) bool {
	return !reflect.DeepEqual(a.k.Get(path), b.k.Get(path))
}

// redactDecodeError keeps mapstructure's error lines up to the quoted
// value ("'port' expected type 'int', got unconvertible type 'string',
// value: 'x'"), so that a secret never ends up in an error string.
func redactDecodeError(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		if j := strings.Index(l, ", value: "); j >= 0 {
			lines[i] = l[:j] + ", value: [REDACTED]"
		}
		if j := strings.Index(l, "parsing \""); j >= 0 {
			lines[i] = l[:j] + "parsing [REDACTED]"
		}
	}
	return strings.Join(lines, "; ")
}

// Format makes every fmt verb (%v, %+v, %#v, %s, %q, %x, ...) print a
// description without any value: the key count and the revisions.
func (s Snapshot) Format(f fmt.State, _ rune) {
	keys := 0
	if s.k != nil {
		keys = len(s.k.Keys())
	}
	fmt.Fprintf(f, "configcenter.Snapshot{keys: %d, revisions: %q, values: [REDACTED]}", keys, s.revisions)
}
