package ormplugin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// DefaultBatchSize is the batch size of MigratePlaintext and Reencrypt.
const DefaultBatchSize = 500

// Phases of a table rewrite, in Progress.Phase.
const (
	PhaseCheck   = "check"   // MigratePlaintext: reading everything before writing
	PhaseRewrite = "rewrite" // encrypting (or re-encrypting) batch by batch
	PhaseVerify  = "verify"  // MigratePlaintext: a further pass that finds what writers left
	PhasePrune   = "prune"   // Reencrypt: deleting data keys no value references
)

// Progress reports how far a table rewrite (MigratePlaintext, Reencrypt) got.
type Progress struct {
	Table string
	Phase string // PhaseCheck, PhaseRewrite, PhaseVerify or PhasePrune
	Total int64  // rows in the table when the run started
	// Scanned is the number of rows examined so far in the current phase.
	Scanned int64
	// Values is the number of non-NULL encrypted values in those rows.
	Values int64
	// Found is the number of values the current phase found to rewrite:
	// plaintext values (migration) or values under retired keys
	// (re-encryption).
	Found int64
	// Rewritten is the number of values written so far in this run, all
	// phases together.
	Rewritten int64
	// Retried counts rows re-read and rewritten again because a writer
	// changed them between read and update.
	Retried int64
	// Remaining is the number of values the last pass found and could not
	// rewrite (a writer changed the row on every retry). For MigratePlaintext
	// these are plaintext values still in the table (ErrPlaintextRemains).
	Remaining int64
	// Undecryptable counts values that parse as ciphertext of a stored data
	// key but fail authentication (tampered or corrupted): they are left
	// as they are; list them with VerifyTable.
	Undecryptable int64
	// KeysDeleted (Reencrypt) is the number of data key rows deleted
	// because no value of the table references them any more.
	KeysDeleted int64
	LastKey     any // primary key of the last row examined (nil before the first batch)
}

// RewriteOptions configures MigratePlaintext and Reencrypt.
type RewriteOptions struct {
	// BatchSize is the number of rows read and written per transaction.
	// Zero means DefaultBatchSize.
	BatchSize int
	// Progress, when set, is called after every batch of every phase.
	Progress func(Progress)
	// OlderThanVersion (Reencrypt only) re-encrypts only values whose data
	// key was generated under a master key version below it (renewal
	// re-wraps a data key under a newer version but does not change it, so
	// it still counts as generated under the old one). Key rows stored by
	// plugin versions that did not record the generating version count
	// under the version wrapping them now. Zero re-encrypts every value
	// under fresh data keys.
	OlderThanVersion int
	// KeepKeys (Reencrypt only) keeps data key rows that no value references
	// any more. By default Reencrypt deletes those older than KeyGrace.
	KeepKeys bool
	// KeyGrace (Reencrypt only) is the minimum age of a data key row it
	// deletes: other processes may still encrypt under a key until it is
	// Config.MaxKeyAge old. Zero means the plugin's MaxKeyAge plus 10
	// minutes; keep it above the largest MaxKeyAge of every process.
	KeyGrace time.Duration
}

// maxRetries bounds how often a row changed by a writer between read and
// update is read and rewritten again within one pass.
const maxRetries = 8

// maxPasses bounds the passes of MigratePlaintext (rewrite plus verify).
const maxPasses = 3

