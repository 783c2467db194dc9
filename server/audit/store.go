package audit

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/migrate"
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
	}}
}

func toRow(r *Record) (row, error) {
	d, err := encodeDetails(r.Details)
	if err != nil {
		return row{}, err
	}
	return row{
		ReplicaID: r.ReplicaID, Seq: r.Seq, TimeUS: r.Time.UnixMicro(),
		AccessKeyID: r.AccessKeyID, Action: r.Action, KeyID: r.KeyID,
		KeyVersion: int64(r.KeyVersion), Result: r.Result, ReasonCode: r.ReasonCode,
		RequestID: r.RequestID, SourceAddr: r.SourceAddr, Details: d,
		PrevHash: r.PrevHash, Hash: r.Hash,
	}, nil
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
