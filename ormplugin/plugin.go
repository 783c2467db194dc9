package ormplugin

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// PluginName is the name the plugin registers under (gorm.Plugin.Name).
const PluginName = "kmsgo:ormplugin"

// SerializerName is the GORM serializer that marks a field as encrypted:
// `gorm:"serializer:kms"`. It is registered when the package is imported.
const SerializerName = "kms"

// Defaults for Config.
const (
	DefaultMaxKeyAge        = time.Hour
	DefaultMaxKeyUses       = 1 << 24 // far below the 2^32 random-nonce bound of AES-GCM
	DefaultMaxKeyBytes      = 1 << 34 // 16 GiB of plaintext per data key
	DefaultDecryptCacheSize = 1024
	DefaultDecryptCacheTTL  = 24 * time.Hour

	// MaxKeyUsesLimit is the largest accepted Config.MaxKeyUses: a quarter
	// of the 2^32 random-nonce bound of NIST SP 800-38D.
	MaxKeyUsesLimit = 1 << 30
)

// Config configures a Plugin. Only KeyID is required.
type Config struct {
	// KeyID is the kmsd master key (id or alias, e.g. "alias/orders") that
	// wraps the data keys and blind-index keys.
	KeyID string

	// MaxKeyAge, MaxKeyUses and MaxKeyBytes bound how long, for how many
	// values and for how many plaintext bytes one data key encrypts before a
	// new one is generated. Zero means the default.
	MaxKeyAge   time.Duration
	MaxKeyUses  int64
	MaxKeyBytes int64

	// DecryptCacheSize bounds the number of unwrapped data keys kept for
	// reading; DecryptCacheTTL bounds how long one is kept (after that,
	// reading needs kmsd again). Zero means the default.
	DecryptCacheSize int
	DecryptCacheTTL  time.Duration

	// AllowPlaintextReads lets reads return stored values that are not
	// ormplugin ciphertext as if they were plaintext. Enable it only while
	// MigratePlaintext is running on existing data; outside migration such a
	// value is ErrNotCiphertext.
	AllowPlaintextReads bool
}

// Plugin is a gorm.Plugin that encrypts fields tagged `gorm:"serializer:kms"`.
type Plugin struct {
	cfg  Config
	keys *keyring
	db   *gorm.DB // root database, for key rows

	infoMu sync.Mutex
	info   map[*schema.Schema]*schemaInfo
	err    error

	// rawKMS is the KMS given to New (Renew re-wraps keys with it when it
	// is a ReEncrypter).
	rawKMS KMS
	// kmsCalls counts the calls the plugin made to its KMS.
	kmsCalls atomic.Int64

	// beforeRewrite (tests only) runs between reading a rewrite batch and
	// writing it, with the primary keys about to be written.
	beforeRewrite func(pks []any)
}

// New returns a plugin that wraps its data keys with cfg.KeyID in kms.
// Register it with db.Use.
func New(kms KMS, cfg Config) *Plugin {
	p := &Plugin{info: map[*schema.Schema]*schemaInfo{}}
	if cfg.MaxKeyAge <= 0 {
		cfg.MaxKeyAge = DefaultMaxKeyAge
	}
	if cfg.MaxKeyUses <= 0 {
		cfg.MaxKeyUses = DefaultMaxKeyUses
	}
	if cfg.MaxKeyBytes <= 0 {
		cfg.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if cfg.DecryptCacheSize <= 0 {
		cfg.DecryptCacheSize = DefaultDecryptCacheSize
	}
	if cfg.DecryptCacheTTL <= 0 {
		cfg.DecryptCacheTTL = DefaultDecryptCacheTTL
	}
	switch {
	case kms == nil:
		p.err = fmt.Errorf("%w: nil KMS", ErrConfig)
	case cfg.KeyID == "":
		p.err = fmt.Errorf("%w: KeyID is required", ErrConfig)
	case cfg.MaxKeyUses > MaxKeyUsesLimit:
		p.err = fmt.Errorf("%w: MaxKeyUses over %d", ErrConfig, int64(MaxKeyUsesLimit))
	}
	p.cfg = cfg
	p.rawKMS = kms
	if kms != nil {
		kms = countingKMS{next: kms, n: &p.kmsCalls}
	}
	p.keys = newKeyring(kms, &p.cfg)
	return p
}

// KMSCalls returns how many calls this plugin has made to its KMS
// (GenerateDataKey and Decrypt) since New.
func (p *Plugin) KMSCalls() int64 { return p.kmsCalls.Load() }

// countingKMS counts the calls made through it.
type countingKMS struct {
	next KMS
	n    *atomic.Int64
}

func (c countingKMS) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error) {
	c.n.Add(1)
	return c.next.GenerateDataKey(ctx, keyID, encCtx)
}