// MigratePlaintext encrypts, in place, the existing plaintext values of the
// encrypted fields of model's table and fills their blind indexes.
//
// Phases (Progress.Phase):
//
//   - check: reads the whole table without writing and fails if a target
//     column cannot hold the ciphertext of its longest plaintext
//     (ErrColumnTooSmall) or a plaintext does not decode as the field type;
//   - rewrite: reads the table in primary-key order in batches; each batch
//     is written in one transaction, and a row is updated only if its
//     values are unchanged since they were read. A row a writer changed in
//     between is read again and rewritten (up to 8 times): a writer through
//     the plugin encrypts the columns it writes, not the row's others;
//   - verify: reads the table again and encrypts what is still plaintext
//     (rows changed on every retry, writers without the plugin), up to
//     two more passes until a pass finds none.
//
// A value counts as ciphertext only when it parses and authenticates under
// a stored data key of its column, not by its prefix, so a plaintext that
// happens to start like a stored value is encrypted too. A value that
// parses, names a data key of the column and fails authentication is left
// alone and counted in Progress.Undecryptable (list them with VerifyTable).
//
// An interrupted run (error, cancelled ctx, crash) is resumed by running it
// again. If plaintext values remain after the last pass the error is
// ErrPlaintextRemains and Progress.Remaining holds their number.
//
// While it runs, readers that may meet unmigrated rows need a plugin with
// Config.AllowPlaintextReads.
func (p *Plugin) MigratePlaintext(ctx context.Context, db *gorm.DB, model any, opts RewriteOptions) (Progress, error) {
	return p.rewrite(ctx, db, model, "", opts, modeMigrate, rewriteExtra{})
}

// Reencrypt decrypts and encrypts again, under fresh data keys, the values
// of model's encrypted fields: all of them, or those whose data key was
// generated under a master key version below opts.OlderThanVersion. Values
// of row-bound fields written before binding was enabled are rewritten in
// the bound format in any case. Use it when a data key must be retired;
// after a master key rotation RenewDataKeys is usually enough. Like
// MigratePlaintext it is batched, resumable and optimistic.
//
// When the rewrite left no value behind it deletes the column's data key
// rows that no value of the table references and that are older than
// opts.KeyGrace (unless opts.KeepKeys): other processes keep writing under
// their cached data key until it is Config.MaxKeyAge old, so a younger key
// is kept, and running Reencrypt again after that catches those values and
// deletes the rest. Ciphertexts copied outside the table (for example into
// an archive table read through kms:"table=...") are not considered: set
// KeepKeys for such tables.
func (p *Plugin) Reencrypt(ctx context.Context, db *gorm.DB, model any, opts RewriteOptions) (Progress, error) {
	return p.rewrite(ctx, db, model, "", opts, modeReencrypt, rewriteExtra{})
}

type rewriteMode int

const (
	modeMigrate rewriteMode = iota
	modeReencrypt
)

type rewriteRow struct {
	pk    any
	vals  []sql.Null[[]byte]
	binds [][]byte // per field: the bound value (nil: unbound or NULL)
}

// tableScan describes the columns a rewrite or a scan reads.
type tableScan struct {
	table   string
	pk      *schema.Field
	newPK   func() any
	fields  []*fieldInfo
	cols    []string // pk, fields..., extra bind columns...
	bindIdx []int    // per field: -1 unbound, 0 the primary key, >0 index into vals
}

func newTableScan(sch *schema.Schema, si *schemaInfo) (*tableScan, error) {
	ts := &tableScan{table: sch.Table}
	for _, fi := range si.fields {
		if fi.table == sch.Table {
			ts.fields = append(ts.fields, fi)
		}
	}
	if len(ts.fields) == 0 {
		return nil, fmt.Errorf("%w: %s has no encrypted fields", ErrConfig, sch.Name)
	}
	pkf := sch.PrioritizedPrimaryField
	if pkf == nil || len(sch.PrimaryFields) != 1 {
		return nil, fmt.Errorf("%w: %s needs a single-column primary key", ErrUnsupported, sch.Name)
	}
	ts.pk = pkf
	switch pkf.IndirectFieldType.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		ts.newPK = func() any { return new(int64) }
	case reflect.String:
		ts.newPK = func() any { return new(string) }
	default:
		return nil, fmt.Errorf("%w: primary key type %s", ErrUnsupported, pkf.FieldType)
	}
	ts.cols = append(ts.cols, pkf.DBName)
	for _, fi := range ts.fields {
		ts.cols = append(ts.cols, fi.field.DBName)
	}
	extra := map[string]int{}
	for _, fi := range ts.fields {
		switch {
		case fi.bind == nil:
			ts.bindIdx = append(ts.bindIdx, -1)
		case fi.bind.DBName == pkf.DBName:
			ts.bindIdx = append(ts.bindIdx, 0)
		default:
			i, ok := extra[fi.bind.DBName]
			if !ok {
				i = len(ts.cols) - 1
				extra[fi.bind.DBName] = i
				ts.cols = append(ts.cols, fi.bind.DBName)
			}
			ts.bindIdx = append(ts.bindIdx, i)
		}
	}
	return ts, nil
}

