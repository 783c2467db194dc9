package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestSetPassword(t *testing.T) {
	for _, tc := range []struct{ dsn, pw string }{
		{"postgres://app@db:5432/app?sslmode=disable", "s3cret"},
		{"postgresql://app:old@db/app", "p@ss:w/rd?&="},
		{"host=db user=app dbname=app sslmode=disable", "it's a \\ secret"},
		{"host=db user=app password=old dbname=app", "new one"},
	} {
		out, err := SetPassword(tc.dsn, tc.pw)
		if err != nil {
			t.Fatalf("%s: %v", tc.dsn, err)
		}
		cfg, err := pgx.ParseConfig(out)
		if err != nil {
			t.Fatalf("result of %s does not parse", tc.dsn)
		}
		if cfg.Password != tc.pw || cfg.User != "app" || cfg.Database != "app" {
			t.Fatalf("%s: user %q db %q password %q", tc.dsn, cfg.User, cfg.Database, cfg.Password)
		}
	}
}
