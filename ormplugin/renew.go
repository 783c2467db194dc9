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
}

// RenewDataKeys re-wraps every stored data key and blind-index key (tables
// kms_data_keys and kms_index_keys) under the newest version of its master
// key, with kmsd's ReEncrypt: the data keys themselves do not change, so no
// stored value is rewritten and caches stay valid. It is idempotent and
// resumable; run it after a master key rotation, then retire an old version
// once no key row references it (see DataKeyVersions).
func RenewDataKeys(ctx context.Context, db *gorm.DB, kms ReEncrypter, opts RenewOptions) (RenewProgress, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	db = db.Session(&gorm.Session{NewDB: true, Context: ctx})
	var prog RenewProgress
	rewrap := func(blob []byte, keyID string, version int, purpose, tbl, col string) ([]byte, int, string, bool, error) {
		encCtx := encContext(purpose, tbl, col)
		dst := opts.DestinationKeyID
		if dst == "" {
			dst = keyID
		}
		res, err := kms.ReEncrypt(ctx, blob, encCtx, dst, encCtx)
		if err != nil {
			return nil, 0, "", false, fmt.Errorf("%w: re-encrypt key of %s.%s: %w", ErrKMS, tbl, col, err)
		}
		prog.Checked++
		changed := res.KeyID != keyID || res.KeyVersion != version
		return res.CiphertextBlob, res.KeyVersion, res.KeyID, changed, nil
	}
	var lastID int64
	for {
		if err := ctx.Err(); err != nil {
			return prog, err
		}
		var rows []dataKeyRow
		if err := db.Where("id > ?", lastID).Order("id").Limit(opts.BatchSize).Find(&rows).Error; err != nil {
			return prog, err
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			blob, v, kid, changed, err := rewrap(r.Wrapped, r.KeyID, r.KeyVersion, purposeDEK, r.Tbl, r.Col)
			if err != nil {
				return prog, err
			}
			if changed {
				res := db.Model(&dataKeyRow{}).Where("id = ? AND key_version = ? AND key_id = ?", r.ID, r.KeyVersion, r.KeyID).
					Updates(map[string]any{"wrapped": blob, "key_version": v, "key_id": kid})
				if res.Error != nil {
					return prog, res.Error
				}
				prog.Rewrapped += res.RowsAffected
			}
		}
		lastID = rows[len(rows)-1].ID
		if opts.Progress != nil {
			opts.Progress(prog)
		}
	}
	var idx []indexKeyRow
	if err := db.Find(&idx).Error; err != nil {
		return prog, err
	}
	for _, r := range idx {
		blob, v, kid, changed, err := rewrap(r.Wrapped, r.KeyID, r.KeyVersion, purposeBIDX, r.Tbl, r.Col)
		if err != nil {
			return prog, err
		}
		if changed {
			res := db.Model(&indexKeyRow{}).Where("tbl = ? AND col = ? AND key_version = ? AND key_id = ?", r.Tbl, r.Col, r.KeyVersion, r.KeyID).
				Updates(map[string]any{"wrapped": blob, "key_version": v, "key_id": kid})
			if res.Error != nil {
				return prog, res.Error
			}
			prog.Rewrapped += res.RowsAffected
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
