// Package migrate applies explicit, versioned schema migrations to a GORM
// database and records which ones ran, so every kmsd replica and every
// dialect (SQLite, MySQL/MariaDB, PostgreSQL) ends up with the same schema.
//
// Each package that owns tables exports its steps (for example
// store.Migrations()); kmsd applies them all at start. A step's ID never
// changes once released; new schema changes are new steps.
package migrate
