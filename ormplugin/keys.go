package ormplugin

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Names of the tables the plugin keeps its wrapped keys in. Both are created
// by Initialize (db.Use) and must be backed up with the application data.
const (
	DataKeyTable  = "kms_data_keys"
	IndexKeyTable = "kms_index_keys"
)

const (
	purposeDEK  = "ormplugin:dek"
	purposeBIDX = "ormplugin:bidx"
)

// dataKeyRow is one wrapped data key. Stored values reference it by ID.
type dataKeyRow struct {
	ID         int64     `gorm:"primaryKey;autoIncrement:false"`
	Tbl        string    `gorm:"size:128;not null;index:idx_kms_data_keys_col,priority:1"`
	Col        string    `gorm:"size:128;not null;index:idx_kms_data_keys_col,priority:2"`
	KeyID      string    `gorm:"size:128;not null"`
	KeyVersion int       `gorm:"not null;index"`
	Wrapped    []byte    `gorm:"not null"`
	CreatedAt  time.Time `gorm:"not null"`
	UpdatedAt  time.Time `gorm:"not null"`
	// GenVersion is the master key version the data key was generated
	// under; renewal re-wraps (KeyVersion) but never changes it. 0 for
	// rows written before the column existed.
	GenVersion int `gorm:"not null;default:0"`
	// ReqKeyID is Config.KeyID of the plugin that created the key (an id or
	// an alias): a restarted process adopts only keys of its own KeyID.
	ReqKeyID string `gorm:"size:256;not null;default:''"`
}

func (dataKeyRow) TableName() string { return DataKeyTable }

// genVersion is the master key version a data key was generated under.
func (r dataKeyRow) genVersion() int {
	if r.GenVersion > 0 {
		return r.GenVersion
	}
	return r.KeyVersion
}

// errUnknownKey is ErrDecrypt for a value naming no stored data key at all
// (same message: callers see one opaque error); classify tells it apart
// from a value that fails authentication.
type unknownKeyError struct{}

func (unknownKeyError) Error() string { return ErrDecrypt.Error() }
func (unknownKeyError) Unwrap() error { return ErrDecrypt }

var errUnknownKey error = unknownKeyError{}

// indexKeyRow is the one wrapped blind-index key of a column.
type indexKeyRow struct {
	Tbl        string    `gorm:"primaryKey;size:128"`
	Col        string    `gorm:"primaryKey;size:128"`
	KeyID      string    `gorm:"size:128;not null"`
	KeyVersion int       `gorm:"not null;index"`
	Wrapped    []byte    `gorm:"not null"`
	CreatedAt  time.Time `gorm:"not null"`
	UpdatedAt  time.Time `gorm:"not null"`
}

func (indexKeyRow) TableName() string { return IndexKeyTable }

// encContext is the KMS encryption context of a wrapped key: it binds the
// key to its purpose, table and column inside kmsd.
func encContext(purpose, table, column string) map[string]string {
	return map[string]string{"kmsgo:purpose": purpose, "table": table, "column": column}
}

type colKey struct{ table, column string }

// dek is a usable data key.
type dek struct {
	id       int64
	aead     cipher.AEAD
	created  time.Time
	reserved atomic.Int64 // encryptions reserved so far
	bytes    atomic.Int64 // plaintext bytes encrypted so far
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// colState holds the current encryption key of one column.
type colState struct {
	mu  sync.Mutex
	cur *dek
}

type decEntry struct {
	k      *dek
	loaded time.Time
}

// keyring caches data keys and blind-index keys.
type keyring struct {
	kms KMS
	cfg *Config

	mu      sync.Mutex
	cols    map[colKey]*colState
	dec     map[int64]decEntry        // data keys for decryption by id
	bidx    map[colKey][]byte         // derived HMAC keys
	pendDEK map[colKey][]pendingDEK   // see sqliteTx
	pendIdx map[colKey][]pendingIndex // see sqliteTx
	retired map[int64]bool            // data keys being retired by Reencrypt: never adopted
	loadMu  sync.Mutex                // serializes cache misses so one miss is one KMS call
}

func newKeyring(kms KMS, cfg *Config) *keyring {
	return &keyring{
		kms: kms, cfg: cfg,
		cols:    map[colKey]*colState{},
		dec:     map[int64]decEntry{},
		bidx:    map[colKey][]byte{},
		pendDEK: map[colKey][]pendingDEK{},
		pendIdx: map[colKey][]pendingIndex{},
		retired: map[int64]bool{},
	}
}

func (r *keyring) col(ck colKey) *colState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.cols[ck]
	if st == nil {
		st = &colState{}
		r.cols[ck] = st
	}
	return st
}