func (c countingKMS) Decrypt(ctx context.Context, blob []byte, encCtx map[string]string) (*DecryptResult, error) {
	c.n.Add(1)
	return c.next.Decrypt(ctx, blob, encCtx)
}

// Name implements gorm.Plugin.
func (p *Plugin) Name() string { return PluginName }

// Initialize implements gorm.Plugin: it creates the key tables and registers
// the callbacks.
func (p *Plugin) Initialize(db *gorm.DB) error {
	if p.err != nil {
		return p.err
	}
	if err := checkPrivateMemoryDB(db); err != nil {
		return err
	}
	p.db = db.Session(&gorm.Session{NewDB: true})
	if err := p.db.AutoMigrate(&dataKeyRow{}, &indexKeyRow{}); err != nil {
		return fmt.Errorf("ormplugin: create key tables: %w", err)
	}
	cb := db.Callback()
	reg := []struct {
		name string
		err  error
	}{
		{"create prepare", cb.Create().Before("*").Register("ormplugin:create_prepare", p.prepareCreate)},
		{"create index", cb.Create().Before("gorm:create").After("gorm:before_create").Register("ormplugin:create_index", p.fillCreateIndexes)},
		{"create done", cb.Create().After("*").Register("ormplugin:create_done", p.done)},
		{"update prepare", cb.Update().Before("*").Register("ormplugin:update_prepare", p.prepareUpdate)},
		{"update assign", cb.Update().Before("gorm:update").After("gorm:save_before_associations").Register("ormplugin:update_assign", p.assignUpdate)},
		{"update done", cb.Update().After("*").Register("ormplugin:update_done", p.done)},
		{"delete prepare", cb.Delete().Before("*").Register("ormplugin:delete_prepare", p.prepareRead)},
		{"delete done", cb.Delete().After("*").Register("ormplugin:delete_done", p.done)},
		{"query prepare", cb.Query().Before("*").Register("ormplugin:query_prepare", p.prepareQuery)},
		{"query maps", cb.Query().After("gorm:query").Register("ormplugin:query_maps", p.decryptMaps)},
		{"query done", cb.Query().After("*").Register("ormplugin:query_done", p.done)},
		{"row prepare", cb.Row().Before("*").Register("ormplugin:row_prepare", p.prepareRead)},
		{"raw prepare", cb.Raw().Before("*").Register("ormplugin:raw_prepare", p.prepareRead)},
	}
	for _, r := range reg {
		if r.err != nil {
			return fmt.Errorf("ormplugin: register %s callback: %w", r.name, r.err)
		}
	}
	return nil
}

// checkPrivateMemoryDB refuses a SQLite in-memory database private to each
// connection (":memory:"): the plugin reads and writes its key rows on other
// connections of the pool than the statement's, which would each see
// another, empty database (a new data key per write transaction, keys that
// cannot be found on read). The DSN is read by reflection so that the
// plugin does not import a SQLite driver.
func checkPrivateMemoryDB(db *gorm.DB) error {
	if db.Dialector == nil || db.Dialector.Name() != "sqlite" {
		return nil
	}
	rv := reflect.Indirect(reflect.ValueOf(db.Dialector))
	if rv.Kind() != reflect.Struct {
		return nil
	}
	f := rv.FieldByName("DSN")
	if !f.IsValid() || f.Kind() != reflect.String {
		return nil
	}
	dsn := strings.ToLower(f.String())
	shared := strings.Contains(dsn, "cache=shared")
	if !shared && (dsn == "" || strings.HasPrefix(dsn, ":memory:") || strings.HasPrefix(dsn, "file::memory:") || strings.Contains(dsn, "mode=memory")) {
		return fmt.Errorf("%w: SQLite :memory: gives every connection of the pool its own empty database, and the plugin keeps its keys through other connections than the statement's; "+
			"use a database file, or a shared in-memory database (\"file::memory:?cache=shared\", or \"file:NAME?mode=memory&cache=shared\")", ErrConfig)
	}
	return nil
}

