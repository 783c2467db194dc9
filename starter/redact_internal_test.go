package starter

import (
	"errors"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct{ dsn, pw string }{
		{"app:Pa55word@tcp(db:3306)/app?parseTime=true", "Pa55word"},
		{"postgres://app:Pa55word@db:5432/app?sslmode=disable", "Pa55word"},
		{"host=db user=app password=Pa55word dbname=app", "Pa55word"},
		{"host=db user=app password='Pa 55word' dbname=app", "Pa 55word"},
		{"file:app.db?_busy_timeout=10000", ""},
	}
	for _, tc := range tests {
		if got := dsnPassword(tc.dsn); got != tc.pw {
			t.Errorf("dsnPassword(%q) = %q, want %q", tc.dsn, got, tc.pw)
		}
		if tc.pw == "" {
			continue
		}
		err := errors.New("cannot connect with " + tc.dsn + " (password " + tc.pw + ")")
		if s := redact(err, tc.dsn); strings.Contains(s, tc.pw) {
			t.Errorf("redact left the password: %s", s)
		}
	}
}

// FuzzRedact: never panics, the DSN never survives whole, and a password
// it finds is gone from the text.
func FuzzRedact(f *testing.F) {
	f.Add("app:Pa55word@tcp(db:3306)/app", "Pa55word")
	f.Add("postgres://u:p%40ss@h/d", "x")
	f.Add("password='a b' host=x", "zz")
	f.Add("@@::", "")
	f.Fuzz(func(t *testing.T, dsn, msg string) {
		s := redact(errors.New(msg+dsn+msg), dsn)
		markers := "[dsn][redacted]"
		if len(dsn) >= 8 && strings.Contains(s, dsn) && !strings.Contains(msg, dsn) && !strings.Contains(markers, dsn) {
			t.Fatalf("DSN left in %q", s)
		}
		if pw := dsnPassword(dsn); len(pw) >= 3 && !strings.Contains(msg, pw) && !strings.Contains(markers, pw) && strings.Contains(s, pw) {
			t.Fatalf("password %q left in %q", pw, s)
		}
	})
}
