package ormplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// Column types of a ColumnSpec.
const (
	TypeString = "string" // Go string fields (and *string, sql.NullString, ...)
	TypeBytes  = "bytes"  // Go []byte fields
	TypeJSON   = "json"   // any other field type: the column holds JSON text
)

// TableSpec describes a table by names, for tools (kmsctl) that have no Go
// struct for it. It must match the application's model: same table, column
// names, column kinds and blind index columns.
type TableSpec struct {
	Table      string
	PrimaryKey string // single column; default "id"
	// StringKey says the primary key is a string column (default: integer).
	StringKey bool
	Columns   []ColumnSpec
}

// ColumnSpec is one encrypted column of a TableSpec.
type ColumnSpec struct {
	Name  string
	Type  string // TypeString (default), TypeBytes or TypeJSON
	Index string // blind index column, if the model has one
	Bind  string // row binding column (kms:"bind=..."), if the model has one
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// model builds a struct type equivalent to the application model.
func (s TableSpec) model() (any, error) {
	pk := s.PrimaryKey
	if pk == "" {
		pk = "id"
	}
	if !identRE.MatchString(s.Table) || !identRE.MatchString(pk) || len(s.Columns) == 0 {
		return nil, fmt.Errorf("%w: table spec needs a table, a primary key and columns (plain identifiers)", ErrConfig)
	}
	pkType := reflect.TypeFor[int64]()
	if s.StringKey {
		pkType = typString
	}
	// The model only reads and updates existing rows: its key is never
	// generated here, which also lets columns bind to it.
	fields := []reflect.StructField{{Name: "PK", Type: pkType, Tag: reflect.StructTag(`gorm:"column:` + pk + `;primaryKey;autoIncrement:false"`)}}
	binds := map[string]bool{}
	for i, c := range s.Columns {
		if c.Bind != "" && c.Bind != pk && !binds[c.Bind] {
			if !identRE.MatchString(c.Bind) {
				return nil, fmt.Errorf("%w: column %q: bind column %q", ErrConfig, c.Name, c.Bind)
			}
			binds[c.Bind] = true
			fields = append(fields, reflect.StructField{Name: "B" + strconv.Itoa(i), Type: typBytes, Tag: reflect.StructTag(`gorm:"column:` + c.Bind + `"`)})
		}
		if !identRE.MatchString(c.Name) || (c.Index != "" && !identRE.MatchString(c.Index)) {
			return nil, fmt.Errorf("%w: column %q", ErrConfig, c.Name)
		}
		var t reflect.Type
		switch c.Type {
		case TypeString, "":
			t = typString
		case TypeBytes:
			t = typBytes
		case TypeJSON:
			t = reflect.TypeFor[json.RawMessage]()
		default:
			return nil, fmt.Errorf("%w: column %s: unknown type %q", ErrConfig, c.Name, c.Type)
		}
		n := "C" + strconv.Itoa(i)
		tag := `gorm:"column:` + c.Name + `;serializer:kms"`
		var opts []string
		if c.Index != "" {
			opts = append(opts, "index="+c.Index)
		}
		if c.Bind != "" {
			opts = append(opts, "bind="+c.Bind)
		}
		if len(opts) > 0 {
			tag += ` kms:"` + strings.Join(opts, ",") + `"`
		}
		if c.Index != "" {
			fields = append(fields, reflect.StructField{Name: n + "Idx", Type: typBytes, Tag: reflect.StructTag(`gorm:"column:` + c.Index + `"`)})
		}
		fields = append(fields, reflect.StructField{Name: n, Type: t, Tag: reflect.StructTag(tag)})
	}
	return reflect.New(reflect.StructOf(fields)).Interface(), nil
}

// MigrateTable is MigratePlaintext for a table described by names; it is
// what `kmsctl` runs.
func (p *Plugin) MigrateTable(ctx context.Context, db *gorm.DB, spec TableSpec, opts RewriteOptions) (Progress, error) {
	m, err := spec.model()
	if err != nil {
		return Progress{}, err
	}
	return p.rewrite(ctx, db, m, spec.Table, opts, modeMigrate, rewriteExtra{})
}

// ReencryptTable is Reencrypt for a table described by names.
func (p *Plugin) ReencryptTable(ctx context.Context, db *gorm.DB, spec TableSpec, opts RewriteOptions) (Progress, error) {
	m, err := spec.model()
	if err != nil {
		return Progress{}, err
	}
	return p.rewrite(ctx, db, m, spec.Table, opts, modeReencrypt, rewriteExtra{})
}
