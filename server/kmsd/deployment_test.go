package kmsd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
	"github.com/kmsgo/kmsgo/server/kmsd"
)

// TestStartRefusesForeignRootKey starts deployment A on a SoftHSM2 token,
// then deployment B (its own, empty database) on the same token and root
// key id: B must refuse to start unless hsm.allow_foreign_root_key is set,
// and start normally with a root key id of its own. A restart of A (same
// database) is accepted.
func TestStartRefusesForeignRootKey(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, dbA *gorm.DB) {
		tok := softhsmtest.New(t)
		dir := t.TempDir()
		pinFile := filepath.Join(dir, "pin")
		if err := os.WriteFile(pinFile, []byte(tok.PIN), 0o600); err != nil {
			t.Fatal(err)
		}
		mk := func(name string) config.Config {
			c := config.Defaults()
			c.DataDir = filepath.Join(dir, name)
			c.Jobs.Enabled = false
			c.HSM = config.HSMConfig{Backend: "pkcs11", Module: tok.ModulePath, TokenLabel: tok.TokenLabel,
				PINEnv: "KMSD_TEST_UNSET_PIN_VAR", PINFile: pinFile, CreateRootKey: true, PoolSize: 2}
			return c
		}
		ctx := context.Background()
		open := func(c config.Config, db *gorm.DB) (*kmsd.App, error) {
			return kmsd.Open(ctx, c, kmsd.Deps{DB: db}, nil)
		}
		a, err := open(mk("a"), dbA)
		if err != nil {
			t.Fatal(err)
		}
		depA := kmsdinternal.Of(a).KMS.DeploymentID()
		a.Close()
		a, err = open(mk("a"), dbA) // restart: same deployment
		if err != nil {
			t.Fatalf("restart of A: %v", err)
		}
		defer a.Close()
		if kmsdinternal.Of(a).KMS.DeploymentID() != depA {
			t.Fatalf("deployment id changed across a restart: %s -> %s", depA, kmsdinternal.Of(a).KMS.DeploymentID())
		}

		dbB := dbtest.Open(t, dbA.Dialector.Name())
		if b, err := open(mk("b"), dbB); !errors.Is(err, hsm.ErrForeignRootKey) {
			if b != nil {
				b.Close()
			}
			t.Fatalf("B on A's root key: %v, want ErrForeignRootKey", err)
		}
		c := mk("b")
		c.HSM.AllowForeignRootKey = true
		b, err := open(c, dbB)
		if err != nil {
			t.Fatalf("B with allow_foreign_root_key: %v", err)
		}
		b.Close()
		c = mk("b2")
		c.HSM.RootKeyID = "kmsgo-root-b2"
		b, err = open(c, dbtest.Open(t, dbA.Dialector.Name()))
		if err != nil {
			t.Fatalf("B2 with its own root key id: %v", err)
		}
		b.Close()
	})
}

// TestConcurrentStartsMakeOneRootKey starts three replicas at once on one
// database and an empty token, all with create_root_key: they take the
// root-key lock in the database in turn, so the token ends up with exactly
// one root key (a duplicate would make every wrap fail with
// ErrDuplicateKey) and one owner.
func TestConcurrentStartsMakeOneRootKey(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		tok := softhsmtest.New(t)
		dir := t.TempDir()
		pinFile := filepath.Join(dir, "pin")
		if err := os.WriteFile(pinFile, []byte(tok.PIN), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		apps := make([]*kmsd.App, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range apps {
			wg.Go(func() {
				c := config.Defaults()
				c.DataDir = filepath.Join(dir, fmt.Sprint(i))
				c.ReplicaID = fmt.Sprintf("replica-%d", i)
				c.Jobs.Enabled = false
				c.HSM = config.HSMConfig{Backend: "pkcs11", Module: tok.ModulePath, TokenLabel: tok.TokenLabel,
					PINEnv: "KMSD_TEST_UNSET_PIN_VAR", PINFile: pinFile, CreateRootKey: true, PoolSize: 2}
				apps[i], errs[i] = kmsd.Open(ctx, c, kmsd.Deps{DB: db}, nil)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %d: %v", i, err)
			}
			defer apps[i].Close()
		}
		for i, a := range apps {
			if _, err := a.HSM.WrapKey(ctx, []byte("0123456789abcdef"), []byte("aad")); err != nil {
				t.Fatalf("replica %d: wrap under the root key: %v", i, err)
			}
		}
		if kmsdinternal.Of(apps[0]).KMS.DeploymentID() != kmsdinternal.Of(apps[2]).KMS.DeploymentID() {
			t.Fatal("replicas of one database disagree on the deployment id")
		}
	})
}
