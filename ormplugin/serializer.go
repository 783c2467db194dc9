package ormplugin

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"unsafe"

	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

func init() { schema.RegisterSerializer(SerializerName, kmsSerializer{}) }

// kmsSerializer is the GORM serializer behind `gorm:"serializer:kms"`. It is
// global (GORM's registry is), so it finds the plugin of the statement in the
// statement context, put there by the plugin's callbacks.
type kmsSerializer struct{}

func (kmsSerializer) ck(ctx context.Context, field *schema.Field, reading bool) (*stmtState, colRef, error) {
	st := stateFrom(ctx)
	if st == nil && reading && field.Schema != nil {
		if p, ok := schemaPlugins.Load(field.Schema); ok {
			st = &stmtState{p: p.(*Plugin)}
		}
	}
	if st == nil {
		return nil, colRef{}, ErrNoPlugin
	}
	st.mu.Lock()
	ref, ok := st.cks[field]
	st.mu.Unlock()
	if ok {
		return st, ref, nil
	}
	table := field.Schema.Table
	var fi *fieldInfo
	if sch := field.Schema; sch != nil {
		if fi = st.p.schemaInfo(sch).byField[field]; fi != nil {
			table = fi.table
		}
	}
	ref = colRef{ck: colKey{table, field.DBName}, fi: fi}
	st.mu.Lock()
	if st.cks == nil {
		st.cks = map[*schema.Field]colRef{}
	}
	st.cks[field] = ref
	st.mu.Unlock()
	return st, ref, nil
}

// bindOf returns the row binding of a bound field in the struct row (nil
// for an unbound field); a missing value is reported by encrypt/decrypt
// only when it matters.
func bindOf(ctx context.Context, fi *fieldInfo, row reflect.Value) *bindCtx {
	if fi == nil || fi.bind == nil {
		return nil
	}
	b := &bindCtx{column: fi.bind.DBName}
	b.value, b.missing = fi.rowBind(ctx, row)
	return b
}

// Value encrypts a field value for the database. NULL stays NULL.
func (s kmsSerializer) Value(ctx context.Context, field *schema.Field, dst reflect.Value, fieldValue any) (any, error) {
	if str, ok := fieldValue.(string); ok {
		// Hot path (CreateInBatches of string fields): one lock, no map
		// lookups, when this statement's last encrypted field is this one.
		if st := stateFrom(ctx); st != nil {
			if out, ok := st.encryptCached(field, str); ok {
				return out, nil
			}
		}
	}
	st, ref, err := s.ck(ctx, field, false)
	if err != nil {
		return nil, err
	}
	if si := st.p.schemaInfo(field.Schema); si.err != nil {
		return nil, si.err
	}
	ck := ref.ck
	b := bindOf(ctx, ref.fi, dst)
	if str, ok := fieldValue.(string); ok {
		// Fast path: seal straight from the caller's string (it stays in
		// the caller's struct anyway, so there is no copy to clear).
		out, err := st.encrypt(ctx, ck, b, unsafe.Slice(unsafe.StringData(str), len(str)))
		if err == nil && b == nil {
			st.remember(field, ck)
		}
		return out, err
	}
	plain, null, err := encodePlain(fieldValue)
	if err != nil || null {
		return nil, err
	}
	defer clear(plain)
	return st.encrypt(ctx, ck, b, plain)
}

// Scan decrypts a stored value into the field. NULL becomes the zero value.
// In a query statement a failure is recorded and reported, with the row's
// primary key, when the statement ends (see done); the field stays zero.
func (s kmsSerializer) Scan(ctx context.Context, field *schema.Field, dst reflect.Value, dbValue any) error {
	rv := field.ReflectValueOf(ctx, dst)
	if dbValue == nil {
		rv.Set(reflect.Zero(field.FieldType))
		return nil
	}
	st, ref, err := s.ck(ctx, field, true)
	if err != nil {
		return err
	}
	err = s.scan(ctx, st, ref, field, rv, dst, dbValue)
	if err == nil {
		return nil
	}
	rv.Set(reflect.Zero(field.FieldType))
	if st.query {
		st.mu.Lock()
		st.failed = append(st.failed, failedScan{row: dst, field: field, table: ref.ck.table, err: err})
		st.mu.Unlock()
		return nil
	}
	return &DecryptError{Table: ref.ck.table, Column: field.DBName, PrimaryKey: rowPK(ctx, field.Schema, dst), Err: err}
}

