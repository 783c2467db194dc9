// Package mysql registers the "mysql" database driver (MySQL and MariaDB,
// github.com/go-sql-driver/mysql through gorm.io/driver/mysql) with the
// starter. Import it for its side effect:
//
//	import _ "github.com/kmsgo/kmsgo/starter/mysql"
//
// database.dsn is a go-sql-driver DSN, e.g.
// "app@tcp(db:3306)/app?parseTime=true"; database.password_path sets its
// password.
package mysql

import (
	"database/sql"
	"fmt"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/starter"
)

func init() {
	starter.RegisterDriver("mysql", starter.Driver{
		Open: func(dsn string) (*sql.DB, error) {
			if _, err := gomysql.ParseDSN(dsn); err != nil {
				return nil, fmt.Errorf("invalid mysql DSN")
			}
			return sql.Open("mysql", dsn)
		},
		Dialector: func(dsn string, conn gorm.ConnPool) gorm.Dialector {
			return mysql.New(mysql.Config{DSN: dsn, Conn: conn})
		},
		SetPassword: SetPassword,
	})
}

// SetPassword returns dsn with its password replaced.
func SetPassword(dsn, password string) (string, error) {
	c, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("invalid mysql DSN")
	}
	c.Passwd = password
	return c.FormatDSN(), nil
}