// fieldInfo describes one encrypted field.
type fieldInfo struct {
	field *schema.Field
	index *schema.Field // blind index field, or nil
	bind  *schema.Field // row binding field (kms:"bind=..."), or nil
	table string        // table bound into the AAD
}

func (f *fieldInfo) key() colKey { return colKey{f.table, f.field.DBName} }

type schemaInfo struct {
	fields  []*fieldInfo
	byField map[*schema.Field]*fieldInfo
	byName  map[string]*fieldInfo // by Go name and by column name
	err     error

	mapSchema *schema.Schema // see prepareMapRead
}

func isEncrypted(f *schema.Field) bool {
	_, ok := f.Serializer.(kmsSerializer)
	return ok
}

// schemaInfo parses the kms tags of sch once.
func (p *Plugin) schemaInfo(sch *schema.Schema) *schemaInfo {
	p.infoMu.Lock()
	defer p.infoMu.Unlock()
	if si, ok := p.info[sch]; ok {
		return si
	}
	si := parseSchema(sch)
	p.info[sch] = si
	if len(si.fields) > 0 {
		schemaPlugins.Store(sch, p)
	}
	return si
}

// schemaPlugins maps each parsed schema (GORM caches schemas per *gorm.DB)
// to the plugin of that database. Reads that bypass the callbacks
// (db.ScanRows) find the plugin through it; writes never do.
var schemaPlugins sync.Map

// parseSchema reads the `kms:"..."` tags of sch's encrypted fields:
//
//	index=<field or column>   blind index field ([]byte) filled automatically
//	table=<table>             table bound into the AAD (for read-only DTOs
//	                          of another table); default: the model's table
//	bind=<field or column>    row binding: the column's value goes into the AAD
func parseSchema(sch *schema.Schema) *schemaInfo {
	si := &schemaInfo{byField: map[*schema.Field]*fieldInfo{}, byName: map[string]*fieldInfo{}}
	for _, f := range sch.Fields {
		tag, hasTag := f.StructField.Tag.Lookup("kms")
		if !isEncrypted(f) {
			if hasTag && si.err == nil {
				si.err = fmt.Errorf("%w: %s.%s has a kms tag but no gorm:\"serializer:kms\"", ErrConfig, sch.Name, f.Name)
			}
			continue
		}
		fi := &fieldInfo{field: f, table: sch.Table}
		if err := checkFieldType(f.FieldType); err != nil && si.err == nil {
			si.err = err
		}
		for _, opt := range strings.Split(tag, ",") {
			opt = strings.TrimSpace(opt)
			if opt == "" {
				continue
			}
			k, v, _ := strings.Cut(opt, "=")
			switch strings.TrimSpace(k) {
			case "index":
				idx := sch.LookUpField(strings.TrimSpace(v))
				if idx == nil || idx.FieldType != typBytes || idx.DBName == "" || isEncrypted(idx) {
					if si.err == nil {
						si.err = fmt.Errorf("%w: %s.%s: index=%q must name a []byte field", ErrConfig, sch.Name, f.Name, v)
					}
					continue
				}
				fi.index = idx
			case "table":
				fi.table = strings.TrimSpace(v)
			case "bind":
				b := sch.LookUpField(strings.TrimSpace(v))
				if err := checkBindField(sch, f, b); err != nil {
					if si.err == nil {
						si.err = err
					}
					continue
				}
				fi.bind = b
			default:
				if si.err == nil {
					si.err = fmt.Errorf("%w: %s.%s: unknown kms tag option %q", ErrConfig, sch.Name, f.Name, opt)
				}
			}
		}
		si.fields = append(si.fields, fi)
		si.byField[f] = fi
		si.byName[f.Name] = fi
		si.byName[f.DBName] = fi
	}
	return si
}

