package mysql

import (
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
)

func TestSetPassword(t *testing.T) {
	for _, tc := range []struct{ dsn, pw string }{
		{"app@tcp(db:3306)/app?parseTime=true", "s3cret"},
		{"app:old@tcp(db:3306)/app", "p@ss:w/rd?&=()"},
	} {
		out, err := SetPassword(tc.dsn, tc.pw)
		if err != nil {
			t.Fatalf("%s: %v", tc.dsn, err)
		}
		c, err := gomysql.ParseDSN(out)
		if err != nil || c.Passwd != tc.pw || c.User != "app" || c.DBName != "app" || c.Addr != "db:3306" {
			t.Fatalf("%s -> %+v, %v", tc.dsn, c, err)
		}
	}
	if _, err := SetPassword("not a dsn", "x"); err == nil {
		t.Fatal("bad DSN accepted")
	}
}
