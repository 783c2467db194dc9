package ormplugin

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// DefaultBatchSize is the batch size of MigratePlaintext and Reencrypt.
const DefaultBatchSize = 500

// Progress reports how far a table rewrite (MigratePlaintext, Reencrypt) got.
type Progress struct {
	Table     string
	Total     int64 // rows in the table when the run started
	Scanned   int64 // rows examined so far
	Rewritten int64 // values written so far in this run
	LastKey   any   // primary key of the last row examined (nil before the first batch)
}

// RewriteOptions configures MigratePlaintext and Reencrypt.
type RewriteOptions struct {
	// BatchSize is the number of rows read and written per transaction.
	// Zero means DefaultBatchSize.
	BatchSize int
	// Progress, when set, is called after every batch.
	Progress func(Progress)
	// OlderThanVersion (Reencrypt only) re-encrypts only values whose data
	// key is wrapped under a master key version below it. Zero re-encrypts
	// every value under fresh data keys.
	OlderThanVersion int
}

// MigratePlaintext encrypts, in place, the existing plaintext values of the
// encrypted fields of model's table and fills their blind indexes.
//
// It reads the table in primary-key order in batches; each batch is written
// in one transaction, and a row is updated only if its values are unchanged
// since they were read. Values already in the ormplugin format are skipped,
// so an interrupted run (error, cancelled ctx, crash) is resumed by running
// it again. Before writing anything it checks that every target column can
// hold the ciphertext of its longest plaintext (ErrColumnTooSmall) and that
// every plaintext decodes as the field's type.
//
// While it runs, readers that may meet unmigrated rows need a plugin with
// Config.AllowPlaintextReads.
func (p *Plugin) MigratePlaintext(ctx context.Context, db *gorm.DB, model any, opts RewriteOptions) (Progress, error) {
	return p.rewrite(ctx, db, model, "", opts, modeMigrate)
}

// Reencrypt decrypts and encrypts again, under fresh data keys, the values
// of model's encrypted fields (all of them, or those under master key
// versions below opts.OlderThanVersion). Use it when a data key must be
// retired; after a master key rotation RenewDataKeys is usually enough.
// Like MigratePlaintext it is batched, resumable and optimistic. Other
// processes keep writing under their cached data key until it reaches
// Config.MaxKeyAge: run Reencrypt again after that to catch those values.
func (p *Plugin) Reencrypt(ctx context.Context, db *gorm.DB, model any, opts RewriteOptions) (Progress, error) {
	return p.rewrite(ctx, db, model, "", opts, modeReencrypt)
}

type rewriteMode int

const (
	modeMigrate rewriteMode = iota
	modeReencrypt
)

type rewriteRow struct {
	pk   any
	vals []sql.Null[[]byte]
}