// stmtState travels in the statement context so that the (global) serializer
// finds the plugin, the statement's database and its key reservations.
type stmtState struct {
	p       *Plugin
	db      *gorm.DB
	origCtx context.Context
	addSet  bool

	origSchema *schema.Schema // set while a map read uses mapSchema

	mu     sync.Mutex
	leases map[colKey]*lease
	nonces nonceSource
	// scratch is working space for one value at a time; GORM serializes
	// and scans the values of one statement sequentially.
	scratch []byte
	arena   []byte         // stored values of this statement are carved from it
	dkeys   map[int64]*dek // data keys used by this statement's reads
	readAAD map[colKey]*lease
	cks     map[*schema.Field]colRef
	// query is set for statements of the query callbacks: Scan then
	// records decryption failures in failed, and done reports them once the
	// rows (and their primary keys) are complete.
	query    bool
	failed   []failedScan
	creating bool       // statement of the create callbacks
	pluck    *fieldInfo // Pluck of this encrypted column (see decryptPluck)
	// hotField/hotLease: the lease of the string field this statement
	// encrypted last (see encryptCached).
	hotField *schema.Field
	hotLease *lease
}

// colRef is what the serializer needs to know about an encrypted field.
type colRef struct {
	ck colKey
	fi *fieldInfo // nil for a field the plugin could not parse
}

// failedScan is a value Scan could not decrypt.
type failedScan struct {
	row   reflect.Value // the struct being scanned
	field *schema.Field
	table string
	err   error
}

type lease struct {
	k    *dek
	left int64
	aad  []byte // valueAAD of the column and k, computed on first use
}

type ctxKey struct{}

func stateFrom(ctx context.Context) *stmtState {
	if ctx == nil {
		return nil
	}
	st, _ := ctx.Value(ctxKey{}).(*stmtState)
	return st
}

// attach puts a fresh state into the statement context.
func (p *Plugin) attach(db *gorm.DB) *stmtState {
	ctx := db.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if st := stateFrom(ctx); st != nil && st.p == p && st.db == db {
		return st
	}
	st := &stmtState{p: p, db: db, origCtx: db.Statement.Context, leases: map[colKey]*lease{}}
	db.Statement.Context = context.WithValue(ctx, ctxKey{}, st)
	return st
}

func (p *Plugin) prepareRead(db *gorm.DB) {
	p.attach(db)
	p.checkConditions(db)
	p.prepareMapRead(db)
}

// prepareQuery is prepareRead for the query callbacks.
func (p *Plugin) prepareQuery(db *gorm.DB) {
	st := p.attach(db)
	st.query = true
	st.pluck = p.pluckField(db)
	p.checkConditions(db)
	p.prepareMapRead(db)
}

// checkConditions rejects WHERE conditions that GORM built from a struct on
// an encrypted field: GORM swallows the serializer error there and writes
// "IS NULL", which would silently match the wrong rows.
func (p *Plugin) checkConditions(db *gorm.DB) {
	c, ok := db.Statement.Clauses["WHERE"]
	if !ok || db.Error != nil {
		return
	}
	where, ok := c.Expression.(clause.Where)
	if !ok {
		return
	}
	var walk func(exprs []clause.Expression) error
	walk = func(exprs []clause.Expression) error {
		for _, e := range exprs {
			var vals []any
			switch x := e.(type) {
			case clause.Eq:
				vals = []any{x.Value}
			case clause.Neq:
				vals = []any{x.Value}
			case clause.IN:
				vals = x.Values
			case clause.AndConditions:
				if err := walk(x.Exprs); err != nil {
					return err
				}
			case clause.OrConditions:
				if err := walk(x.Exprs); err != nil {
					return err
				}
			case clause.NotConditions:
				if err := walk(x.Exprs); err != nil {
					return err
				}
			case clause.Where:
				if err := walk(x.Exprs); err != nil {
					return err
				}
			}
			for _, v := range vals {
				if f := gormSerializerField(v); f != nil && isEncrypted(f) {
					return fmt.Errorf("%w: %s.%s", ErrEncryptedCondition, f.Schema.Name, f.Name)
				}
			}
		}
		return nil
	}
	if err := walk(where.Exprs); err != nil {
		_ = db.AddError(err)
	}
}

