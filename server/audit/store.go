package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/internal/migrate"
)

const tableName = "kms_audit_records"

// row is the stored form of a Record. (replica_id, seq) is the primary key,
// so a chain can never fork, even if two processes share a ReplicaID.
type row struct {
	ReplicaID   string `gorm:"column:replica_id;primaryKey;size:64;autoIncrement:false"`
	Seq         int64  `gorm:"column:seq;primaryKey;autoIncrement:false"`
	TimeUS      int64  `gorm:"column:time_us;not null"`
	AccessKeyID string `gorm:"column:access_key_id;size:128;not null"`
	Action      string `gorm:"column:action;size:64;not null"`
	KeyID       string `gorm:"column:key_id;size:191;not null"`
	KeyVersion  int64  `gorm:"column:key_version;not null"`
	Result      string `gorm:"column:result;size:64;not null"`
	ReasonCode  string `gorm:"column:reason_code;size:64;not null"`
	RequestID   string `gorm:"column:request_id;size:128;not null"`
	SourceAddr  string `gorm:"column:source_addr;size:128;not null"`
	Details     string `gorm:"column:details;type:text;not null"`
	PrevHash    string `gorm:"column:prev_hash;size:64;not null"`
	Hash        string `gorm:"column:hash;size:64;not null"`
}

func (row) TableName() string { return tableName }

// rowV1 freezes the schema of migration audit/0001 (row may evolve; a
// released step must not).
type rowV1 struct {
	ReplicaID   string `gorm:"column:replica_id;primaryKey;size:64;autoIncrement:false"`
	Seq         int64  `gorm:"column:seq;primaryKey;autoIncrement:false"`
	TimeUS      int64  `gorm:"column:time_us;not null;index:idx_kms_audit_time"`
	AccessKeyID string `gorm:"column:access_key_id;size:128;not null;index:idx_kms_audit_access_key"`
	Action      string `gorm:"column:action;size:64;not null"`
	KeyID       string `gorm:"column:key_id;size:191;not null;index:idx_kms_audit_key"`
	KeyVersion  int64  `gorm:"column:key_version;not null"`
	Result      string `gorm:"column:result;size:64;not null"`
	ReasonCode  string `gorm:"column:reason_code;size:64;not null"`
	RequestID   string `gorm:"column:request_id;size:128;not null"`
	SourceAddr  string `gorm:"column:source_addr;size:128;not null"`
	Details     string `gorm:"column:details;type:text;not null"`
	PrevHash    string `gorm:"column:prev_hash;size:64;not null"`
	Hash        string `gorm:"column:hash;size:64;not null"`
}

func (rowV1) TableName() string { return tableName }

// Migrations returns the schema steps of the audit table, for migrate.Apply.
func Migrations() []migrate.Step {
	return []migrate.Step{{
		ID: "audit/0001_records",
		Up: func(tx *gorm.DB) error {
			if tx.Migrator().HasTable(&rowV1{}) {
				return nil
			}
			return tx.Migrator().CreateTable(&rowV1{})
		},
	}, {
		ID: "audit/0002_exports",
		Up: func(tx *gorm.DB) error {
			if tx.Migrator().HasTable(&exportV2{}) {
				return nil
			}
			return tx.Migrator().CreateTable(&exportV2{})
		},
	}}
}

// insertColumns are the columns of row in the order appendRowArgs writes
// their values.
const insertColumns = "replica_id, seq, time_us, access_key_id, action, key_id, key_version, " +
	"result, reason_code, request_id, source_addr, details, prev_hash, hash"

const numInsertColumns = 14

// maxRowsPerInsert bounds one INSERT statement (14 values a row stays far
// below every dialect's bind-variable limit).
const maxRowsPerInsert = 128

// appendRowArgs appends the column values of r (stored form, insertColumns
// order) to args.
func appendRowArgs(args []any, r *Record) ([]any, error) {
	d, err := encodeDetails(r.Details)
	if err != nil {
		return args, err
	}
	return append(args, r.ReplicaID, r.Seq, r.Time.UnixMicro(), r.AccessKeyID, r.Action, r.KeyID,
		int64(r.KeyVersion), r.Result, r.ReasonCode, r.RequestID, r.SourceAddr, d, r.PrevHash, r.Hash), nil
}

// insertSQLs caches the multi-row INSERT text per row count (1..maxRowsPerInsert).
type insertSQLs struct {
	dialect string
	byRows  map[int]string
}