func (p *Plugin) rewrite(ctx context.Context, db *gorm.DB, model any, table string, opts RewriteOptions, mode rewriteMode) (Progress, error) {
	if p.db == nil {
		return Progress{}, fmt.Errorf("%w: register the plugin with db.Use first", ErrConfig)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	db = db.Session(&gorm.Session{NewDB: true, Context: ctx})
	stmt := &gorm.Statement{DB: db}
	if err := stmt.ParseWithSpecialTableName(model, table); err != nil {
		return Progress{}, err
	}
	sch := stmt.Schema
	si := p.schemaInfo(sch)
	if si.err != nil {
		return Progress{}, si.err
	}
	var fields []*fieldInfo
	for _, fi := range si.fields {
		if fi.table == sch.Table {
			fields = append(fields, fi)
		}
	}
	if len(fields) == 0 {
		return Progress{}, fmt.Errorf("%w: %s has no encrypted fields", ErrConfig, sch.Name)
	}
	pkf := sch.PrioritizedPrimaryField
	if pkf == nil || len(sch.PrimaryFields) != 1 {
		return Progress{}, fmt.Errorf("%w: %s needs a single-column primary key", ErrUnsupported, sch.Name)
	}
	var newPK func() any
	switch pkf.IndirectFieldType.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		newPK = func() any { return new(int64) }
	case reflect.String:
		newPK = func() any { return new(string) }
	default:
		return Progress{}, fmt.Errorf("%w: primary key type %s", ErrUnsupported, pkf.FieldType)
	}
	prog := Progress{Table: sch.Table}
	if err := db.Table(sch.Table).Count(&prog.Total).Error; err != nil {
		return prog, err
	}

	var oldKeys map[int64]bool // data keys whose values Reencrypt rewrites
	if mode == modeMigrate {
		if err := p.checkColumns(ctx, db, sch, fields, pkf, newPK, opts.BatchSize); err != nil {
			return prog, err
		}
	} else {
		var rows []dataKeyRow
		if err := db.Where("tbl = ?", sch.Table).Find(&rows).Error; err != nil {
			return prog, err
		}
		oldKeys = map[int64]bool{}
		for _, r := range rows {
			if opts.OlderThanVersion <= 0 || r.KeyVersion < opts.OlderThanVersion {
				oldKeys[r.ID] = true
			}
		}
		for _, fi := range fields { // never re-encrypt under a key being retired
			p.keys.drop(fi.key(), oldKeys)
		}
	}

	cols := make([]string, 0, len(fields)+1)
	cols = append(cols, pkf.DBName)
	for _, fi := range fields {
		cols = append(cols, fi.field.DBName)
	}
	var last any
	for {
		if err := ctx.Err(); err != nil {
			return prog, err
		}
		batch, err := readBatch(db, sch.Table, cols, pkf.DBName, last, opts.BatchSize, newPK)
		if err != nil {
			return prog, err
		}
		if len(batch) == 0 {
			return prog, nil
		}
		n, err := p.rewriteBatch(ctx, db, sch.Table, pkf.DBName, fields, batch, mode, oldKeys)
		prog.Rewritten += n
		if err != nil {
			return prog, err
		}
		last = batch[len(batch)-1].pk
		prog.Scanned += int64(len(batch))
		prog.LastKey = last
		if opts.Progress != nil {
			opts.Progress(prog)
		}
	}
}

func readBatch(db *gorm.DB, table string, cols []string, pk string, after any, limit int, newPK func() any) ([]rewriteRow, error) {
	q := db.Table(table).Select(cols).Order(clause.OrderByColumn{Column: clause.Column{Name: pk}}).Limit(limit)
	if after != nil {
		q = q.Where(clause.Gt{Column: clause.Column{Name: pk}, Value: after})
	}
	rows, err := q.Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rewriteRow
	for rows.Next() {
		r := rewriteRow{vals: make([]sql.Null[[]byte], len(cols)-1)}
		pkp := newPK()
		dest := []any{pkp}
		for i := range r.vals {
			dest = append(dest, &r.vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		r.pk = reflect.ValueOf(pkp).Elem().Interface()
		out = append(out, r)
	}
	return out, rows.Err()
}

// canonicalPlain decodes a stored plaintext as the field's type and encodes
// it again, so that ciphertext and blind index use the same bytes as a
// value written through the plugin.
func canonicalPlain(fi *fieldInfo, raw []byte) ([]byte, error) {
	v, err := decodePlain(fi.field.FieldType, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: stored plaintext does not decode as %s", ErrUnsupportedType, fi.field.DBName, fi.field.FieldType)
	}
	plain, null, err := encodePlain(v.Interface())
	if err != nil {
		return nil, err
	}
	if null { // e.g. JSON "null": keep it as an encrypted empty JSON value
		return append([]byte{}, raw...), nil
	}
	return plain, nil
}

// checkColumns reads the whole table once (nothing is written) and fails if
// a plaintext does not decode or its ciphertext would not fit its column.
func (p *Plugin) checkColumns(ctx context.Context, db *gorm.DB, sch *schema.Schema, fields []*fieldInfo, pkf *schema.Field, newPK func() any, batchSize int) error {
	types, err := db.Migrator().ColumnTypes(sch.Table)
	if err != nil {
		return err
	}
	capacity := map[string]int64{}
	for _, ct := range types {
		if n, ok := ct.Length(); ok && n > 0 {
			capacity[strings.ToLower(ct.Name())] = n
		}
	}
	for _, fi := range fields {
		if fi.index != nil && !db.Migrator().HasColumn(sch.Table, fi.index.DBName) {
			return fmt.Errorf("%w: blind index column %s.%s does not exist (AutoMigrate the model first)", ErrConfig, sch.Table, fi.index.DBName)
		}
	}
	cols := []string{pkf.DBName}
	for _, fi := range fields {
		cols = append(cols, fi.field.DBName)
	}
	longest := make([]int, len(fields))
	var last any
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := readBatch(db, sch.Table, cols, pkf.DBName, last, batchSize, newPK)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			break
		}
		for _, r := range batch {
			for i, fi := range fields {
				v := r.vals[i]
				if !v.Valid || hasPrefix(v.V) {
					continue
				}
				plain, err := canonicalPlain(fi, v.V)
				if err != nil {
					return fmt.Errorf("%w (row %v)", err, r.pk)
				}
				longest[i] = max(longest[i], len(plain))
				clear(plain)
			}
		}
		last = batch[len(batch)-1].pk
	}
	for i, fi := range fields {
		need := int64(CiphertextLen(longest[i]))
		if c, ok := capacity[strings.ToLower(fi.field.DBName)]; ok && c < need {
			return fmt.Errorf("%w: %s.%s holds %d, needs %d for a %d-byte plaintext", ErrColumnTooSmall, sch.Table, fi.field.DBName, c, need, longest[i])
		}
	}
	return nil
}