// done restores the statement context and removes a SET clause we added.
func (p *Plugin) done(db *gorm.DB) {
	st := stateFrom(db.Statement.Context)
	if st == nil || st.p != p {
		return
	}
	if st.addSet {
		delete(db.Statement.Clauses, "SET")
	}
	if st.origSchema != nil {
		db.Statement.Schema = st.origSchema
	}
	if len(st.failed) > 0 {
		errs := make([]*DecryptError, 0, len(st.failed))
		for _, f := range st.failed {
			errs = append(errs, &DecryptError{Table: f.table, Column: f.field.DBName, PrimaryKey: rowPK(st.origCtx, f.field.Schema, f.row), Err: f.err})
		}
		st.failed = nil
		_ = db.AddError(joinDecryptErrors(errs))
	}
	db.Statement.Context = st.origCtx
}

// rowPK formats the primary key of a struct row of sch as "col=value"
// ("" when it is not set).
func rowPK(ctx context.Context, sch *schema.Schema, row reflect.Value) string {
	if sch == nil || len(sch.PrimaryFields) == 0 {
		return ""
	}
	for row.Kind() == reflect.Pointer {
		if row.IsNil() {
			return ""
		}
		row = row.Elem()
	}
	if row.Kind() != reflect.Struct || row.Type() != sch.ModelType {
		return ""
	}
	parts := make([]string, 0, len(sch.PrimaryFields))
	for _, f := range sch.PrimaryFields {
		v, zero := f.ValueOf(ctx, row)
		if zero {
			return ""
		}
		parts = append(parts, fmt.Sprintf("%s=%v", f.DBName, v))
	}
	return strings.Join(parts, ",")
}

// mapPK is rowPK for a map row.
func mapPK(sch *schema.Schema, m map[string]any) string {
	if sch == nil || len(sch.PrimaryFields) == 0 {
		return ""
	}
	parts := make([]string, 0, len(sch.PrimaryFields))
	for _, f := range sch.PrimaryFields {
		v, ok := m[f.DBName]
		if !ok || v == nil {
			return ""
		}
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		parts = append(parts, fmt.Sprintf("%s=%v", f.DBName, v))
	}
	return strings.Join(parts, ",")
}

// prepareWrite runs first in create and update: it reserves data keys for
// the statement before GORM opens its transaction, so that kmsd being down
// fails the statement before anything is written.
func (p *Plugin) prepareCreate(db *gorm.DB) { p.prepareWrite(db, true) }
func (p *Plugin) prepareUpdate(db *gorm.DB) { p.prepareWrite(db, false) }

func (p *Plugin) prepareWrite(db *gorm.DB, create bool) {
	if db.Error != nil {
		return
	}
	st := p.attach(db)
	st.creating = create
	p.checkConditions(db)
	if db.Statement.Schema == nil || db.Error != nil {
		return
	}
	si := p.schemaInfo(db.Statement.Schema)
	if len(si.fields) == 0 {
		return
	}
	if si.err != nil {
		_ = db.AddError(si.err)
		return
	}
	n := int64(1)
	rv := reflect.Indirect(db.Statement.ReflectValue)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		n = int64(rv.Len())
	}
	if n == 0 {
		return
	}
	ctx := db.Statement.Context
	for _, fi := range p.writtenFields(db, si) {
		k, err := p.keys.reserve(ctx, p.db, db, fi.key(), n)
		if err != nil {
			_ = db.AddError(err)
			return
		}
		st.leases[fi.key()] = &lease{k: k, left: min(n, p.cfg.MaxKeyUses)}
		if fi.index != nil {
			if _, err := p.keys.indexKey(ctx, p.db, db, fi.key()); err != nil {
				_ = db.AddError(err)
				return
			}
		}
	}
}

