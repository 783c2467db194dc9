// Package ormplugin encrypts tagged GORM fields transparently with data keys
// from kmsd (envelope encryption), keeps blind indexes for equality search,
// and migrates existing plaintext columns in place.
//
// # Use
//
//	db.Use(ormplugin.New(client, ormplugin.Config{KeyID: "alias/orders"}))
//
//	type User struct {
//		ID        uint
//		Email     string  `gorm:"serializer:kms;size:255" kms:"index=email_bidx"`
//		EmailBidx []byte  `gorm:"size:32;index"`
//		Phone     *string `gorm:"serializer:kms"`
//	}
//
//	db.Where(ormplugin.Equal("Email", "a@example.com")).First(&u)
//
// `gorm:"serializer:kms"` marks a field as encrypted. The optional `kms` tag
// takes comma-separated options:
//
//	index=<field or column>  a []byte field that receives the blind index
//	                         (HMAC-SHA-256, 32 bytes) of the value; it is filled
//	                         on every write, and Equal compares against it
//	table=<table>            the table bound into the AAD, for a read-only
//	                         struct (DTO) that scans columns of another table
//	bind=<field or column>   row binding: the value of an immutable column of
//	                         the row goes into the AAD (see Threat model)
//
// client is any KMS; *kmsclient.Client is the intended one. Tag errors
// surface on a model's first statement; Plugin.Validate(models...) after
// db.Use reports them at start-up.
//
// # Supported field types and plaintext encoding
//
//	string, *string, sql.NullString, sql.Null[string]   UTF-8 bytes
//	[]byte, *[]byte, sql.Null[[]byte]                    the bytes
//	any other JSON-marshalable type (structs, maps, ...)  encoding/json
//
// NULL stays NULL: a nil pointer, nil []byte, nil map/slice or an invalid
// sql.Null* is written as SQL NULL (and its blind index is NULL), and NULL
// reads back as the zero value. Encrypted columns are text columns (GORM
// declares them as its string type).
//
// # Stored value format (versions 1 and 2)
//
//	"kms1:" || base64url-no-padding( dkid (8 bytes, big endian) || nonce (12) || AES-256-GCM ciphertext || tag (16) )
//	"kms2:" || the same, for a row-bound field
//
// dkid names a row of the table kms_data_keys (id, tbl, col, key_id,
// key_version, wrapped, timestamps) holding the data key wrapped by kmsd
// under master key key_id, version key_version. So every stored value
// identifies its data key, and through it the master key version behind it.
// The GCM nonce is random per value; the AAD is
// "kmsgo/ormplugin/v1" 0x00 table 0x00 column 0x00 dkid, so a value copied
// into another column or table does not decrypt. A row-bound value (format
// 2) has the AAD "kmsgo/ormplugin/v2" 0x00 table 0x00 column 0x00 dkid ||
// bound column 0x00 || len(bound value) (4 bytes, big endian) || bound value,
// where the bound value is its text form as the database returns it
// (decimal for integers, strings and bytes as they are, driver.Valuer
// types through Value). Data keys are also bound
// to their table and column by the kmsd encryption context
// {"kmsgo:purpose": "ormplugin:dek", "table": ..., "column": ...}.
//
// Length of a stored value for a plaintext of n bytes (n as encoded above;
// for JSON types the length of the JSON text):
//
//	CiphertextLen(n) = 5 + ceil(4 * (n + 36) / 3)
//
// e.g. 53 characters for n = 0, 80 for a 20-byte e-mail address, 1419 for
// n = 1024. Size encrypted columns for it (MigratePlaintext checks this).
//
// A value that does not start with "kms1:" or "kms2:" is ErrNotCiphertext
// unless Config.AllowPlaintextReads is set (only while MigratePlaintext
// runs). Any other failure (malformed, unknown data key, wrong column or
// row, tampered) is the one opaque ErrDecrypt. kmsd failures are ErrKMS.
//
// # Errors say where, never what
//
// A value that cannot be read fails the statement with a *DecryptError
// naming table, column and primary key ("customers.note (id=42): ormplugin:
// cannot decrypt stored value"); errors.Is still matches ErrDecrypt,
// ErrNotCiphertext, ErrBindMissing or ErrKMS, errors.As gives the location.
// The value is never in the message. In a Find over many rows every other
// row and field is read, the failed fields are left zero, and the error
// lists the first ten failures and how many more there are (the primary key
// is named when the query selected it). To list every bad row of a table,
// run Plugin.Verify / VerifyTable, or `kmsctl orm verify TABLE`: it
// decrypts every value and reports plaintext, undecryptable and
// bind-missing values by primary key and column.
//
// # Threat model
//
// The plugin protects the values of tagged fields against anyone who can
// read the database (dumps, backups, replicas, a read-only SQL injection)
// but cannot use kmsd with the application's credentials: they see
// ciphertext, data keys wrapped by kmsd, and blind indexes. Blind indexes
// reveal which rows of a column hold equal values.
//
// Against an attacker who can also write the table, AES-GCM makes every
// forged or altered value fail to decrypt (ErrDecrypt), and the AAD stops a
// value from being moved to another column or table. Without row binding
// such an attacker can still, within one column: copy a value (and its blind
// index) from one row to another, so that the victim row reads as the
// other's value and Equal finds both rows; swap values between rows; put an
// older value of the same row back (rollback); delete values. With
// `kms:"bind=<column>"` a value copied or swapped into another row no longer
// decrypts there (the bound column's value differs), and Equal over a copied
// blind index returns an error for the copy instead of a wrong row. Binding
// does not stop a rollback of a row to an older value of its own, deletion,
// or copying a whole row including its bound column; and the attacker still
// learns equality through blind indexes. An attacker who can call kmsd with
// the application's credentials can decrypt everything: that is what kmsd's
// access keys, policies and audit log are for.
//
// Bind only to a column whose value is known before insert and never
// changes: a primary key set by the application (UUID, snowflake id: an
// integer key needs gorm:"primaryKey;autoIncrement:false") or another
// immutable column. Binding to a key the database generates (auto-increment,
// a database default) is refused with ErrConfig. Writes with the bound
// column empty fail with ErrBindMissing; an update of a bound column needs
// the model with the bound value (db.Model(&row)) and is restricted to rows
// with that value; reads need the bound column selected before the field
// (SELECT * does when the bound field comes before the encrypted field in
// the struct and AutoMigrate created the table). Values
// written before a field was bound ("kms1:") stay readable; Reencrypt
// rewrites them bound, after which copies of old unbound values are the
// only ones an attacker could still move.
//
// # Keys, caching and kmsd calls
//
// One data key per (table, column) encrypts values until it reaches
// Config.MaxKeyAge (default 1h), MaxKeyUses (default 2^24, at most 2^30,
// far below the 2^32 random-nonce bound) or MaxKeyBytes (default 16 GiB);
// then the next write asks kmsd for a new one. kmsd is called once per data
// key: GenerateDataKey when it is created, Decrypt when a process first
// reads a value under it (unwrapped keys are cached, DecryptCacheSize /
// DecryptCacheTTL). A statement reserves keys only for the encrypted
// columns it writes with a non-NULL value: Update("name", ...) or a struct
// update of plain columns needs no key and never calls kmsd. Keys are
// reserved before GORM opens its transaction, so with kmsd down and no
// usable cached key a write of an encrypted column fails with ErrKMS and
// nothing is written; with a cached key, writes and reads keep working.
//
// A process that starts (or a second replica) adopts the newest data key of
// a column created under the same Config.KeyID less than MaxKeyAge/2 ago
// (one kmsd Decrypt) instead of adding a key row per start. Key age counts
// from the row's creation, so MaxKeyAge bounds a key across processes;
// MaxKeyUses and MaxKeyBytes are counted per process, so k processes
// sharing a key may use it k times as often: with the default 2^24 uses the
// 2^32 random-nonce bound holds for up to 256 processes per key and hour.
// Reencrypt deletes the key rows no value references any more (see
// Reencrypt for when it is safe), so the key table stays proportional to the
// keys in use; `kmsctl orm status --table` shows both counts.
//
// Blind indexes use, per (table, column), an HMAC key derived with HKDF from
// a separate kmsd data key (never a value data key), stored wrapped in
// kms_index_keys. They reveal which rows hold equal values, nothing more.
// GORM turns a struct condition on an encrypted field
// (db.Where(&User{Email: x})) into "email IS NULL"; the plugin rejects such
// queries with ErrEncryptedCondition: use Equal. LIKE search is not
// supported.
//
// # Performance
//
// Values are sealed locally (AES-GCM with a cached cipher per data key,
// nonces read from crypto/rand in blocks, output carved from a per-statement
// buffer). BenchmarkOverhead (SQLite, 10k rows, one encrypted string column)
// puts CreateInBatches(500) at about 1.3x the unencrypted model and
// select-all at about 1.2-1.4x. Most of the create overhead is the database
// storing 80-character ciphertexts instead of 20-character e-mail
// addresses: against plaintext values of ciphertext length (its x-sized
// metric) encryption costs about 1.0-1.15x, and sealing is under 10% of the
// CPU profile. Such a run makes one kmsd call (GenerateDataKey).
//
// # GORM paths
//
// Create, CreateInBatches, Save, Updates (struct and map), Update,
// UpdateColumn(s), FirstOrCreate, Session{SkipHooks: true}, Find, First,
// Take, Scan, Rows/ScanRows and Raw(...).Scan keep ciphertext in the
// database and plaintext (and generated primary keys) in the caller's
// values: writes go through the serializer or through the plugin's update
// callback, which builds the SET clause itself so that map updates are
// encrypted too. A map read (db.Model(&User{}).Find(&[]map[string]any{}))
// returns each encrypted column decrypted, as a value of the field's Go type
// (string, *string, Profile, ...) or nil for NULL. Only Find, First, Take
// and Last decrypt maps: Scan, ScanRows and Raw into a map bypass the
// query callbacks and return the stored ciphertext. Pluck of an encrypted
// column (db.Model(&User{}).Pluck("email", &emails), or Select("email") with
// Find into a slice) decrypts into string, []byte or any elements (any gets
// the field's Go type); it needs the Model (db.Table(...).Pluck returns the
// ciphertext) and fails with ErrBindMissing on a row-bound column (select
// the bound column too, into a struct). A struct field without
// the serializer tag receives the stored ciphertext as is: give DTO fields
// `gorm:"serializer:kms" kms:"table=<model table>"`. Create from a map and SQL
// expressions (gorm.Expr) assigned to encrypted columns are rejected with
// ErrUnsupported.
//
// Inside a SQLite transaction a new key row is written through the
// transaction (another connection could not write), and the key is used by
// that transaction only until its row is seen committed. Reading a value
// whose data key is not cached loads the key row on a separate connection:
// keep at least two connections in the pool. For the same reason a private
// SQLite in-memory database (":memory:", every connection its own database)
// is refused by db.Use with ErrConfig: use a file or a shared in-memory
// database ("file::memory:?cache=shared").
//
// # Migration, renewal, re-encryption
//
// Plugin.MigratePlaintext encrypts an existing plaintext table in place in
// resumable batches with a progress callback (Progress.Phase: check,
// rewrite, verify); it first checks, without writing, that each plaintext
// decodes as its field type and that its ciphertext fits the column
// (ErrColumnTooSmall). A value is treated as ciphertext only when it parses
// and authenticates, so plaintext that happens to start with "kms1:" is
// encrypted too. It is safe while the application writes: a row changed
// between the migration's read and its update is read again and retried,
// a verify pass encrypts what writers left, and if plaintext remains the
// result is ErrPlaintextRemains with the count (Progress.Remaining).
// TableStatus counts, without kmsd, the plaintext values a table still has:
// when it is 0 for every column, AllowPlaintextReads can be turned off.
// RenewDataKeys re-wraps the stored data keys under the newest master key
// version (kmsd ReEncrypt) without touching any row; DataKeyVersions tells
// when an old version is no longer referenced. Plugin.Reencrypt re-encrypts
// values under fresh data keys (all, or those whose data key was generated
// under an old master key version: renewal does not change that) and then
// deletes unreferenced key rows. MigrateTable, ReencryptTable and
// VerifyTable do the same for a table described by names (TableSpec), for
// command-line tools.
//
// Plugin.Renew runs both as one resumable job after a master key rotation:
// it re-wraps the keys not under the primary version (a key already under
// the version kmsd returned for another key of its master key costs no
// call), then optionally (RenewReencrypt) re-encrypts the given tables.
// After every committed batch it hands a cursor to SaveCursor; given back
// as Cursor, the next run (another process, after a crash) resumes there.
// Rows are updated by compare-and-swap on the values read, so a row the
// application writes meanwhile keeps the application's value (it is read
// again and re-encrypted). Values that do not decrypt are counted
// (RenewalReport.Values.Failed) and left alone. The report counts keys and
// values scanned, renewed, skipped and failed, and the kmsd calls made.
// The kmsgo starter schedules it (database.renewal) under a lease in the
// kmsgo_jobs table, so one instance runs it per period; `kmsctl orm renew`
// runs it once under the same lease. On SQLite, after a rotation, a re-wrap
// renewal of 1M rows under 4 data keys takes milliseconds and 4 kmsd
// calls; a full re-encryption rewrites rows at about 2-3x the time of the
// same batched compare-and-swap UPDATEs without cryptography
// (BenchmarkRenewRewrap, BenchmarkRenewReencrypt).
package ormplugin