// usable reports whether k may take n more encryptions.
func (r *keyring) usable(k *dek, n int64) bool {
	return k != nil &&
		time.Since(k.created) < r.cfg.MaxKeyAge &&
		k.reserved.Load()+n <= r.cfg.MaxKeyUses &&
		k.bytes.Load() < r.cfg.MaxKeyBytes
}

// sqliteTx reports whether stmtDB runs inside a SQLite transaction. There,
// another connection cannot write (the transaction may hold the database
// lock), so new key rows are written through the transaction and the keys
// stay "pending": used only by that transaction until their row is seen
// committed. If the transaction rolls back, the key row and every value
// under it vanish together and the key is never used again.
func sqliteTx(stmtDB *gorm.DB) (any, bool) {
	if stmtDB == nil || stmtDB.Dialector == nil || stmtDB.Dialector.Name() != "sqlite" {
		return nil, false
	}
	if _, inTx := stmtDB.Statement.ConnPool.(gorm.TxCommitter); !inTx {
		return nil, false
	}
	return stmtDB.Statement.ConnPool, true
}

// pendingDEK is a data key created inside a SQLite transaction.
type pendingDEK struct {
	pool any
	k    *dek
}

// pendingIndex is an index key created inside a SQLite transaction.
type pendingIndex struct {
	pool    any
	wrapped []byte
	key     []byte
}

const maxPending = 8

// reserve returns a data key for (table, column) with n encryptions
// reserved on it, creating and storing a new one when the current one is
// missing or over a limit. stmtDB is the statement's *gorm.DB (may be nil).
func (r *keyring) reserve(ctx context.Context, rootDB, stmtDB *gorm.DB, ck colKey, n int64) (*dek, error) {
	if n > r.cfg.MaxKeyUses {
		n = r.cfg.MaxKeyUses
	}
	st := r.col(ck)
	st.mu.Lock()
	defer st.mu.Unlock()
	if r.usable(st.cur, n) {
		st.cur.reserved.Add(n)
		return st.cur, nil
	}
	root := rootDB.Session(&gorm.Session{NewDB: true, Context: ctx})
	pool, inTx := sqliteTx(stmtDB)
	// Reuse a pending key of this transaction, or promote one whose
	// transaction committed.
	r.mu.Lock()
	pend := append([]pendingDEK{}, r.pendDEK[ck]...)
	r.mu.Unlock()
	for i := len(pend) - 1; i >= 0; i-- {
		pk := pend[i]
		if !r.usable(pk.k, n) {
			continue
		}
		if inTx && pk.pool == pool {
			pk.k.reserved.Add(n)
			return pk.k, nil
		}
		var cnt int64
		if err := root.Model(&dataKeyRow{}).Where("id = ?", pk.k.id).Count(&cnt).Error; err == nil && cnt == 1 {
			r.mu.Lock()
			r.pendDEK[ck] = slices.DeleteFunc(r.pendDEK[ck], func(x pendingDEK) bool { return x.k == pk.k })
			r.mu.Unlock()
			st.cur = pk.k
			pk.k.reserved.Add(n)
			return pk.k, nil
		}
	}
	if inTx {
		k, err := r.create(ctx, stmtDB.Session(&gorm.Session{NewDB: true, Context: ctx}), ck)
		if err != nil {
			return nil, err
		}
		k.reserved.Add(n)
		r.mu.Lock()
		r.pendDEK[ck] = append(r.pendDEK[ck], pendingDEK{pool: pool, k: k})
		if len(r.pendDEK[ck]) > maxPending {
			r.pendDEK[ck] = r.pendDEK[ck][1:]
		}
		r.mu.Unlock()
		return k, nil
	}
	k, err := r.adopt(ctx, root, ck, n)
	if err != nil {
		return nil, err
	}
	if k == nil {
		if k, err = r.create(ctx, root, ck); err != nil {
			return nil, err
		}
	}
	st.cur = k
	k.reserved.Add(n)
	return k, nil
}

