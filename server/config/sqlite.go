package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// SQLite synchronous modes accepted by database.sqlite_synchronous.
//
// SQLite runs in WAL mode. With "full" (audit.sync strict) every commit, and so
// every audit record kmsd acknowledges, is fsynced: it survives a process
// crash, an OS crash and a power loss. With "normal" a commit survives a
// kmsd crash but the last transactions before an OS crash or power loss may
// be lost (the database stays consistent); with audit.sync group (the
// default) a checkpoint at least every second bounds that window. The
// production path is MySQL/PostgreSQL.
const (
	SQLiteSyncFull   = "full"
	SQLiteSyncNormal = "normal"
)

// validSQLiteSync reports whether v is an accepted sqlite_synchronous value
// ("" means: from audit.sync).
func validSQLiteSync(v string) bool {
	switch v {
	case "", SQLiteSyncFull, SQLiteSyncNormal:
		return true
	}
	return false
}

// SQLiteDSN adds the synchronous mode to a go-sqlite3 DSN unless the DSN
// sets one itself (_synchronous or _sync; then the DSN wins). Without it the
// driver would apply its own default, NORMAL.
func SQLiteDSN(dsn, mode string) string {
	if mode == "" {
		mode = SQLiteSyncFull
	}
	return withSQLiteSync(dsn, mode)
}

// EffectiveSQLiteSync is database.sqlite_synchronous, or what audit.sync
// implies when it is empty.
func (c Config) EffectiveSQLiteSync() string {
	switch {
	case c.Database.SQLiteSynchronous != "":
		return c.Database.SQLiteSynchronous
	case c.Audit.Sync == AuditSyncStrict:
		return SQLiteSyncFull
	default:
		return SQLiteSyncNormal
	}
}

func withSQLiteSync(dsn, mode string) string {
	if _, query, ok := strings.Cut(dsn, "?"); ok {
		if q, err := url.ParseQuery(query); err == nil && (q.Has("_synchronous") || q.Has("_sync")) {
			return dsn
		}
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%s_synchronous=%s", dsn, sep, strings.ToUpper(mode))
}

// EnsurePrivateFile creates the SQLite database file with mode 0600 (or
// tightens an existing one) before SQLite opens it: SQLite gives its -wal and
// -shm files the database file's mode, and the database holds wrapped key
// material, access-key records and the audit log.
func EnsurePrivateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("config: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("config: chmod %s: %w", path, err)
	}
	return nil
}
