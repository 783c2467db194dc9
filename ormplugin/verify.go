package ormplugin

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorm.io/gorm"
)

// Problems reported by VerifyTable.
const (
	ProblemPlaintext     = "plaintext"     // not ciphertext: MigratePlaintext has not reached it
	ProblemUndecryptable = "undecryptable" // names a data key of the column but fails authentication (tampered, copied from another row, corrupted)
	ProblemBindMissing   = "bind-missing"  // row-bound value whose bound column is empty
)

// BadValue is one value VerifyTable could not read. It never holds the value.
type BadValue struct {
	PrimaryKey any
	Column     string
	Problem    string // ProblemPlaintext, ProblemUndecryptable or ProblemBindMissing
}

// VerifyOptions configures VerifyTable.
type VerifyOptions struct {
	BatchSize int            // rows read at a time; zero means DefaultBatchSize
	Report    func(BadValue) // called for every bad value, in primary-key order
	Progress  func(scanned, total int64)
}

// VerifyResult sums up VerifyTable.
type VerifyResult struct {
	Table         string
	Rows          int64 // rows scanned
	Values        int64 // non-NULL values of the encrypted columns
	Plaintext     int64
	Undecryptable int64 // includes bind-missing values
	// KeysInUse is, per column, the number of distinct data keys the
	// table's values reference.
	KeysInUse map[string]int64
}

// Bad is the number of values that cannot be read.
func (r VerifyResult) Bad() int64 { return r.Plaintext + r.Undecryptable }

// Verify decrypts every value of model's encrypted fields and reports
// those that cannot be read (plaintext, tampered, copied from another row
// of a bound column) by primary key and column, never by value. It is how
// to find the rows behind a DecryptError in a Find over many rows. It writes
// nothing; kmsd errors stop it (ErrKMS).
func (p *Plugin) Verify(ctx context.Context, db *gorm.DB, model any, opts VerifyOptions) (VerifyResult, error) {
	return p.verify(ctx, db, model, "", opts)
}

// VerifyTable is Verify for a table described by names (kmsctl orm verify).
func (p *Plugin) VerifyTable(ctx context.Context, db *gorm.DB, spec TableSpec, opts VerifyOptions) (VerifyResult, error) {
	m, err := spec.model()
	if err != nil {
		return VerifyResult{}, err
	}
	return p.verify(ctx, db, m, spec.Table, opts)
}