// writtenFields returns the encrypted fields of the model's own table that
// the statement may write a non-NULL value to: only those need a data key.
// It errs on the side of too many (a missed field reserves its key when it
// is encrypted, inside the transaction).
func (p *Plugin) writtenFields(db *gorm.DB, si *schemaInfo) []*fieldInfo {
	stmt := db.Statement
	ctx := stmt.Context
	isUpdate := !isCreate(db)
	var fromMap map[string]any
	var dest reflect.Value
	starSelect := false
	for _, s := range stmt.Selects {
		if s == "*" {
			starSelect = true
		}
	}
	if isUpdate {
		switch d := stmt.Dest.(type) {
		case map[string]any:
			fromMap = d
		case *map[string]any:
			fromMap = *d
		default:
			dest = reflect.Indirect(reflect.ValueOf(stmt.Dest))
		}
	}
	selected, restricted := stmt.SelectAndOmitColumns(!isUpdate, isUpdate)
	var out []*fieldInfo
	for _, fi := range si.fields {
		if fi.table != stmt.Schema.Table {
			continue // read-only mapping of another table
		}
		if v, ok := selected[fi.field.DBName]; (ok && !v) || (!ok && restricted && !starSelect) {
			continue // omitted, or not selected
		}
		switch {
		case fromMap != nil:
			v, ok := fromMap[fi.field.DBName]
			if !ok {
				v, ok = fromMap[fi.field.Name]
			}
			if !ok || v == nil {
				continue
			}
		case isUpdate && dest.Kind() == reflect.Struct && dest.Type() == stmt.Schema.ModelType && !starSelect && !restricted:
			if _, zero := fi.field.ValueOf(ctx, dest); zero { // Updates(struct) skips zero fields
				continue
			}
		case !isUpdate:
			if allNull(ctx, fi.field, reflect.Indirect(stmt.ReflectValue)) {
				continue
			}
		}
		out = append(out, fi)
	}
	return out
}

// isCreate reports whether db runs the create callbacks.
func isCreate(db *gorm.DB) bool {
	st := stateFrom(db.Statement.Context)
	return st != nil && st.creating
}

// allNull reports whether field is NULL in every row of rv (a struct or a
// slice of structs): such a statement writes no value of that column.
func allNull(ctx context.Context, field *schema.Field, rv reflect.Value) bool {
	switch rv.Kind() {
	case reflect.Struct:
		return isNullValue(field.ReflectValueOf(ctx, rv))
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			row := reflect.Indirect(rv.Index(i))
			if row.Kind() != reflect.Struct || !isNullValue(field.ReflectValueOf(ctx, row)) {
				return false
			}
		}
		return true
	}
	return false
}

// isNullValue reports whether a field value is stored as SQL NULL (see
// encodePlain), without encoding it.
func isNullValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return v.IsNil()
	case reflect.Struct:
		if v.Type() == typNullString {
			return !v.Field(1).Bool()
		}
		if _, ok := nullInner(v.Type()); ok {
			return !v.FieldByName("Valid").Bool()
		}
	}
	return false
}

// encrypt seals plain for column ck using the statement's key reservation,
// reserving more when it runs out. b is the row binding of a bound field.
func (st *stmtState) encrypt(ctx context.Context, ck colKey, b *bindCtx, plain []byte) (string, error) {
	if b != nil && b.value == nil {
		if b.missing != nil {
			return "", b.missing
		}
		return "", ErrBindMissing
	}
	st.mu.Lock()
	l := st.leases[ck]
	if l == nil || l.left <= 0 {
		st.mu.Unlock()
		k, err := st.p.keys.reserve(ctx, st.p.db, st.db, ck, 1)
		if err != nil {
			return "", err
		}
		st.mu.Lock()
		l = &lease{k: k, left: 1}
		st.leases[ck] = l
	}
	l.left--
	k := l.k
	var aad []byte
	if b != nil {
		aad = boundAAD(ck.table, ck.column, k.id, b.column, b.value)
	} else {
		if l.aad == nil {
			l.aad = valueAAD(ck.table, ck.column, k.id)
		}
		aad = l.aad
	}
	nonce := st.nonces.next()
	st.mu.Unlock()
	if nonce == nil {
		return "", ErrKMS // crypto/rand failed: never reached in practice
	}
	return sealInto(k, aad, plain, nonce, &st.scratch, &st.arena, b != nil), nil
}