// adopt returns the newest stored data key of the column, created by a
// plugin with the same KeyID less than MaxKeyAge/2 ago, unwrapped with
// one kmsd Decrypt call: a restarted process (or a second replica) keeps
// writing under it instead of adding a key row per start. Its age counts
// from the row's creation time, so the MaxKeyAge limit holds across
// processes; MaxKeyUses and MaxKeyBytes are counted per process (see the
// package documentation for the bound this gives). nil when there is none.
func (r *keyring) adopt(ctx context.Context, root *gorm.DB, ck colKey, n int64) (*dek, error) {
	cutoff := time.Now().Add(-r.cfg.MaxKeyAge / 2).UTC()
	var rows []dataKeyRow
	err := root.Where("tbl = ? AND col = ? AND req_key_id = ? AND created_at > ?", ck.table, ck.column, r.cfg.KeyID, cutoff).
		Order("created_at DESC").Limit(4).Find(&rows).Error
	if err != nil {
		return nil, nil // no adoption: create a key as before
	}
	for _, row := range rows {
		r.mu.Lock()
		retired := r.retired[row.ID]
		r.mu.Unlock()
		if retired {
			continue
		}
		if k := r.getDec(row.ID); k != nil {
			if r.usable(k, n) {
				return k, nil
			}
			continue // used up by this process
		}
		out, err := r.kms.Decrypt(ctx, row.Wrapped, encContext(purposeDEK, row.Tbl, row.Col))
		if err != nil {
			return nil, fmt.Errorf("%w: unwrap data key for %s.%s: %w", ErrKMS, ck.table, ck.column, err)
		}
		aead, err := newAEAD(out.Plaintext)
		clear(out.Plaintext)
		if err != nil {
			continue
		}
		k := &dek{id: row.ID, aead: aead, created: row.CreatedAt}
		if !r.usable(k, n) {
			continue
		}
		r.putDec(k)
		return k, nil
	}
	return nil, nil
}

// create asks kmsd for a new data key, stores it wrapped in db and caches it
// for decryption too. The KMS is called before anything is written.
func (r *keyring) create(ctx context.Context, db *gorm.DB, ck colKey) (*dek, error) {
	dk, err := r.kms.GenerateDataKey(ctx, r.cfg.KeyID, encContext(purposeDEK, ck.table, ck.column))
	if err != nil {
		return nil, fmt.Errorf("%w: generate data key for %s.%s: %w", ErrKMS, ck.table, ck.column, err)
	}
	defer clear(dk.Plaintext)
	aead, err := newAEAD(dk.Plaintext)
	if err != nil {
		return nil, fmt.Errorf("%w: bad data key: %w", ErrKMS, err)
	}
	now := time.Now()
	for attempt := 0; ; attempt++ {
		id, err := randomID()
		if err != nil {
			return nil, err
		}
		row := dataKeyRow{ID: id, Tbl: ck.table, Col: ck.column, KeyID: dk.KeyID, KeyVersion: dk.KeyVersion,
			GenVersion: dk.KeyVersion, ReqKeyID: r.cfg.KeyID,
			Wrapped: dk.CiphertextBlob, CreatedAt: now.UTC(), UpdatedAt: now.UTC()}
		res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return nil, fmt.Errorf("ormplugin: store data key: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			k := &dek{id: id, aead: aead, created: now}
			r.putDec(k)
			return k, nil
		}
		if attempt > 3 { // 2^63 ids: never in practice
			return nil, errors.New("ormplugin: could not allocate a data key id")
		}
	}
}

func randomID() (int64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	id := int64(binary.BigEndian.Uint64(b[:]) &^ (1 << 63))
	if id == 0 {
		id = 1
	}
	return id, nil
}

func (r *keyring) putDec(k *dek) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.dec) >= r.cfg.DecryptCacheSize {
		// Evict the oldest entry (the cache is small: one entry per data key).
		var oldID int64
		var oldT time.Time
		for id, e := range r.dec {
			if oldID == 0 || e.loaded.Before(oldT) {
				oldID, oldT = id, e.loaded
			}
		}
		delete(r.dec, oldID)
	}
	r.dec[k.id] = decEntry{k: k, loaded: time.Now()}
}

func (r *keyring) getDec(id int64) *dek {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.dec[id]
	if !ok {
		return nil
	}
	if time.Since(e.loaded) >= r.cfg.DecryptCacheTTL {
		delete(r.dec, id)
		return nil
	}
	return e.k
}