func (kmsSerializer) scan(ctx context.Context, st *stmtState, ref colRef, field *schema.Field, rv, dst reflect.Value, dbValue any) error {
	b := bindOf(ctx, ref.fi, dst)
	if field.FieldType == typString { // fast path: no reflect.New
		if str, ok := dbValue.(string); ok {
			plain, err := st.p.decrypt(ctx, st, ref.ck, b, unsafe.Slice(unsafe.StringData(str), len(str)))
			if err != nil {
				return err
			}
			rv.SetString(string(plain))
			clear(plain)
			return nil
		}
	}
	v, err := st.p.openValue(ctx, st, ref.ck, b, field.FieldType, dbValue)
	if err != nil {
		return err
	}
	rv.Set(v)
	return nil
}

// gormSerializerPlain extracts the field value from GORM's internal
// serializer wrapper (what schema.Field.ValueOf returns for serializer
// fields): its exported Field and Destination say where the value lives.
func gormSerializerPlain(ctx context.Context, v any) (any, bool) {
	f := gormSerializerField(v)
	if f == nil {
		return nil, false
	}
	dest, ok := reflect.ValueOf(v).Elem().FieldByName("Destination").Interface().(reflect.Value)
	if !ok || !dest.IsValid() {
		return nil, false
	}
	return f.ReflectValueOf(ctx, dest).Interface(), true
}

// gormSerializerField returns the field of a GORM serializer wrapper, or nil.
func gormSerializerField(v any) *schema.Field {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil
	}
	e := rv.Elem()
	if e.Type().PkgPath() != "gorm.io/gorm/schema" || e.Type().Name() != "serializer" {
		return nil
	}
	f, _ := e.FieldByName("Field").Interface().(*schema.Field)
	return f
}

