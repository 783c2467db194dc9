package kms_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// TestAliasLengthBoundary: the longest valid alias name fits the
// kms_aliases.name column on every database (MariaDB failed with 500 for
// names of 192-256 bytes when validation allowed 256), and one byte more is
// a validation error, not a database error.
func TestAliasLengthBoundary(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			e := newEnv(t, dbtest.Open(t, d), levels[0])
			longest := kms.AliasPrefix + strings.Repeat("a", kms.MaxAliasNameLen-len(kms.AliasPrefix))
			if len(longest) != 191 {
				t.Fatalf("longest alias is %d bytes, the column holds 191", len(longest))
			}
			md := e.createKey(kms.CreateKeyInput{Alias: longest})
			if got, err := e.svc.DescribeKey(e.ctx, longest); err != nil || got.KeyID != md.KeyID {
				t.Fatalf("describe by the longest alias: %v", err)
			}
			other := kms.AliasPrefix + strings.Repeat("b", kms.MaxAliasNameLen-len(kms.AliasPrefix))
			if _, err := e.svc.CreateAlias(e.ctx, kms.CreateAliasInput{AliasName: other, KeyID: md.KeyID}); err != nil {
				t.Fatalf("CreateAlias at the limit: %v", err)
			}
			for _, name := range []string{longest + "x", kms.AliasPrefix + strings.Repeat("c", 250)} {
				_, err := e.svc.CreateAlias(e.ctx, kms.CreateAliasInput{AliasName: name, KeyID: md.KeyID})
				if !errors.Is(err, kms.ErrValidation) {
					t.Fatalf("alias of %d bytes: %v, want ErrValidation", len(name), err)
				}
				if _, err := e.svc.CreateKey(e.ctx, kms.CreateKeyInput{Alias: name}); !errors.Is(err, kms.ErrValidation) {
					t.Fatalf("CreateKey with an alias of %d bytes: %v, want ErrValidation", len(name), err)
				}
			}
		})
	}
}