func (p *Plugin) verify(ctx context.Context, db *gorm.DB, model any, table string, opts VerifyOptions) (VerifyResult, error) {
	if p.db == nil {
		return VerifyResult{}, fmt.Errorf("%w: register the plugin with db.Use first", ErrConfig)
	}
	ts, db, total, err := openScan(ctx, db, p, model, table)
	if err != nil {
		return VerifyResult{}, err
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	res := VerifyResult{Table: ts.table, KeysInUse: map[string]int64{}}
	keys := map[string]map[int64]bool{}
	err = ts.each(ctx, db, opts.BatchSize, func(batch []rewriteRow) error {
		for _, r := range batch {
			for i, fi := range ts.fields {
				v := r.vals[i]
				if !v.Valid {
					continue
				}
				res.Values++
				kind, plain, err := p.classify(ctx, fi.key(), ts.bindCtx(r, i), v.V)
				clear(plain)
				if err != nil && kind != valBad {
					return err
				}
				problem := ""
				switch kind {
				case valPlain:
					res.Plaintext++
					problem = ProblemPlaintext
				case valBad:
					res.Undecryptable++
					problem = ProblemUndecryptable
					if errors.Is(err, ErrBindMissing) {
						problem = ProblemBindMissing
					}
				case valCipher:
					sv, _ := parseValue(v.V)
					if keys[fi.field.DBName] == nil {
						keys[fi.field.DBName] = map[int64]bool{}
					}
					keys[fi.field.DBName][sv.dkID] = true
				}
				if problem != "" && opts.Report != nil {
					opts.Report(BadValue{PrimaryKey: r.pk, Column: fi.field.DBName, Problem: problem})
				}
			}
		}
		res.Rows += int64(len(batch))
		if opts.Progress != nil {
			opts.Progress(res.Rows, total)
		}
		return nil
	})
	for c, m := range keys {
		res.KeysInUse[c] = int64(len(m))
	}
	return res, err
}

// openScan parses model and prepares a scan of its table.
func openScan(ctx context.Context, db *gorm.DB, p *Plugin, model any, table string) (*tableScan, *gorm.DB, int64, error) {
	db = db.Session(&gorm.Session{NewDB: true, Context: ctx})
	stmt := &gorm.Statement{DB: db}
	if err := stmt.ParseWithSpecialTableName(model, table); err != nil {
		return nil, nil, 0, err
	}
	si := parseSchema(stmt.Schema)
	if p != nil {
		si = p.schemaInfo(stmt.Schema)
	}
	if si.err != nil {
		return nil, nil, 0, si.err
	}
	ts, err := newTableScan(stmt.Schema, si)
	if err != nil {
		return nil, nil, 0, err
	}
	var total int64
	if err := db.Table(ts.table).Count(&total).Error; err != nil {
		return nil, nil, 0, err
	}
	return ts, db, total, nil
}

// ColumnStatus is one column of TableStatus.
type ColumnStatus struct {
	Column string
	Values int64 // non-NULL values
	// Plaintext counts values that are not well-formed ciphertext naming a
	// data key of this column. It needs no KMS, so it does not
	// authenticate: VerifyTable does.
	Plaintext int64
	KeysInUse int64 // distinct data keys the values reference
	KeyRows   int64 // data key rows stored for the column (kms_data_keys)
}

// TableStatus reports, without kmsd, how far a table is encrypted: per
// encrypted column the plaintext values left (MigratePlaintext is done, and
// Config.AllowPlaintextReads may be turned off, when every count is 0), the
// data keys in use and the data key rows stored.
func TableStatus(ctx context.Context, db *gorm.DB, spec TableSpec) ([]ColumnStatus, error) {
	m, err := spec.model()
	if err != nil {
		return nil, err
	}
	ts, db, _, err := openScan(ctx, db, nil, m, spec.Table)
	if err != nil {
		return nil, err
	}
	out := make([]ColumnStatus, len(ts.fields))
	known := make([]map[int64]bool, len(ts.fields))
	used := make([]map[int64]bool, len(ts.fields))
	for i, fi := range ts.fields {
		out[i].Column = fi.field.DBName
		var ids []int64
		if db.Migrator().HasTable(DataKeyTable) {
			if err := db.Model(&dataKeyRow{}).Where("tbl = ? AND col = ?", fi.table, fi.field.DBName).Pluck("id", &ids).Error; err != nil {
				return nil, err
			}
		}
		out[i].KeyRows = int64(len(ids))
		known[i] = make(map[int64]bool, len(ids))
		for _, id := range ids {
			known[i][id] = true
		}
		used[i] = map[int64]bool{}
	}
	err = ts.each(ctx, db, DefaultBatchSize, func(batch []rewriteRow) error {
		for _, r := range batch {
			for i := range ts.fields {
				v := r.vals[i]
				if !v.Valid {
					continue
				}
				out[i].Values++
				sv, err := parseValue(v.V)
				if err != nil || !known[i][sv.dkID] {
					out[i].Plaintext++
					continue
				}
				used[i][sv.dkID] = true
			}
		}
		return nil
	})
	for i := range out {
		out[i].KeysInUse = int64(len(used[i]))
	}
	slices.SortFunc(out, func(a, b ColumnStatus) int {
		switch {
		case a.Column < b.Column:
			return -1
		case a.Column > b.Column:
			return 1
		}
		return 0
	})
	return out, err
}
