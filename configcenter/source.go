package configcenter

import "context"

// Format names how a Document's bytes are parsed.
type Format string

// The formats a Document may hold. An empty Format is inferred from the
// Document's Name suffix (.yaml/.yml, .json, .properties, .toml).
const (
	FormatYAML       Format = "yaml"
	FormatJSON       Format = "json"
	FormatProperties Format = "properties"
	FormatTOML       Format = "toml"
)

// Document is one config payload exactly as a source stores it: ENC(...)
// values are still ciphertext here. Sources never decrypt.
type Document struct {
	// Name identifies the document in errors and logs: a Nacos dataId, an
	// etcd key, a file path. Never the content.
	Name string
	// Format selects the parser; empty means "infer from Name".
	Format Format
	// Data is the raw content.
	Data []byte
}

// State is the complete content of a source at one moment.
type State struct {
	// Docs are parsed and merged in order; a later document wins.
	Docs []Document
	// Values are flat "dotted.path" -> raw string entries (for example an
	// etcd prefix whose keys are config paths), applied after Docs.
	Values map[string]string
	// Revision is an opaque version for logs and de-duplication (an etcd
	// revision, a Nacos MD5, a file's modification time).
	Revision string
}

// Source is where config comes from: Nacos, etcd or a file. Each source
// lives in its own package so that a service links only the SDK it uses.
//
// Load reads the current complete state. Watch then blocks and calls
// onChange with every later complete state, in order and never twice for the
// same revision, and onError with problems it recovers from by itself (a
// broken watch, a compaction, a lost server), until ctx is done or Close is
// called; it returns nil then. Close releases everything the source holds and
// is safe to call more than once.
type Source interface {
	Name() string
	Load(ctx context.Context) (State, error)
	Watch(ctx context.Context, onChange func(State), onError func(error)) error
	Close() error
}