// bindCtx returns the row binding of field i of r (nil when unbound).
func (ts *tableScan) bindCtx(r rewriteRow, i int) *bindCtx {
	fi := ts.fields[i]
	if fi.bind == nil {
		return nil
	}
	b := &bindCtx{column: fi.bind.DBName, value: r.binds[i]}
	if b.value == nil {
		b.missing = fmt.Errorf("%w: %s is bound to %s, which is empty in this row", ErrBindMissing, fi.field.DBName, fi.bind.DBName)
	}
	return b
}

// read reads up to limit rows after the primary key value after (nil: from
// the start), or the rows with the given primary keys when pks is set.
func (ts *tableScan) read(db *gorm.DB, after any, limit int, pks []any) ([]rewriteRow, error) {
	q := db.Table(ts.table).Select(ts.cols).Order(clause.OrderByColumn{Column: clause.Column{Name: ts.pk.DBName}})
	switch {
	case pks != nil:
		q = q.Where(clause.IN{Column: clause.Column{Name: ts.pk.DBName}, Values: pks})
	case after != nil:
		q = q.Where(clause.Gt{Column: clause.Column{Name: ts.pk.DBName}, Value: after}).Limit(limit)
	default:
		q = q.Limit(limit)
	}
	rows, err := q.Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rewriteRow
	for rows.Next() {
		vals := make([]sql.Null[[]byte], len(ts.cols)-1)
		pkp := ts.newPK()
		dest := []any{pkp}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		r := rewriteRow{pk: reflect.ValueOf(pkp).Elem().Interface(), vals: vals[:len(ts.fields)], binds: make([][]byte, len(ts.fields))}
		for i, bi := range ts.bindIdx {
			switch {
			case bi == 0:
				r.binds[i], _ = bindBytes(r.pk)
			case bi > 0 && vals[bi].Valid && len(vals[bi].V) > 0:
				r.binds[i] = vals[bi].V
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// each calls fn for every batch of the table, in primary-key order.
func (ts *tableScan) each(ctx context.Context, db *gorm.DB, batchSize int, fn func([]rewriteRow) error) error {
	return ts.eachFrom(ctx, db, nil, batchSize, fn)
}

// eachFrom is each for the rows after the primary key value last (nil:
// from the start).
func (ts *tableScan) eachFrom(ctx context.Context, db *gorm.DB, last any, batchSize int, fn func([]rewriteRow) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := ts.read(db, last, batchSize, nil)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
		last = batch[len(batch)-1].pk
	}
}

// Kinds of stored values (classify).
const (
	valPlain  = iota // not ciphertext: migrate it
	valCipher        // ciphertext that authenticates
	valBad           // names a data key of the column but does not authenticate
)

// classify tells plaintext from ciphertext by full parse and
// authentication: a value is ciphertext only if it parses, names a stored
// data key and opens under it. plain (valCipher only) must be cleared by
// the caller. A KMS failure is an error.
func (p *Plugin) classify(ctx context.Context, ck colKey, b *bindCtx, raw []byte) (kind int, plain []byte, err error) {
	if _, perr := parseValue(raw); perr != nil {
		return valPlain, nil, nil
	}
	plain, err = p.decryptStrict(ctx, ck, b, raw)
	switch {
	case err == nil:
		return valCipher, plain, nil
	case errors.Is(err, ErrKMS):
		return 0, nil, err
	case errors.Is(err, errUnknownKey):
		return valPlain, nil, nil // well-formed, but names no data key: plaintext
	}
	return valBad, nil, err
}

// decryptStrict is decrypt without the plaintext pass-through.
func (p *Plugin) decryptStrict(ctx context.Context, ck colKey, b *bindCtx, raw []byte) ([]byte, error) {
	if _, err := parseValue(raw); err != nil {
		return nil, err
	}
	return p.decrypt(ctx, nil, ck, b, raw)
}

// rewriteExtra are the options of rewrite that the public Reencrypt does
// not expose (Renew uses them).
type rewriteExtra struct {
	// after resumes the first pass after this primary key (its text form:
	// decimal for an integer key); "" starts at the beginning.
	after string
	// skipBad counts a value that cannot be decrypted (ErrDecrypt,
	// ErrNotCiphertext, ErrBindMissing) in Progress.Undecryptable and goes
	// on, instead of failing the run (modeReencrypt).
	skipBad bool
	// dryRun counts the values a re-encryption would rewrite (Found)
	// without decrypting, writing, retiring or deleting anything.
	dryRun bool
	// onBatch runs after each committed batch, before Progress; an error
	// stops the run (a lost lease).
	onBatch func(Progress) error
}

func (p *Plugin) rewrite(ctx context.Context, db *gorm.DB, model any, table string, opts RewriteOptions, mode rewriteMode, x rewriteExtra) (Progress, error) {
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
	ts, err := newTableScan(sch, si)
	if err != nil {
		return Progress{}, err
	}
	prog := Progress{Table: sch.Table}
	if err := db.Table(sch.Table).Count(&prog.Total).Error; err != nil {
		return prog, err
	}
	report := func() {
		if opts.Progress != nil {
			opts.Progress(prog)
		}
	}

	var oldKeys map[int64]bool // data keys whose values Reencrypt rewrites
	if mode == modeMigrate {
		prog.Phase = PhaseCheck
		if err := p.checkColumns(ctx, db, sch, ts, opts.BatchSize, &prog, report); err != nil {
			return prog, err
		}
	} else {
		var rows []dataKeyRow
		if err := db.Where("tbl = ?", sch.Table).Find(&rows).Error; err != nil {
			return prog, err
		}
		oldKeys = map[int64]bool{}
		for _, r := range rows {
			if opts.OlderThanVersion <= 0 || r.genVersion() < opts.OlderThanVersion {
				oldKeys[r.ID] = true
			}
		}
		if !x.dryRun {
			for _, fi := range ts.fields { // never re-encrypt under a key being retired
				p.keys.drop(fi.key(), oldKeys)
			}
		}
	}

	for pass := 1; ; pass++ {
		prog.Phase = PhaseRewrite
		if pass > 1 {
			prog.Phase = PhaseVerify
		}
		prog.Scanned, prog.Values, prog.Found, prog.Remaining, prog.Undecryptable = 0, 0, 0, 0, 0
		var start any
		if pass == 1 && x.after != "" {
			var err error
			if start, err = ts.parsePK(x.after); err != nil {
				return prog, err
			}
			prog.LastKey = start
		}
		err := ts.eachFrom(ctx, db, start, opts.BatchSize, func(batch []rewriteRow) error {
			if x.dryRun {
				found, values := ts.countStale(batch, oldKeys)
				prog.Found += found
				prog.Values += values
				prog.Scanned += int64(len(batch))
				prog.LastKey = batch[len(batch)-1].pk
				report()
				return nil
			}
			rows := batch
			for attempt := 0; ; attempt++ {
				res, err := p.rewriteBatch(ctx, db, ts, rows, mode, oldKeys, x.skipBad)
				prog.Rewritten += res.written
				if attempt == 0 {
					prog.Values += res.values
					prog.Found += res.found
					prog.Undecryptable += res.bad
				}
				if err != nil {
					return err
				}
				if len(res.conflicts) == 0 {
					break
				}
				if attempt == maxRetries {
					prog.Remaining += res.conflictValues
					break
				}
				prog.Retried += int64(len(res.conflicts))
				if rows, err = ts.read(db, nil, 0, res.conflicts); err != nil {
					return err
				}
			}
			prog.Scanned += int64(len(batch))
			prog.LastKey = batch[len(batch)-1].pk
			if x.onBatch != nil {
				if err := x.onBatch(prog); err != nil {
					return err
				}
			}
			report()
			return nil
		})
		if err != nil {
			return prog, err
		}
		if mode == modeReencrypt {
			break
		}
		if pass > 1 && prog.Found == 0 {
			break
		}
		if pass == maxPasses {
			// Plaintext kept coming back (a writer without the plugin, a
			// trigger): count what is left now, without writing.
			n, err := p.countPlaintext(ctx, db, ts, opts.BatchSize)
			if err != nil {
				return prog, err
			}
			prog.Remaining = n
			break
		}
	}
	if mode == modeMigrate && prog.Remaining > 0 {
		return prog, fmt.Errorf("%w: %d plaintext values in %s (rows changed by writers during the run; run it again)", ErrPlaintextRemains, prog.Remaining, sch.Table)
	}
	if mode == modeReencrypt && prog.Remaining == 0 && !opts.KeepKeys && !x.dryRun {
		grace := opts.KeyGrace
		if grace <= 0 {
			grace = p.cfg.MaxKeyAge + 10*time.Minute
		}
		prog.Phase = PhasePrune
		n, err := pruneKeys(ctx, db, ts, opts.BatchSize, grace)
		prog.KeysDeleted = n
		report()
		if err != nil {
			return prog, err
		}
	}
	return prog, nil
}

// countPlaintext counts the plaintext values of the table (see classify).
func (p *Plugin) countPlaintext(ctx context.Context, db *gorm.DB, ts *tableScan, batchSize int) (int64, error) {
	var n int64
	err := ts.each(ctx, db, batchSize, func(batch []rewriteRow) error {
		for _, r := range batch {
			for i, fi := range ts.fields {
				if !r.vals[i].Valid {
					continue
				}
				kind, plain, err := p.classify(ctx, fi.key(), ts.bindCtx(r, i), r.vals[i].V)
				clear(plain)
				if err != nil && kind != valBad {
					return err
				}
				if kind == valPlain {
					n++
				}
			}
		}
		return nil
	})
	return n, err
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
func (p *Plugin) checkColumns(ctx context.Context, db *gorm.DB, sch *schema.Schema, ts *tableScan, batchSize int, prog *Progress, report func()) error {
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
	for _, fi := range ts.fields {
		if fi.index != nil && !db.Migrator().HasColumn(sch.Table, fi.index.DBName) {
			return fmt.Errorf("%w: blind index column %s.%s does not exist (AutoMigrate the model first)", ErrConfig, sch.Table, fi.index.DBName)
		}
	}
	longest := make([]int, len(ts.fields))
	err = ts.each(ctx, db, batchSize, func(batch []rewriteRow) error {
		for _, r := range batch {
			for i, fi := range ts.fields {
				v := r.vals[i]
				if !v.Valid {
					continue
				}
				kind, plain, err := p.classify(ctx, fi.key(), ts.bindCtx(r, i), v.V)
				clear(plain)
				if err != nil && kind != valBad {
					return err
				}
				if kind != valPlain {
					if kind == valBad {
						prog.Undecryptable++
					}
					continue
				}
				prog.Found++
				if fi.bind != nil && r.binds[i] == nil {
					return fmt.Errorf("%w: %s.%s (%s=%v): bound column %s is empty", ErrBindMissing, sch.Table, fi.field.DBName, ts.pk.DBName, r.pk, fi.bind.DBName)
				}
				plain, err = canonicalPlain(fi, v.V)
				if err != nil {
					return fmt.Errorf("%w (%s=%v)", err, ts.pk.DBName, r.pk)
				}
				longest[i] = max(longest[i], len(plain))
				clear(plain)
			}
		}
		prog.Scanned += int64(len(batch))
		prog.LastKey = batch[len(batch)-1].pk
		report()
		return nil
	})
	if err != nil {
		return err
	}
	for i, fi := range ts.fields {
		need := int64(CiphertextLen(longest[i]))
		if c, ok := capacity[strings.ToLower(fi.field.DBName)]; ok && c < need {
			return fmt.Errorf("%w: %s.%s holds %d, needs %d for a %d-byte plaintext", ErrColumnTooSmall, sch.Table, fi.field.DBName, c, need, longest[i])
		}
	}
	return nil
}

// batchResult is what rewriteBatch did.
type batchResult struct {
	values         int64 // non-NULL values examined
	found          int64 // values that needed rewriting
	written        int64 // values written
	bad            int64 // values that do not authenticate (left alone)
	conflicts      []any // rows changed by a writer between read and update
	conflictValues int64 // values in those rows that still need rewriting
}

// rewriteBatch encrypts the values of one batch that need it and writes
// them in one transaction.
func (p *Plugin) rewriteBatch(ctx context.Context, db *gorm.DB, ts *tableScan, batch []rewriteRow, mode rewriteMode, oldKeys map[int64]bool, skipBad bool) (batchResult, error) {
	var res batchResult
	var updates []casUpdate
	leases := map[colKey]*lease{}
	var nonces nonceSource
	for _, r := range batch {
		u := casUpdate{pk: r.pk}
		if nf := len(ts.fields); nf > 0 {
			cols := make([]string, 0, 3*nf)
			vals := make([]any, 0, 3*nf)
			u.setCols, u.whereCols = cols[:0:2*nf], cols[2*nf:2*nf]
			u.setVals, u.whereVals = vals[:0:2*nf], vals[2*nf:2*nf]
		}
		for i, fi := range ts.fields {
			v := r.vals[i]
			if !v.Valid {
				continue
			}
			res.values++
			var plain []byte
			ck := fi.key()
			b := ts.bindCtx(r, i)
			switch mode {
			case modeMigrate:
				kind, cplain, err := p.classify(ctx, ck, b, v.V)
				clear(cplain)
				if kind == valBad {
					res.bad++
					continue
				}
				if err != nil {
					return res, err
				}
				if kind == valCipher {
					continue
				}
				if plain, err = canonicalPlain(fi, v.V); err != nil {
					return res, fmt.Errorf("%w (%s=%v)", err, ts.pk.DBName, r.pk)
				}
			case modeReencrypt:
				sv, err := parseValue(v.V)
				if err != nil && skipBad {
					res.bad++
					continue
				}
				if err != nil {
					return res, &DecryptError{Table: ts.table, Column: fi.field.DBName, PrimaryKey: fmt.Sprintf("%s=%v", ts.pk.DBName, r.pk), Err: err}
				}
				if !oldKeys[sv.dkID] && (fi.bind == nil || sv.bound) {
					continue
				}
				if plain, err = p.decryptStrict(ctx, ck, b, v.V); err != nil {
					if skipBad && !errors.Is(err, ErrKMS) {
						res.bad++
						continue
					}
					return res, &DecryptError{Table: ts.table, Column: fi.field.DBName, PrimaryKey: fmt.Sprintf("%s=%v", ts.pk.DBName, r.pk), Err: err}
				}
			}
			if b != nil && b.value == nil && skipBad {
				clear(plain)
				res.bad++
				continue
			}
			res.found++
			if b != nil && b.value == nil {
				clear(plain)
				return res, &DecryptError{Table: ts.table, Column: fi.field.DBName, PrimaryKey: fmt.Sprintf("%s=%v", ts.pk.DBName, r.pk), Err: b.missing}
			}
			l := leases[ck]
			if l == nil || l.left <= 0 {
				k, err := p.keys.reserve(ctx, p.db, nil, ck, int64(len(batch)))
				if err != nil {
					clear(plain)
					return res, err
				}
				l = &lease{k: k, left: min(int64(len(batch)), p.cfg.MaxKeyUses)}
				leases[ck] = l
			}
			l.left--
			nonce := nonces.next()
			if nonce == nil {
				clear(plain)
				return res, ErrKMS
			}
			var ct string
			if b != nil {
				ct = sealBound(l.k, ck, b, plain, nonce)
			} else {
				ct = sealWithNonce(l.k, ck, plain, nonce)
			}
			u.shape |= 1 << (2 * min(i, 31))
			u.setCols = append(u.setCols, fi.field.DBName)
			u.setVals = append(u.setVals, ct)
			u.whereCols = append(u.whereCols, fi.field.DBName)
			u.whereVals = append(u.whereVals, string(v.V))
			if fi.index != nil && mode == modeMigrate {
				key, err := p.keys.indexKey(ctx, p.db, nil, ck)
				if err != nil {
					clear(plain)
					return res, err
				}
				u.shape |= 2 << (2 * min(i, 31))
				u.setCols = append(u.setCols, fi.index.DBName)
				u.setVals = append(u.setVals, blindIndex(key, plain))
			}
			clear(plain)
		}
		if len(u.setCols) > 0 {
			updates = append(updates, u)
		}
	}
	if len(updates) == 0 {
		return res, nil
	}
	if p.beforeRewrite != nil {
		pks := make([]any, len(updates))
		for i, u := range updates {
			pks[i] = u.pk
		}
		p.beforeRewrite(pks)
	}
	var written int64
	var conflicts []any
	var conflictValues int64
	err := db.Transaction(func(tx *gorm.DB) error {
		written, conflicts, conflictValues = 0, nil, 0
		w := newCASWriter(ctx, tx, ts)
		defer w.close()
		for _, u := range updates {
			ok, err := w.write(u)
			if err != nil {
				return err
			}
			if ok {
				written += int64(len(u.whereCols))
			} else {
				// Changed (or deleted) by a writer since it was read: a
				// writer encrypts only the columns it writes, so read the
				// row again and retry.
				conflicts = append(conflicts, u.pk)
				conflictValues += int64(len(u.whereCols))
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.written, res.conflicts, res.conflictValues = written, conflicts, conflictValues
	return res, nil
}

// casUpdate is one row's compare-and-swap update: set the columns
// setCols to setVals where the primary key is pk and each column of
// whereCols still holds the value read (whereVals).
type casUpdate struct {
	pk                 any
	shape              uint64 // which fields (bit 2i) and indexes (2i+1) it sets
	setCols, whereCols []string
	setVals, whereVals []any
}

// casWriter runs casUpdates in one transaction with one prepared statement
// per column set (a batch usually needs one), bypassing GORM's statement
// building, which cost more than the cryptography.
type casWriter struct {
	ctx   context.Context
	tx    *gorm.DB
	ts    *tableScan
	stmts map[uint64]*sql.Stmt
	args  []any
}

func newCASWriter(ctx context.Context, tx *gorm.DB, ts *tableScan) *casWriter {
	return &casWriter{ctx: ctx, tx: tx, ts: ts, stmts: map[uint64]*sql.Stmt{}}
}

func (w *casWriter) close() {
	for _, st := range w.stmts {
		_ = st.Close()
	}
}

// write runs u and reports whether it changed the row.
func (w *casWriter) write(u casUpdate) (bool, error) {
	// Rows of a batch usually set the same columns: one prepared
	// statement per shape. Past 31 fields the shape is ambiguous: prepare
	// per row.
	wide := len(w.ts.fields) > 31
	st := w.stmts[u.shape]
	if st == nil || wide {
		var err error
		if st, err = w.tx.Statement.ConnPool.PrepareContext(w.ctx, w.sql(u)); err != nil {
			return false, err
		}
		if wide {
			defer st.Close()
		} else {
			w.stmts[u.shape] = st
		}
	}
	w.args = append(append(append(w.args[:0], u.setVals...), u.pk), u.whereVals...)
	r, err := st.ExecContext(w.ctx, w.args...)
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, err
}

// sql builds UPDATE t SET a = ?, b = ? WHERE pk = ? AND a = ? with the
// dialect's quoting and placeholders (PostgreSQL: $n).
func (w *casWriter) sql(u casUpdate) string {
	var b strings.Builder
	n := 0
	bind := func() {
		n++
		if w.tx.Dialector.Name() == "postgres" {
			b.WriteString("$" + strconv.Itoa(n))
		} else {
			b.WriteByte('?')
		}
	}
	q := w.tx.Statement.Quote
	b.WriteString("UPDATE " + q(w.ts.table) + " SET ")
	for i, c := range u.setCols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q(c) + " = ")
		bind()
	}
	b.WriteString(" WHERE " + q(w.ts.pk.DBName) + " = ")
	bind()
	for _, c := range u.whereCols {
		b.WriteString(" AND " + q(c) + " = ")
		bind()
	}
	return b.String()
}

// drop forgets the current encryption key of ck if it is one of keys, so
// that the next write uses a fresh data key, and never adopts them again.
func (r *keyring) drop(ck colKey, keys map[int64]bool) {
	r.mu.Lock()
	for id := range keys {
		r.retired[id] = true
	}
	r.mu.Unlock()
	st := r.col(ck)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cur != nil && keys[st.cur.id] {
		st.cur = nil
	}
}

// referencedKeys scans the table and returns, per column, the data keys
// its values reference.
func referencedKeys(ctx context.Context, db *gorm.DB, ts *tableScan, batchSize int) (map[string]map[int64]bool, error) {
	refs := map[string]map[int64]bool{}
	for _, fi := range ts.fields {
		refs[fi.field.DBName] = map[int64]bool{}
	}
	err := ts.each(ctx, db, batchSize, func(batch []rewriteRow) error {
		for _, r := range batch {
			for i, fi := range ts.fields {
				if !r.vals[i].Valid {
					continue
				}
				if sv, err := parseValue(r.vals[i].V); err == nil {
					refs[fi.field.DBName][sv.dkID] = true
				}
			}
		}
		return nil
	})
	return refs, err
}

// pruneKeys deletes the data key rows of the table's encrypted columns that
// no value references and that are older than grace (so that no process
// still encrypts under them).
func pruneKeys(ctx context.Context, db *gorm.DB, ts *tableScan, batchSize int, grace time.Duration) (int64, error) {
	cutoff := time.Now().Add(-grace).UTC()
	var deleted int64
	var refs map[string]map[int64]bool
	for _, fi := range ts.fields {
		var ids []int64
		if err := db.Model(&dataKeyRow{}).Where("tbl = ? AND col = ? AND created_at < ?", fi.table, fi.field.DBName, cutoff).
			Pluck("id", &ids).Error; err != nil {
			return deleted, err
		}
		if len(ids) == 0 {
			continue
		}
		// Scan (once) after listing the candidates: a value written under
		// one of them since is seen by the scan.
		if refs == nil {
			var err error
			if refs, err = referencedKeys(ctx, db, ts, batchSize); err != nil {
				return deleted, err
			}
		}
		var drop []int64
		for _, id := range ids {
			if !refs[fi.field.DBName][id] {
				drop = append(drop, id)
			}
		}
		for len(drop) > 0 {
			n := min(len(drop), 500)
			res := db.Where("tbl = ? AND col = ? AND created_at < ?", fi.table, fi.field.DBName, cutoff).Where("id IN ?", drop[:n]).Delete(&dataKeyRow{})
			if res.Error != nil {
				return deleted, res.Error
			}
			deleted += res.RowsAffected
			drop = drop[n:]
		}
	}
	return deleted, nil
}

// parsePK parses the text form of a primary key value (a resume cursor).
func (ts *tableScan) parsePK(s string) (any, error) {
	switch ts.newPK().(type) {
	case *int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: cursor %q is not an integer key of %s", ErrConfig, s, ts.table)
		}
		return n, nil
	default:
		return s, nil
	}
}

// countStale counts the values of batch a re-encryption would rewrite:
// under one of oldKeys, or row-bound fields still in the unbound format.
// Nothing is decrypted.
func (ts *tableScan) countStale(batch []rewriteRow, oldKeys map[int64]bool) (n, values int64) {
	for _, r := range batch {
		for i, fi := range ts.fields {
			if !r.vals[i].Valid {
				continue
			}
			values++
			sv, err := parseValue(r.vals[i].V)
			if err == nil && (oldKeys[sv.dkID] || (fi.bind != nil && !sv.bound)) {
				n++
			}
		}
	}
	return n, values
}
