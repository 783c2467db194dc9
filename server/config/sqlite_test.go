package config

import (
	"testing"
)

func TestSQLiteDSNSynchronous(t *testing.T) {
	for _, tc := range []struct {
		name, dsn, mode, want string
	}{
		{"default is full", "file:/d/kms.db?_journal_mode=WAL", "", "file:/d/kms.db?_journal_mode=WAL&_synchronous=FULL"},
		{"full", "file:/d/kms.db?_journal_mode=WAL", "full", "file:/d/kms.db?_journal_mode=WAL&_synchronous=FULL"},
		{"normal", "file:/d/kms.db?_journal_mode=WAL", "normal", "file:/d/kms.db?_journal_mode=WAL&_synchronous=NORMAL"},
		{"no query", "/d/kms.db", "normal", "/d/kms.db?_synchronous=NORMAL"},
		{"dsn wins", "file:/d/kms.db?_synchronous=OFF", "full", "file:/d/kms.db?_synchronous=OFF"},
		{"dsn wins short form", "file:/d/kms.db?_busy_timeout=1&_sync=EXTRA", "normal", "file:/d/kms.db?_busy_timeout=1&_sync=EXTRA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SQLiteDSN(tc.dsn, tc.mode); got != tc.want {
				t.Fatalf("sqliteDSN(%q, %q) = %q, want %q", tc.dsn, tc.mode, got, tc.want)
			}
		})
	}
}

func TestSQLiteSynchronousValidation(t *testing.T) {
	for _, tc := range []struct {
		mode string
		ok   bool
	}{{"", true}, {"full", true}, {"normal", true}, {"off", false}, {"FULL", false}, {"extra", false}} {
		c := Defaults()
		c.Database.SQLiteSynchronous = tc.mode
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("sqlite_synchronous %q: Validate() = %v, want ok=%v", tc.mode, err, tc.ok)
		}
	}
}
