package configcenter

import (
	"fmt"
	"path"
	"strings"

	"github.com/knadh/koanf/parsers/json"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

// FormatOf infers a Format from a document name's suffix (.yaml, .yml,
// .json, .properties, .toml; case-insensitive). It returns "" when the
// suffix is none of these.
func FormatOf(name string) Format {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return FormatYAML
	case ".json":
		return FormatJSON
	case ".properties":
		return FormatProperties
	case ".toml":
		return FormatTOML
	}
	return ""
}

// parserFor returns the koanf parser of f.
func parserFor(f Format) koanf.Parser {
	switch f {
	case FormatYAML:
		return yaml.Parser()
	case FormatJSON:
		return json.Parser()
	case FormatTOML:
		return toml.Parser()
	case FormatProperties:
		return Properties{}
	}
	return nil
}

// ParseDocument parses one document (format explicit or inferred from its
// name) into a nested map. ENC values are left as they are.
func ParseDocument(d Document) (map[string]any, error) {
	k := koanf.New(".")
	if err := loadDoc(k, d); err != nil {
		return nil, err
	}
	return k.Raw(), nil
}

func loadDoc(k *koanf.Koanf, d Document) error {
	f := d.Format
	if f == "" {
		f = FormatOf(d.Name)
	}
	p := parserFor(f)
	if p == nil {
		return fmt.Errorf("%w: %q (format %q)", ErrUnknownFormat, d.Name, f)
	}
	if len(strings.TrimSpace(string(d.Data))) == 0 {
		return nil // an empty document is an empty config
	}
	if err := k.Load(rawbytes.Provider(d.Data), p); err != nil {
		return fmt.Errorf("%w: %q as %s: %s", ErrParse, d.Name, f, firstLine(err.Error(), 200))
	}
	return nil
}

// firstLine keeps the first line of a parser message, bounded: some
// parsers quote the surrounding source, which is not for logs.
func firstLine(s string, max int) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

// mergeStates parses and merges every document and flat value of states,
// in order (later wins), into one nested raw map.
func mergeStates(states []State) (map[string]any, error) {
	k := koanf.New(".")
	for _, st := range states {
		for _, d := range st.Docs {
			if err := loadDoc(k, d); err != nil {
				return nil, err
			}
		}
		if len(st.Values) > 0 {
			flat := make(map[string]any, len(st.Values))
			for p, v := range st.Values {
				flat[p] = v
			}
			if err := k.Load(confmap.Provider(flat, "."), nil); err != nil {
				return nil, fmt.Errorf("%w: flat values: %s", ErrParse, firstLine(err.Error(), 200))
			}
		}
	}
	return k.Raw(), nil
}
