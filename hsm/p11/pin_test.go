package p11_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kmsgo/kmsgo/hsm/p11"
)

func TestPINFromEnvOrFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("pin", "1234-abcd\n", 0o600)
	crlf := write("pin-crlf", "  s3cret \r\n", 0o400)
	open := write("pin-open", "1234\n", 0o644)
	empty := write("pin-empty", "\n", 0o600)
	big := write("pin-big", string(make([]byte, 5000)), 0o600)
	const env = "KMSGO_TEST_PIN"
	tests := []struct {
		name     string
		envValue string
		envName  string
		file     string
		want     string
		wantErr  error
	}{
		{"env wins over file", "from-env", env, good, "from-env", nil},
		{"empty env falls back to file", "", env, good, "1234-abcd", nil},
		{"blanks and CRLF trimmed", "", env, crlf, "s3cret", nil},
		{"no env name", "ignored", "", good, "1234-abcd", nil},
		{"group/world readable file refused", "", env, open, "", p11.ErrPINFileMode},
		{"empty file", "", env, empty, "", p11.ErrNoPIN},
		{"oversized file", "", env, big, "", p11.ErrNoPIN},
		{"missing file", "", env, filepath.Join(dir, "nope"), "", p11.ErrNoPIN},
		{"directory", "", env, dir, "", p11.ErrNoPIN},
		{"nothing configured", "", env, "", "", p11.ErrNoPIN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(env, tc.envValue)
			got, err := p11.PINFromEnvOrFile(tc.envName, tc.file)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("= %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
