package ormplugin

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"
)

// RenewOptions configures RenewDataKeys.
type RenewOptions struct {
	// DestinationKeyID is the master key to re-wrap under. Empty keeps each
	// key under its own master key (re-wrapped under its newest version).
	DestinationKeyID string
	// BatchSize is the number of key rows read at a time (default 500).
	BatchSize int
	// Progress, when set, is called after every batch.
	Progress func(RenewProgress)
}

// RenewProgress reports what RenewDataKeys did.
type RenewProgress struct {
	Checked   int64 // wrapped keys sent to kmsd
	Rewrapped int64 // wrapped keys whose stored blob changed
	// Current counts keys left alone without a kmsd call: they are already
	// wrapped under the version kmsd returned for another key of the same
	// master key in this run (its primary version).
	Current int64
	// LastID is the id of the last data key row examined (the resume
	// point of renewKeys).
	LastID int64
}

// RenewDataKeys re-wraps every stored data key and blind-index key (tables
// kms_data_keys and kms_index_keys) under the newest version of its master
// key, with kmsd's ReEncrypt: the data keys themselves do not change, so no
// stored value is rewritten and caches stay valid. It is idempotent and
// resumable; run it after a master key rotation, then retire an old version
// once no key row references it (see DataKeyVersions). A key already
// wrapped under the version kmsd returned for an earlier key of the same
// master key is skipped without a kmsd call (RenewProgress.Current).
func RenewDataKeys(ctx context.Context, db *gorm.DB, kms ReEncrypter, opts RenewOptions) (RenewProgress, error) {
	return renewKeys(ctx, db, kms, opts, keyRenewal{})
}

// keyRenewal are the options of renewKeys that RenewDataKeys does not
// expose: where to resume, what to do after each batch, and a dry run.
type keyRenewal struct {
	after   int64                     // resume after this data key id
	onBatch func(RenewProgress) error // after each batch of data keys (cursor)
	dryRun  bool                      // ask kmsd, write nothing
}

func renewKeys(ctx context.Context, db *gorm.DB, kms ReEncrypter, opts RenewOptions, x keyRenewal) (RenewProgress, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	db = db.Session(&gorm.Session{NewDB: true, Context: ctx})
	prog := RenewProgress{LastID: x.after}
	// primary is, per master key id, the version kmsd last re-wrapped under:
	// a key already under it needs no call.
	primary := map[string]int{}
	type keyRow struct {
		blob     []byte
		keyID    string
		version  int
		purpose  string
		tbl, col string
		update   func(blob []byte, v int, kid string) (int64, error)
	}
	renew := func(r keyRow) error {
		dst := opts.DestinationKeyID
		if dst == "" || dst == r.keyID {
			if v, ok := primary[r.keyID]; ok && v == r.version {
				prog.Current++
				return nil
			}
		}
		encCtx := encContext(r.purpose, r.tbl, r.col)
		if dst == "" {
			dst = r.keyID
		}
		res, err := kms.ReEncrypt(ctx, r.blob, encCtx, dst, encCtx)
		if err != nil {
			return fmt.Errorf("%w: re-encrypt key of %s.%s: %w", ErrKMS, r.tbl, r.col, err)
		}
		prog.Checked++
		primary[res.KeyID] = res.KeyVersion
		if res.KeyID == r.keyID && res.KeyVersion == r.version {
			return nil
		}
		if x.dryRun {
			prog.Rewrapped++
			return nil
		}
		n, err := r.update(res.CiphertextBlob, res.KeyVersion, res.KeyID)
		prog.Rewrapped += n
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return prog, err
		}
		var rows []dataKeyRow
		if err := db.Where("id > ?", prog.LastID).Order("id").Limit(opts.BatchSize).Find(&rows).Error; err != nil {
			return prog, err
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			err := renew(keyRow{blob: r.Wrapped, keyID: r.KeyID, version: r.KeyVersion, purpose: purposeDEK, tbl: r.Tbl, col: r.Col,
				update: func(blob []byte, v int, kid string) (int64, error) {
					// Compare-and-swap on the version: a concurrent renewal
					// that got there first is not overwritten.
					res := db.Model(&dataKeyRow{}).Where("id = ? AND key_version = ? AND key_id = ?", r.ID, r.KeyVersion, r.KeyID).
						Updates(map[string]any{"wrapped": blob, "key_version": v, "key_id": kid})
					return res.RowsAffected, res.Error
				}})
			if err != nil {
				return prog, err
			}
		}
		prog.LastID = rows[len(rows)-1].ID
		if x.onBatch != nil {
			if err := x.onBatch(prog); err != nil {
				return prog, err
			}
		}
		if opts.Progress != nil {
			opts.Progress(prog)
		}
	}
	var idx []indexKeyRow
	if err := db.Find(&idx).Error; err != nil {
		return prog, err
	}
	for _, r := range idx {
		err := renew(keyRow{blob: r.Wrapped, keyID: r.KeyID, version: r.KeyVersion, purpose: purposeBIDX, tbl: r.Tbl, col: r.Col,
			update: func(blob []byte, v int, kid string) (int64, error) {
				res := db.Model(&indexKeyRow{}).Where("tbl = ? AND col = ? AND key_version = ? AND key_id = ?", r.Tbl, r.Col, r.KeyVersion, r.KeyID).
					Updates(map[string]any{"wrapped": blob, "key_version": v, "key_id": kid})
				return res.RowsAffected, res.Error
			}})
		if err != nil {
			return prog, err
		}
	}
	if opts.Progress != nil && len(idx) > 0 {
		opts.Progress(prog)
	}
	return prog, nil
}

// KeyVersionCount is one line of DataKeyVersions.
type KeyVersionCount struct {
	KeyID      string
	KeyVersion int
	Keys       int64 // stored data keys and index keys under this version
}

// DataKeyVersions reports how many stored keys each master key version
// wraps. A version that no longer appears can be retired.
func DataKeyVersions(ctx context.Context, db *gorm.DB) ([]KeyVersionCount, error) {
	db = db.Session(&gorm.Session{NewDB: true, Context: ctx})
	counts := map[[2]any]int64{}
	for _, table := range []string{DataKeyTable, IndexKeyTable} {
		var rows []struct {
			KeyID      string
			KeyVersion int
			N          int64
		}
		if err := db.Table(table).Select("key_id, key_version, COUNT(*) AS n").Group("key_id, key_version").Scan(&rows).Error; err != nil {
			return nil, err
		}
		for _, r := range rows {
			counts[[2]any{r.KeyID, r.KeyVersion}] += r.N
		}
	}
	out := make([]KeyVersionCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, KeyVersionCount{KeyID: k[0].(string), KeyVersion: k[1].(int), Keys: n})
	}
	slices.SortFunc(out, func(a, b KeyVersionCount) int {
		return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), cmp.Compare(a.KeyVersion, b.KeyVersion))
	})
	return out, nil
}