// assignUpdate builds the SET clause of an update itself so that every
// encrypted column is encrypted whatever GORM path produced it (struct,
// map, Update, UpdateColumn(s), Save) and its blind index follows.
func (p *Plugin) assignUpdate(db *gorm.DB) {
	stmt := db.Statement
	if db.Error != nil || stmt.Schema == nil {
		return
	}
	si := p.schemaInfo(stmt.Schema)
	if len(si.fields) == 0 {
		return
	}
	if si.err != nil {
		_ = db.AddError(si.err)
		return
	}
	st := stateFrom(stmt.Context)
	if st == nil || st.p != p {
		st = p.attach(db)
	}
	ctx := stmt.Context
	if c, ok := stmt.Clauses["SET"]; ok {
		// A SET clause given by the caller (db.Clauses(clause.Set{...})).
		set, _ := c.Expression.(clause.Set)
		for _, a := range set {
			if f := stmt.Schema.LookUpField(a.Column.Name); f != nil && si.byField[f] != nil {
				_ = db.AddError(fmt.Errorf("%w: raw SET clause on encrypted column %s", ErrUnsupported, f.DBName))
				return
			}
		}
		return
	}
	set := callbacks.ConvertToAssignments(stmt)
	if db.Error != nil || len(set) == 0 {
		return
	}
	var indexes []clause.Assignment
	bindWhere := map[string]bool{}
	for i := range set {
		f := stmt.Schema.LookUpField(set[i].Column.Name)
		fi := si.byField[f]
		if f == nil || fi == nil {
			continue
		}
		plainValue, ok := gormSerializerPlain(ctx, set[i].Value)
		if !ok {
			plainValue = set[i].Value
			if isExpr(plainValue) {
				_ = db.AddError(fmt.Errorf("%w: SQL expression assigned to encrypted column %s", ErrUnsupported, f.DBName))
				return
			}
		}
		plain, null, err := encodePlain(plainValue)
		if err != nil {
			_ = db.AddError(err)
			return
		}
		var b *bindCtx
		if fi.bind != nil {
			// Every row the statement updates must have the bound value
			// the ciphertext is sealed with: take it from the model and
			// restrict the statement to it.
			if b = bindOf(ctx, fi, stmt.ReflectValue); b.value == nil {
				clear(plain)
				_ = db.AddError(fmt.Errorf("%w: update of row-bound column %s needs the row's %s (db.Model(&row) with it set)", ErrBindMissing, f.DBName, fi.bind.DBName))
				return
			}
			for _, a := range set {
				if a.Column.Name == fi.bind.DBName && !bindWhere[fi.bind.DBName] {
					if nb, ok := bindBytes(valueOfAssignment(ctx, a.Value)); !ok || string(nb) != string(b.value) {
						clear(plain)
						_ = db.AddError(fmt.Errorf("%w: %s binds %s and cannot change", ErrUnsupported, fi.bind.DBName, f.DBName))
						return
					}
				}
			}
			if !bindWhere[fi.bind.DBName] {
				bindWhere[fi.bind.DBName] = true
				v, _ := fi.bind.ValueOf(ctx, reflect.Indirect(stmt.ReflectValue))
				stmt.AddClause(clause.Where{Exprs: []clause.Expression{clause.Eq{Column: clause.Column{Table: clause.CurrentTable, Name: fi.bind.DBName}, Value: v}}})
			}
		}
		if null {
			set[i].Value = nil
		} else {
			ct, err := st.encrypt(ctx, fi.key(), b, plain)
			clear(plain)
			if err != nil {
				_ = db.AddError(err)
				return
			}
			set[i].Value = ct
		}
		if fi.index != nil {
			bidx, err := p.indexOf(ctx, db, fi.key(), plainValue)
			if err != nil {
				_ = db.AddError(err)
				return
			}
			indexes = append(indexes, clause.Assignment{Column: clause.Column{Name: fi.index.DBName}, Value: bidx})
			if rv := stmt.ReflectValue; rv.Kind() == reflect.Struct && rv.CanAddr() {
				_ = fi.index.Set(ctx, rv, bidx)
			}
		}
	}
	for _, ia := range indexes {
		set = slices.DeleteFunc(set, func(a clause.Assignment) bool { return a.Column.Name == ia.Column.Name })
	}
	set = append(set, indexes...)
	stmt.AddClause(set)
	st.addSet = true
}

// valueOfAssignment unwraps GORM's serializer wrapper of an assignment.
func valueOfAssignment(ctx context.Context, v any) any {
	if pv, ok := gormSerializerPlain(ctx, v); ok {
		return pv
	}
	return v
}

func isExpr(v any) bool {
	switch v.(type) {
	case clause.Expression, *gorm.DB:
		return true
	}
	return false
}

