// Package sqlite registers the "sqlite" database driver with the starter
// (github.com/mattn/go-sqlite3 through gorm.io/driver/sqlite; needs cgo).
// Import it for its side effect:
//
//	import _ "github.com/kmsgo/kmsgo/starter/sqlite"
//
// database.dsn is a go-sqlite3 DSN, e.g.
// "file:app.db?_journal_mode=WAL&_busy_timeout=10000". A private in-memory
// database (":memory:") cannot carry ormplugin's key rows across
// connections and is refused when the plugin is enabled.
package sqlite

import (
	"database/sql"
	"fmt"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/starter"
)

func init() {
	starter.RegisterDriver("sqlite", starter.Driver{
		Open: func(dsn string) (*sql.DB, error) { return sql.Open(sqlite.DriverName, dsn) },
		Dialector: func(dsn string, conn gorm.ConnPool) gorm.Dialector {
			return &sqlite.Dialector{DriverName: sqlite.DriverName, DSN: dsn, Conn: conn}
		},
		SetPassword: func(string, string) (string, error) {
			return "", fmt.Errorf("sqlite has no password: unset database.password_path")
		},
	})
}
