package dbtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names.
const (
	SQLite   = "sqlite"
	MySQL    = "mysql"
	Postgres = "postgres"
)

// Env variables holding admin DSNs of the shared test servers.
const (
	EnvMySQL    = "KMS_TEST_MYSQL_DSN"    // e.g. root:@tcp(127.0.0.1:3306)/test?parseTime=true
	EnvPostgres = "KMS_TEST_POSTGRES_DSN" // e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	EnvRequire  = "KMS_TEST_REQUIRE_DBS"
)

// Dialects lists the dialects available to this test run.
func Dialects(t testing.TB) []string {
	t.Helper()
	out := []string{SQLite}
	for _, d := range []struct{ name, env string }{{MySQL, EnvMySQL}, {Postgres, EnvPostgres}} {
		if os.Getenv(d.env) != "" {
			out = append(out, d.name)
		} else if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("dbtest: %s is not set but %s=1", d.env, EnvRequire)
		}
	}
	return out
}

// ForEach runs fn as a subtest named after each available dialect, with a
// fresh database.
func ForEach(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	for _, d := range Dialects(t) {
		t.Run(d, func(t *testing.T) { fn(t, Open(t, d)) })
	}
}

// Open returns a fresh empty database of the given dialect, removed at the
// end of the test.
func Open(t testing.TB, dialect string) *gorm.DB {
	t.Helper()
	db, err := open(t, dialect)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", dialect, err)
	}
	return db
}

// OpenDSN is like Open but also returns the dialect's DSN for the fresh
// database, so a test can open a second, independent connection pool to the
// same database (standing in for a second replica).
func OpenDSN(t testing.TB, dialect string) (string, *gorm.DB) {
	t.Helper()
	dsn, err := freshDSN(t, dialect)
	if err != nil {
		t.Fatalf("dbtest: %s: %v", dialect, err)
	}
	db, err := Connect(dialect, dsn)
	if err != nil {
		t.Fatalf("dbtest: connect %s: %v", dialect, err)
	}
	t.Cleanup(func() { closeDB(db) })
	return dsn, db
}

// Connect opens a GORM connection for dialect and dsn with a quiet logger.
func Connect(dialect, dsn string) (*gorm.DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard}
	switch dialect {
	case SQLite:
		db, err := gorm.Open(sqlite.Open(dsn), cfg)
		if err != nil {
			return nil, err
		}
		return db, nil
	case MySQL:
		return gorm.Open(mysql.Open(dsn), cfg)
	case Postgres:
		return gorm.Open(postgres.Open(dsn), cfg)
	}
	return nil, fmt.Errorf("unknown dialect %q", dialect)
}

func open(t testing.TB, dialect string) (*gorm.DB, error) {
	dsn, err := freshDSN(t, dialect)
	if err != nil {
		return nil, err
	}
	db, err := Connect(dialect, dsn)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { closeDB(db) })
	return db, nil
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}

func randName() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "kmsgo_t_" + hex.EncodeToString(b[:])
}

// freshDSN creates a private database/schema and registers its removal.
func freshDSN(t testing.TB, dialect string) (string, error) {
	switch dialect {
	case SQLite:
		// WAL + busy timeout so concurrent writers in one test wait instead of failing.
		p := filepath.Join(t.TempDir(), "test.db")
		return "file:" + p + "?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on", nil
	case MySQL:
		admin := os.Getenv(EnvMySQL)
		if admin == "" {
			return "", fmt.Errorf("%s not set", EnvMySQL)
		}
		adb, err := Connect(MySQL, admin)
		if err != nil {
			return "", err
		}
		defer closeDB(adb)
		name := randName()
		if err := adb.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").Error; err != nil {
			return "", err
		}
		t.Cleanup(func() {
			if db, err := Connect(MySQL, admin); err == nil {
				db.Exec("DROP DATABASE IF EXISTS " + name)
				closeDB(db)
			}
		})
		return replaceMySQLDB(admin, name), nil
	case Postgres:
		admin := os.Getenv(EnvPostgres)
		if admin == "" {
			return "", fmt.Errorf("%s not set", EnvPostgres)
		}
		adb, err := Connect(Postgres, admin)
		if err != nil {
			return "", err
		}
		defer closeDB(adb)
		name := randName()
		if err := adb.Exec("CREATE SCHEMA " + name).Error; err != nil {
			return "", err
		}
		t.Cleanup(func() {
			if db, err := Connect(Postgres, admin); err == nil {
				db.Exec("DROP SCHEMA IF EXISTS " + name + " CASCADE")
				closeDB(db)
			}
		})
		return withSearchPath(admin, name)
	}
	return "", fmt.Errorf("unknown dialect %q", dialect)
}

// replaceMySQLDB swaps the database name in a go-sql-driver DSN
// (user:pass@tcp(host:port)/dbname?params).
func replaceMySQLDB(dsn, name string) string {
	slash := strings.LastIndex(dsn, "/")
	if slash < 0 {
		return dsn + "/" + name
	}
	rest := dsn[slash+1:]
	params := ""
	if q := strings.Index(rest, "?"); q >= 0 {
		params = rest[q:]
	}
	if params == "" {
		params = "?parseTime=true"
	} else if !strings.Contains(params, "parseTime") {
		params += "&parseTime=true"
	}
	return dsn[:slash+1] + name + params
}

// withSearchPath adds search_path=name to a URL-form PostgreSQL DSN.
func withSearchPath(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("%s must be a URL (postgres://user@host:port/db?sslmode=disable)", EnvPostgres)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