// decryptMaps decrypts encrypted columns of query results read into maps
// (Find(&[]map[string]any{}) with a Model). A map read returns each
// encrypted column as a value of the field's Go type (for example string
// for a string field, a *T for a *T field), or nil for NULL.
func (p *Plugin) decryptMaps(db *gorm.DB) {
	stmt := db.Statement
	st := stateFrom(stmt.Context)
	if st != nil && st.pluck != nil {
		if db.Error != nil { // never leave ciphertext in the caller's slice
			rv := reflect.ValueOf(stmt.Dest).Elem()
			for i := 0; i < rv.Len(); i++ {
				rv.Index(i).Set(reflect.Zero(rv.Type().Elem()))
			}
			st.pluck = nil
			return
		}
		p.decryptPluck(db, st)
		return
	}
	if st == nil || st.origSchema == nil {
		return
	}
	stmt.Schema, st.origSchema = st.origSchema, nil
	if db.Error != nil {
		return
	}
	si := p.schemaInfo(stmt.Schema)
	if len(si.fields) == 0 {
		return
	}
	var maps []map[string]any
	switch d := stmt.Dest.(type) {
	case map[string]any:
		maps = []map[string]any{d}
	case *map[string]any:
		maps = []map[string]any{*d}
	case []map[string]any:
		maps = d
	case *[]map[string]any:
		maps = *d
	default:
		return
	}
	var failed []*DecryptError
	for _, m := range maps {
		for _, fi := range si.fields {
			raw, ok := m[fi.field.DBName]
			if !ok {
				continue
			}
			if raw == nil {
				m[fi.field.DBName] = nil
				continue
			}
			if b, ok := raw.(*any); ok { // some drivers leave *interface{}
				raw = *b
			}
			var b *bindCtx
			if fi.bind != nil {
				b = &bindCtx{column: fi.bind.DBName}
				var ok bool
				if b.value, ok = bindBytes(m[fi.bind.DBName]); !ok {
					b.value, b.missing = nil, fmt.Errorf("%w: %s is bound to %s, which the query did not select", ErrBindMissing, fi.field.DBName, fi.bind.DBName)
				}
			}
			v, err := p.openValue(stmt.Context, st, fi.key(), b, fi.field.FieldType, raw)
			if err != nil {
				// never leave ciphertext in the caller's map
				delete(m, fi.field.DBName)
				failed = append(failed, &DecryptError{Table: fi.table, Column: fi.field.DBName, PrimaryKey: mapPK(stmt.Schema, m), Err: err})
				continue
			}
			m[fi.field.DBName] = v.Interface()
		}
	}
	if len(failed) > 0 {
		_ = db.AddError(joinDecryptErrors(failed))
	}
}

// pluckField returns the encrypted field a Pluck (one selected column into
// a slice of non-structs) reads, or nil.
func (p *Plugin) pluckField(db *gorm.DB) *fieldInfo {
	stmt := db.Statement
	if stmt.Schema == nil || stmt.Dest == nil {
		return nil
	}
	dt := reflect.TypeOf(stmt.Dest)
	if dt.Kind() != reflect.Pointer || dt.Elem().Kind() != reflect.Slice {
		return nil
	}
	et := dt.Elem().Elem()
	for et.Kind() == reflect.Pointer {
		et = et.Elem()
	}
	if et.Kind() == reflect.Struct || et.Kind() == reflect.Map {
		return nil
	}
	var col string
	switch {
	case len(stmt.Selects) == 1:
		col = stmt.Selects[0]
	default:
		c, ok := stmt.Clauses["SELECT"]
		if !ok {
			return nil
		}
		sel, ok := c.Expression.(clause.Select)
		if !ok || len(sel.Columns) != 1 || sel.Columns[0].Raw {
			return nil
		}
		col = sel.Columns[0].Name
	}
	si := p.schemaInfo(stmt.Schema)
	fi := si.byName[col]
	if fi == nil {
		return nil
	}
	return fi
}

