package kms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

// TestTwoDeploymentsShareToken runs two deployments (two databases, two
// Services) on one SoftHSM2 token. Deployment B starts with an empty
// database; its orphan cleanup, run well past the grace period, must leave
// every object of deployment A alone (before the fix it destroyed every
// kmsgo-cmk-* object its database did not reference). B's own failed
// creation, recorded by an intent row, is still cleaned up.
func TestTwoDeploymentsShareToken(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			cfg := softhsmtest.New(t)
			bA, err := p11.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = bA.Close() })
			clock := newClock()
			dbA := migrated(t, dbtest.Open(t, d))
			svcA, err := kms.New(kms.Config{DB: dbA, HSM: bA, Clock: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer svcA.Close()
			if err := bA.BindDeployment(ctx, svcA.DeploymentID(), false); err != nil {
				t.Fatal(err)
			}
			mdA, err := svcA.CreateKey(ctx, kms.CreateKeyInput{ProtectionLevel: kms.ProtectionHSM})
			if err != nil {
				t.Fatal(err)
			}
			blob, err := svcA.Encrypt(ctx, kms.EncryptInput{KeyID: mdA.KeyID, Plaintext: []byte("A's data")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svcA.RotateKey(ctx, mdA.KeyID); err != nil {
				t.Fatal(err)
			}
			objsA := listObjects(t, bA)
			if len(objsA) != 2 {
				t.Fatalf("A's objects: %v", objsA)
			}

			// Deployment B: its own database and root key id on the same token.
			cfgB := cfg
			cfgB.RootKeyID = "kmsgo-root-b"
			bB, err := p11.Open(cfgB)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = bB.Close() })
			fb := &faultyBackend{Backend: bB}
			dbB := migrated(t, dbtest.Open(t, d))
			svcB, err := kms.New(kms.Config{DB: dbB, HSM: fb, Clock: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer svcB.Close()
			if svcB.DeploymentID() == svcA.DeploymentID() || len(svcB.DeploymentID()) != store.DeploymentIDLen {
				t.Fatalf("deployment ids %q and %q", svcA.DeploymentID(), svcB.DeploymentID())
			}
			if err := bB.BindDeployment(ctx, svcB.DeploymentID(), false); err != nil {
				t.Fatal(err)
			}
			// B leaves one orphan of its own: the HSM created the object
			// but the reply was lost.
			fb.failAfterCreate.Store(true)
			if _, err := svcB.CreateKey(ctx, kms.CreateKeyInput{ProtectionLevel: kms.ProtectionHSM}); !errors.Is(err, hsm.ErrUnavailable) {
				t.Fatalf("CreateKey with the reply lost: %v", err)
			}
			fb.failAfterCreate.Store(false)
			if got := listObjects(t, bA); len(got) != 3 {
				t.Fatalf("objects after B's failed create: %v", got)
			}

			clock.Advance(kms.DefaultOrphanGrace + 24*time.Hour)
			n, err := svcB.CleanupOrphans(ctx)
			if err != nil || n != 1 {
				t.Fatalf("B's cleanup = %d, %v; want its one orphan", n, err)
			}
			if got := listObjects(t, bA); !equal(got, objsA) {
				t.Fatalf("objects after B's cleanup: %v, want A's %v", got, objsA)
			}
			if n, err := svcA.CleanupOrphans(ctx); err != nil || n != 0 {
				t.Fatalf("A's cleanup = %d, %v; want nothing to do", n, err)
			}
			if got := listObjects(t, bA); !equal(got, objsA) {
				t.Fatalf("objects after A's cleanup: %v, want %v", got, objsA)
			}
			if out, err := svcA.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob}); err != nil || string(out.Plaintext) != "A's data" {
				t.Fatalf("A decrypts after both cleanups: %v", err)
			}
			for _, id := range objsA {
				if !endsWith(id, "."+svcA.DeploymentID()) {
					t.Fatalf("object %q does not name deployment %s", id, svcA.DeploymentID())
				}
			}
		})
	}
}

// TestForeignRootKeyRefused: a deployment whose database is new, pointed
// at a token whose root key another deployment recorded as its own, is
// refused unless told otherwise.
func TestForeignRootKeyRefused(t *testing.T) {
	ctx := context.Background()
	cfg := softhsmtest.New(t)
	a := cfg
	a.Deployment = "aaaaaaaaaaaaaaaa"
	bA, err := p11.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer bA.Close()
	b := cfg
	b.Deployment = "bbbbbbbbbbbbbbbb"
	if bB, err := p11.Open(b); !errors.Is(err, hsm.ErrForeignRootKey) {
		if bB != nil {
			bB.Close()
		}
		t.Fatalf("open as another deployment: %v, want ErrForeignRootKey", err)
	}
	b.AllowForeignRootKey = true
	bB, err := p11.Open(b)
	if err != nil {
		t.Fatalf("open with the override: %v", err)
	}
	bB.Close()
	// The same deployment again (a second replica, a restart) is fine.
	if err := bA.BindDeployment(ctx, "aaaaaaaaaaaaaaaa", false); err != nil {
		t.Fatal(err)
	}
	// Its own root key id gives B its own root key and owner marker.
	b.AllowForeignRootKey = false
	b.RootKeyID = "kmsgo-root-b"
	bB, err = p11.Open(b)
	if err != nil {
		t.Fatalf("open with a root key of its own: %v", err)
	}
	bB.Close()
}

func listObjects(t *testing.T, b hsm.Backend) []string {
	t.Helper()
	ids, err := b.ListKeys(context.Background(), kms.HSMObjectPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func endsWith(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}
