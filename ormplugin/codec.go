package ormplugin

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Plaintext encoding of a field value before encryption:
//
//	string, *string, sql.NullString, sql.Null[string]   the UTF-8 bytes
//	[]byte, *[]byte, sql.Null[[]byte]                    the bytes
//	anything else                                        encoding/json
//
// A nil pointer, nil []byte, an invalid sql.Null*, or a nil map, slice or
// interface is stored as SQL NULL.

var (
	typString     = reflect.TypeFor[string]()
	typBytes      = reflect.TypeFor[[]byte]()
	typNullString = reflect.TypeFor[sql.NullString]()
)

// nullInner returns T for database/sql's Null[T] with T string or []byte.
func nullInner(t reflect.Type) (reflect.Type, bool) {
	if t.Kind() != reflect.Struct || t.PkgPath() != "database/sql" || !strings.HasPrefix(t.Name(), "Null[") {
		return nil, false
	}
	f, ok := t.FieldByName("V")
	if !ok {
		return nil, false
	}
	if _, ok := t.FieldByName("Valid"); !ok {
		return nil, false
	}
	if f.Type == typString || f.Type == typBytes {
		return f.Type, true
	}
	return nil, false
}

// encodePlain turns a field value into plaintext bytes. null is true when the
// value must be stored as SQL NULL.
func encodePlain(v any) (plain []byte, null bool, err error) {
	if v == nil {
		return nil, true, nil
	}
	switch x := v.(type) {
	case string:
		return []byte(x), false, nil
	case []byte:
		if x == nil {
			return nil, true, nil
		}
		return append([]byte{}, x...), false, nil
	case *string:
		if x == nil {
			return nil, true, nil
		}
		return []byte(*x), false, nil
	case *[]byte:
		if x == nil || *x == nil {
			return nil, true, nil
		}
		return append([]byte{}, (*x)...), false, nil
	case sql.NullString:
		if !x.Valid {
			return nil, true, nil
		}
		return []byte(x.String), false, nil
	case *sql.NullString:
		if x == nil || !x.Valid {
			return nil, true, nil
		}
		return []byte(x.String), false, nil
	}
	rv := reflect.ValueOf(v)
	if _, ok := nullInner(rv.Type()); ok {
		if !rv.FieldByName("Valid").Bool() {
			return nil, true, nil
		}
		return encodePlain(rv.FieldByName("V").Interface())
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		if rv.IsNil() {
			return nil, true, nil
		}
		if rv.Kind() == reflect.Pointer {
			return encodePlain(rv.Elem().Interface())
		}
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return nil, false, fmt.Errorf("%w: %s", ErrUnsupportedType, rv.Type())
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnsupportedType, rv.Type(), err)
	}
	return b, false, nil
}

// decodePlain builds a value of type t from plaintext bytes.
func decodePlain(t reflect.Type, plain []byte) (reflect.Value, error) {
	out := reflect.New(t).Elem()
	switch {
	case t == typString:
		out.SetString(string(plain))
	case t == typBytes:
		out.SetBytes(append([]byte{}, plain...))
	case t.Kind() == reflect.Pointer:
		inner, err := decodePlain(t.Elem(), plain)
		if err != nil {
			return out, err
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(inner)
		out.Set(p)
	case t == typNullString:
		out.Set(reflect.ValueOf(sql.NullString{String: string(plain), Valid: true}))
	default:
		if inner, ok := nullInner(t); ok {
			v, err := decodePlain(inner, plain)
			if err != nil {
				return out, err
			}
			out.FieldByName("V").Set(v)
			out.FieldByName("Valid").SetBool(true)
			return out, nil
		}
		if err := json.Unmarshal(plain, out.Addr().Interface()); err != nil {
			return out, ErrDecrypt
		}
	}
	return out, nil
}

// checkFieldType reports whether the plugin can encode values of type t.
func checkFieldType(t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return fmt.Errorf("%w: %s", ErrUnsupportedType, t)
	}
	return nil
}