// decryptPluck decrypts the values a Pluck of an encrypted column scanned
// (as stored ciphertext) into the caller's slice: into string or []byte
// elements the plaintext, into the field's own type or any the decoded
// value. A row-bound column cannot be plucked (the rows are not read).
func (p *Plugin) decryptPluck(db *gorm.DB, st *stmtState) {
	fi := st.pluck
	st.pluck = nil
	rv := reflect.ValueOf(db.Statement.Dest).Elem()
	var failed []*DecryptError
	fail := func(err error) {
		failed = append(failed, &DecryptError{Table: fi.table, Column: fi.field.DBName, Err: err})
	}
	for i := 0; i < rv.Len(); i++ {
		e := rv.Index(i)
		target := e
		for target.Kind() == reflect.Pointer {
			if target.IsNil() {
				break
			}
			target = target.Elem()
		}
		var raw []byte
		switch {
		case target.Kind() == reflect.Pointer: // nil pointer: NULL
			continue
		case target.Kind() == reflect.String:
			raw = []byte(target.String())
		case target.Type() == typBytes:
			if target.IsNil() {
				continue
			}
			raw = target.Bytes()
		case target.Kind() == reflect.Interface:
			switch x := target.Interface().(type) {
			case nil:
				continue
			case string:
				raw = []byte(x)
			case []byte:
				raw = x
			}
		}
		if raw == nil {
			e.Set(reflect.Zero(e.Type()))
			fail(fmt.Errorf("%w: Pluck of encrypted column %s into %s", ErrUnsupported, fi.field.DBName, e.Type()))
			continue
		}
		var b *bindCtx
		if fi.bind != nil {
			b = &bindCtx{column: fi.bind.DBName, missing: fmt.Errorf("%w: Pluck of %s, which is bound to %s: select both into a struct", ErrBindMissing, fi.field.DBName, fi.bind.DBName)}
		}
		plain, err := p.decrypt(db.Statement.Context, st, fi.key(), b, raw)
		if err != nil {
			target.Set(reflect.Zero(target.Type()))
			fail(err)
			continue
		}
		switch {
		case target.Kind() == reflect.String:
			target.SetString(string(plain))
		case target.Type() == typBytes:
			target.SetBytes(append([]byte{}, plain...))
		default: // interface: the decoded field value
			v, err := decodePlain(fi.field.FieldType, plain)
			if err != nil {
				target.Set(reflect.Zero(target.Type()))
				fail(err)
				break
			}
			target.Set(v)
		}
		clear(plain)
	}
	if len(failed) > 0 {
		_ = db.AddError(joinDecryptErrors(failed))
	}
}

func isMapDest(dest any) bool {
	switch dest.(type) {
	case map[string]any, *map[string]any, []map[string]any, *[]map[string]any:
		return true
	}
	return false
}

// prepareMapRead makes GORM scan encrypted columns of a map read as raw
// bytes (it would otherwise scan them into the field types and fail), by
// giving the statement a copy of the schema whose encrypted fields are
// []byte. decryptMaps restores the schema and decrypts.
func (p *Plugin) prepareMapRead(db *gorm.DB) {
	stmt := db.Statement
	if db.Error != nil || stmt.Schema == nil || !isMapDest(stmt.Dest) {
		return
	}
	si := p.schemaInfo(stmt.Schema)
	if len(si.fields) == 0 {
		return
	}
	st := stateFrom(stmt.Context)
	if st == nil || st.p != p {
		return
	}
	p.infoMu.Lock()
	ms := si.mapSchema
	if ms == nil {
		o := stmt.Schema
		cp := schema.Schema{
			Name: o.Name, ModelType: o.ModelType, Table: o.Table,
			PrioritizedPrimaryField: o.PrioritizedPrimaryField, DBNames: o.DBNames,
			PrimaryFields: o.PrimaryFields, PrimaryFieldDBNames: o.PrimaryFieldDBNames,
			Fields:         append([]*schema.Field{}, o.Fields...),
			FieldsByName:   maps.Clone(o.FieldsByName),
			FieldsByDBName: maps.Clone(o.FieldsByDBName), FieldsByBindName: o.FieldsByBindName,
			FieldsWithDefaultDBValue: o.FieldsWithDefaultDBValue,
			QueryClauses:             o.QueryClauses,
			AfterFind:                o.AfterFind,
		}
		for i, f := range cp.Fields {
			if si.byField[f] == nil {
				continue
			}
			nf := *f
			nf.FieldType, nf.IndirectFieldType = typBytes, typBytes
			cp.Fields[i] = &nf
			cp.FieldsByName[f.Name] = &nf
			if f.DBName != "" {
				cp.FieldsByDBName[f.DBName] = &nf
			}
		}
		ms = &cp
		si.mapSchema = ms
	}
	p.infoMu.Unlock()
	st.origSchema = stmt.Schema
	stmt.Schema = ms
}