// forDecrypt returns the data key id, loading and unwrapping it on a miss.
// Every failure, including an unknown id or a key of another column, is
// ErrDecrypt except a KMS outage, which is ErrKMS.
func (r *keyring) forDecrypt(ctx context.Context, db *gorm.DB, ck colKey, id int64) (*dek, error) {
	if k := r.getDec(id); k != nil {
		return k, nil
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	if k := r.getDec(id); k != nil {
		return k, nil
	}
	var row dataKeyRow
	res := db.Session(&gorm.Session{NewDB: true, Context: ctx}).Where("id = ?", id).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, fmt.Errorf("ormplugin: load data key: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, errUnknownKey
	}
	if row.Tbl != ck.table || row.Col != ck.column {
		return nil, ErrDecrypt
	}
	out, err := r.kms.Decrypt(ctx, row.Wrapped, encContext(purposeDEK, row.Tbl, row.Col))
	if err != nil {
		return nil, fmt.Errorf("%w: unwrap data key: %w", ErrKMS, err)
	}
	defer clear(out.Plaintext)
	aead, err := newAEAD(out.Plaintext)
	if err != nil {
		return nil, ErrDecrypt
	}
	k := &dek{id: id, aead: aead, created: row.CreatedAt}
	r.putDec(k)
	return k, nil
}

// indexKey returns the HMAC key of a column's blind index, creating the
// column's index key in kmsd and the database on first use. The HMAC key is
// derived with HKDF from a dedicated kmsd data key (never from the data keys
// that encrypt values). stmtDB is the statement's *gorm.DB (may be nil).
func (r *keyring) indexKey(ctx context.Context, rootDB, stmtDB *gorm.DB, ck colKey) ([]byte, error) {
	r.mu.Lock()
	k := r.bidx[ck]
	r.mu.Unlock()
	if k != nil {
		return k, nil
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	r.mu.Lock()
	k = r.bidx[ck]
	pend := append([]pendingIndex{}, r.pendIdx[ck]...)
	r.mu.Unlock()
	if k != nil {
		return k, nil
	}
	pool, inTx := sqliteTx(stmtDB)
	for _, pi := range pend {
		if inTx && pi.pool == pool {
			return pi.key, nil
		}
	}
	root := rootDB.Session(&gorm.Session{NewDB: true, Context: ctx})
	encCtx := encContext(purposeBIDX, ck.table, ck.column)
	var row indexKeyRow
	res := root.Where("tbl = ? AND col = ?", ck.table, ck.column).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, fmt.Errorf("ormplugin: load index key: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		for _, pi := range pend { // created by a transaction that committed
			if bytes.Equal(pi.wrapped, row.Wrapped) {
				r.setIndexKey(ck, pi.key)
				return pi.key, nil
			}
		}
		return r.unwrapIndexKey(ctx, ck, row.Wrapped)
	}
	dk, err := r.kms.GenerateDataKey(ctx, r.cfg.KeyID, encCtx)
	if err != nil {
		return nil, fmt.Errorf("%w: generate index key for %s.%s: %w", ErrKMS, ck.table, ck.column, err)
	}
	defer clear(dk.Plaintext)
	writeDB := root
	if inTx {
		writeDB = stmtDB.Session(&gorm.Session{NewDB: true, Context: ctx})
	}
	now := time.Now().UTC()
	ins := indexKeyRow{Tbl: ck.table, Col: ck.column, KeyID: dk.KeyID, KeyVersion: dk.KeyVersion,
		Wrapped: dk.CiphertextBlob, CreatedAt: now, UpdatedAt: now}
	cr := writeDB.Clauses(clause.OnConflict{DoNothing: true}).Create(&ins)
	if cr.Error != nil {
		return nil, fmt.Errorf("ormplugin: store index key: %w", cr.Error)
	}
	if cr.RowsAffected != 1 { // another process won the race: use its key
		if err := writeDB.Where("tbl = ? AND col = ?", ck.table, ck.column).Take(&row).Error; err != nil {
			return nil, fmt.Errorf("ormplugin: load index key: %w", err)
		}
		return r.unwrapIndexKey(ctx, ck, row.Wrapped)
	}
	key, err := deriveIndexKey(dk.Plaintext, ck)
	if err != nil {
		return nil, err
	}
	if inTx {
		r.mu.Lock()
		r.pendIdx[ck] = append(r.pendIdx[ck], pendingIndex{pool: pool, wrapped: dk.CiphertextBlob, key: key})
		if len(r.pendIdx[ck]) > maxPending {
			r.pendIdx[ck] = r.pendIdx[ck][1:]
		}
		r.mu.Unlock()
		return key, nil
	}
	r.setIndexKey(ck, key)
	return key, nil
}

func (r *keyring) unwrapIndexKey(ctx context.Context, ck colKey, wrapped []byte) ([]byte, error) {
	out, err := r.kms.Decrypt(ctx, wrapped, encContext(purposeBIDX, ck.table, ck.column))
	if err != nil {
		return nil, fmt.Errorf("%w: unwrap index key: %w", ErrKMS, err)
	}
	defer clear(out.Plaintext)
	key, err := deriveIndexKey(out.Plaintext, ck)
	if err != nil {
		return nil, err
	}
	r.setIndexKey(ck, key)
	return key, nil
}

func (r *keyring) setIndexKey(ck colKey, key []byte) {
	r.mu.Lock()
	r.bidx[ck] = key
	r.pendIdx[ck] = nil
	r.mu.Unlock()
}

func deriveIndexKey(material []byte, ck colKey) ([]byte, error) {
	return hkdf.Key(sha256.New, material, nil, "kmsgo ormplugin blind index v1\x00"+ck.table+"\x00"+ck.column, 32)
}

// blindIndex computes the blind index of a plaintext.
func blindIndex(key, plain []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(plain)
	return m.Sum(nil)
}