// rewriteBatch encrypts the values of one batch that need it and writes
// them in one transaction. It returns the number of values written.
func (p *Plugin) rewriteBatch(ctx context.Context, db *gorm.DB, table, pk string, fields []*fieldInfo, batch []rewriteRow, mode rewriteMode, oldKeys map[int64]bool) (int64, error) {
	type update struct {
		pk    any
		set   map[string]any
		where map[string][]byte
	}
	var updates []update
	leases := map[colKey]*lease{}
	var nonces nonceSource
	for _, r := range batch {
		u := update{pk: r.pk, set: map[string]any{}, where: map[string][]byte{}}
		for i, fi := range fields {
			v := r.vals[i]
			if !v.Valid {
				continue
			}
			var plain []byte
			ck := fi.key()
			switch mode {
			case modeMigrate:
				if hasPrefix(v.V) {
					continue
				}
				var err error
				if plain, err = canonicalPlain(fi, v.V); err != nil {
					return 0, err
				}
			case modeReencrypt:
				sv, err := parseValue(v.V)
				if err != nil {
					return 0, fmt.Errorf("%w (%s row %v)", err, fi.field.DBName, r.pk)
				}
				if !oldKeys[sv.dkID] {
					continue
				}
				if plain, err = p.decrypt(ctx, nil, ck, v.V); err != nil {
					return 0, fmt.Errorf("%w (%s row %v)", err, fi.field.DBName, r.pk)
				}
			}
			l := leases[ck]
			if l == nil || l.left <= 0 {
				k, err := p.keys.reserve(ctx, p.db, nil, ck, int64(len(batch)))
				if err != nil {
					clear(plain)
					return 0, err
				}
				l = &lease{k: k, left: min(int64(len(batch)), p.cfg.MaxKeyUses)}
				leases[ck] = l
			}
			l.left--
			nonce := nonces.next()
			if nonce == nil {
				clear(plain)
				return 0, ErrKMS
			}
			ct := sealWithNonce(l.k, ck, plain, nonce)
			u.set[fi.field.DBName] = ct
			u.where[fi.field.DBName] = v.V
			if fi.index != nil && mode == modeMigrate {
				key, err := p.keys.indexKey(ctx, p.db, nil, ck)
				if err != nil {
					clear(plain)
					return 0, err
				}
				u.set[fi.index.DBName] = blindIndex(key, plain)
			}
			clear(plain)
		}
		if len(u.set) > 0 {
			updates = append(updates, u)
		}
	}
	if len(updates) == 0 {
		return 0, nil
	}
	var written int64
	err := db.Transaction(func(tx *gorm.DB) error {
		for _, u := range updates {
			q := tx.Table(table).Where(clause.Eq{Column: clause.Column{Name: pk}, Value: u.pk})
			for c, old := range u.where {
				q = q.Where(clause.Eq{Column: clause.Column{Name: c}, Value: string(old)})
			}
			res := q.Updates(u.set)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 1 { // 0: changed meanwhile by a writer, which encrypts
				written += int64(len(u.where))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return written, nil
}

// drop forgets the current encryption key of ck if it is one of keys, so
// that the next write uses a fresh data key.
func (r *keyring) drop(ck colKey, keys map[int64]bool) {
	st := r.col(ck)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cur != nil && keys[st.cur.id] {
		st.cur = nil
	}
}