// remember makes field's current lease the one encryptCached uses.
func (st *stmtState) remember(field *schema.Field, ck colKey) {
	st.mu.Lock()
	if l := st.leases[ck]; l != nil && l.aad != nil {
		st.hotField, st.hotLease = field, l
	}
	st.mu.Unlock()
}

// encryptCached is encrypt for the field remembered last, taking one lock
// and no map lookups. ok is false when the slow path must run (another
// field, no lease left, no randomness).
func (st *stmtState) encryptCached(field *schema.Field, plain string) (string, bool) {
	st.mu.Lock()
	l := st.hotLease
	if st.hotField != field || l == nil || l.left <= 0 {
		st.mu.Unlock()
		return "", false
	}
	nonce := st.nonces.next()
	if nonce == nil {
		st.mu.Unlock()
		return "", false
	}
	l.left--
	k, aad := l.k, l.aad
	st.mu.Unlock()
	return sealInto(k, aad, unsafe.Slice(unsafe.StringData(plain), len(plain)), nonce, &st.scratch, &st.arena, false), true
}

// indexOf computes the blind index for a field value (nil for NULL).
func (p *Plugin) indexOf(ctx context.Context, stmtDB *gorm.DB, ck colKey, value any) ([]byte, error) {
	plain, null, err := encodePlain(value)
	if err != nil || null {
		return nil, err
	}
	defer clear(plain)
	key, err := p.keys.indexKey(ctx, p.db, stmtDB, ck)
	if err != nil {
		return nil, err
	}
	return blindIndex(key, plain), nil
}

// fillCreateIndexes sets the blind index fields of the rows being created,
// after BeforeCreate hooks have run.
func (p *Plugin) fillCreateIndexes(db *gorm.DB) {
	if db.Error != nil || db.Statement.Schema == nil {
		return
	}
	si := p.schemaInfo(db.Statement.Schema)
	if len(si.fields) == 0 {
		return
	}
	ctx := db.Statement.Context
	rv := reflect.Indirect(db.Statement.ReflectValue)
	switch rv.Kind() {
	case reflect.Map:
		_ = db.AddError(fmt.Errorf("%w: Create from a map on %s; create from the struct", ErrUnsupported, db.Statement.Schema.Name))
		return
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			row := reflect.Indirect(rv.Index(i))
			if row.Kind() != reflect.Struct {
				_ = db.AddError(fmt.Errorf("%w: Create from %s", ErrUnsupported, row.Type()))
				return
			}
			if err := p.fillRowIndexes(ctx, db, si, row); err != nil {
				_ = db.AddError(err)
				return
			}
		}
	case reflect.Struct:
		if err := p.fillRowIndexes(ctx, db, si, rv); err != nil {
			_ = db.AddError(err)
		}
	}
}

func (p *Plugin) fillRowIndexes(ctx context.Context, db *gorm.DB, si *schemaInfo, row reflect.Value) error {
	for _, fi := range si.fields {
		if fi.index == nil {
			continue
		}
		bidx, err := p.indexOf(ctx, db, fi.key(), fi.field.ReflectValueOf(ctx, row).Interface())
		if err != nil {
			return err
		}
		if err := fi.index.Set(ctx, row, bidx); err != nil {
			return err
		}
	}
	return nil
}

// Validate parses the kms tags of models and returns the first error
// (ErrConfig, ErrUnsupportedType): an unknown option, an index that is not
// a []byte field, or row binding to an auto-increment key. Without it such
// errors surface on the model's first statement; call it at start-up,
// after db.Use, to fail at registration instead.
func (p *Plugin) Validate(models ...any) error {
	if p.err != nil {
		return p.err
	}
	if p.db == nil {
		return fmt.Errorf("%w: register the plugin with db.Use first", ErrConfig)
	}
	for _, m := range models {
		stmt := &gorm.Statement{DB: p.db}
		if err := stmt.Parse(m); err != nil {
			return err
		}
		if si := p.schemaInfo(stmt.Schema); si.err != nil {
			return si.err
		}
	}
	return nil
}
