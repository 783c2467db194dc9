// Package postgres registers the "postgres" database driver (pgx through
// gorm.io/driver/postgres) with the starter. Import it for its side effect:
//
//	import _ "github.com/kmsgo/kmsgo/starter/postgres"
//
// database.dsn is a URL ("postgres://app@db:5432/app?sslmode=verify-full")
// or a key=value DSN ("host=db user=app dbname=app"); database.password_path
// sets its password.
package postgres

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/starter"
)

func init() {
	starter.RegisterDriver("postgres", starter.Driver{
		Open: func(dsn string) (*sql.DB, error) {
			cfg, err := pgx.ParseConfig(dsn)
			if err != nil {
				// pgx's message quotes the DSN: keep it out.
				return nil, fmt.Errorf("invalid postgres DSN")
			}
			return stdlib.OpenDB(*cfg), nil
		},
		Dialector: func(dsn string, conn gorm.ConnPool) gorm.Dialector {
			return postgres.New(postgres.Config{DSN: dsn, Conn: conn})
		},
		SetPassword: SetPassword,
	})
}

// SetPassword returns dsn with its password replaced.
func SetPassword(dsn, password string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("invalid postgres DSN")
		}
		u.User = url.UserPassword(u.User.Username(), password)
		return u.String(), nil
	}
	// key=value form: a later password= wins in libpq and pgx.
	q := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
	return strings.TrimSpace(dsn) + " password='" + q + "'", nil
}
