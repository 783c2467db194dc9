package kmsd_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/internal/awsapi"
)

// TestAWSAccountID: aws.account_id defaults to awsapi.DefaultAccountID (as
// the example file shows), is set from YAML or KMSD_AWS_ACCOUNT_ID, and must
// be 12 digits.
func TestAWSAccountID(t *testing.T) {
	ex, err := config.Load("../../cmd/kmsd/kmsd.example.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if ex.AWS != config.Defaults().AWS || ex.AWS.AccountID != awsapi.DefaultAccountID {
		t.Fatalf("example aws section %+v, defaults %+v", ex.AWS, config.Defaults().AWS)
	}
	file := filepath.Join(t.TempDir(), "kmsd.yaml")
	if err := os.WriteFile(file, []byte("aws:\n  account_id: \"111122223333\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file, env, want string
		bad                   bool
	}{
		{name: "default", want: awsapi.DefaultAccountID},
		{name: "yaml", file: file, want: "111122223333"},
		{name: "env wins", file: file, env: "444455556666", want: "444455556666"},
		{name: "not digits", env: "12345678901x", bad: true},
		{name: "too short", env: "1234", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load(tc.file, func(k string) string {
				if k == "KMSD_AWS_ACCOUNT_ID" {
					return tc.env
				}
				return ""
			})
			if tc.bad {
				if !errors.Is(err, config.ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil || c.AWS.AccountID != tc.want {
				t.Fatalf("account id %q, %v; want %q", c.AWS.AccountID, err, tc.want)
			}
		})
	}
}
