// Package dbtest gives tests a fresh, private GORM database on every dialect
// kmsgo supports: SQLite always, MariaDB/MySQL when KMS_TEST_MYSQL_DSN is set
// and PostgreSQL when KMS_TEST_POSTGRES_DSN is set.
//
// Each Open call creates its own database (MySQL) or schema (PostgreSQL) with
// a random name and drops it when the test ends, so tests and packages can run
// in parallel against one server. When KMS_TEST_REQUIRE_DBS=1 (CI sets it), a
// missing DSN fails the test instead of narrowing the dialect list, so CI can
// never go green by silently testing SQLite only.
package dbtest