func (c *insertSQLs) get(n int) string {
	if q, ok := c.byRows[n]; ok {
		return q
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + tableName + " (" + insertColumns + ") VALUES ")
	arg := 0
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range numInsertColumns {
			if j > 0 {
				b.WriteByte(',')
			}
			arg++
			if c.dialect == "postgres" {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(arg))
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	q := b.String()
	if c.byRows == nil {
		c.byRows = make(map[int]string)
	}
	c.byRows[n] = q
	return q
}

// insert writes the rows whose column values are args in one transaction,
// with one multi-row INSERT per maxRowsPerInsert rows, through database/sql
// directly: the hot path of every audited request, where GORM's reflection
// over the row struct cost more than the statement itself.
func (l *Logger) insert(ctx context.Context, args []any) (err error) {
	if l.sqlDB == nil {
		db, err := l.db.DB()
		if err != nil {
			return err
		}
		l.sqlDB = db
		l.stmts.dialect = l.db.Dialector.Name()
	}
	tx, err := l.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if l.stmts.dialect == "sqlite" {
		// In-process: executing one prepared single-row statement per record
		// is cheaper than parsing a multi-row statement per batch.
		if l.one == nil {
			if l.one, err = l.sqlDB.PrepareContext(ctx, l.stmts.get(1)); err != nil {
				return err
			}
		}
		st := tx.StmtContext(ctx, l.one)
		for ; len(args) > 0; args = args[numInsertColumns:] {
			if _, err = st.ExecContext(ctx, args[:numInsertColumns]...); err != nil {
				return err
			}
		}
		return tx.Commit()
	}
	const chunk = maxRowsPerInsert * numInsertColumns
	for len(args) > 0 {
		n := min(len(args), chunk)
		if _, err = tx.ExecContext(ctx, l.stmts.get(n/numInsertColumns), args[:n]...); err != nil {
			return err
		}
		args = args[n:]
	}
	return tx.Commit()
}

func (w *row) record() (Record, error) {
	d, err := decodeDetails(w.Details)
	if err != nil {
		return Record{}, fmt.Errorf("details: %w", err)
	}
	return Record{
		Time: time.UnixMicro(w.TimeUS).UTC(), ReplicaID: w.ReplicaID, Seq: w.Seq,
		AccessKeyID: w.AccessKeyID, Action: w.Action, KeyID: w.KeyID,
		KeyVersion: int(w.KeyVersion), Result: w.Result, ReasonCode: w.ReasonCode,
		RequestID: w.RequestID, SourceAddr: w.SourceAddr, Details: d,
		PrevHash: w.PrevHash, Hash: w.Hash,
	}, nil
}

// exportV2 freezes the schema of migration audit/0002.
type exportV2 struct {
	ReplicaID string `gorm:"column:replica_id;primaryKey;size:64;autoIncrement:false"`
	LastSeq   int64  `gorm:"column:last_seq;primaryKey;autoIncrement:false"`
	FirstSeq  int64  `gorm:"column:first_seq;not null"`
	PrevHash  string `gorm:"column:prev_hash;size:64;not null"`
	LastHash  string `gorm:"column:last_hash;size:64;not null"`
	Count     int64  `gorm:"column:count;not null"`
	TimeUS    int64  `gorm:"column:time_us;not null"`
	Sig       string `gorm:"column:sig;size:64;not null"`
	CreatedUS int64  `gorm:"column:created_us;not null"`
}

func (exportV2) TableName() string { return "kms_audit_exports" }

// Probe proves that an audit record could be written now: it inserts a
// probe row in a transaction and rolls it back. A database that is down,
// read-only, or rejects audit inserts (a trigger, a constraint, a full
// disk) fails it with an error wrapping ErrUnavailable. Used by readiness
// checks; it leaves nothing behind.
func Probe(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	tx, err := sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer tx.Rollback()
	c := insertSQLs{dialect: db.Dialector.Name()}
	hash := strings.Repeat("0", hashHexLength)
	_, err = tx.ExecContext(ctx, c.get(1), "~probe", int64(-1), time.Now().UnixMicro(), "", "kms:Probe", "", int64(0),
		ResultOK, "", "", "", "", "", hash)
	if err != nil {
		return fmt.Errorf("%w: probe insert: %v", ErrUnavailable, err)
	}
	return nil
}
