package kms_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"gorm.io/gorm"
)

func TestRotateKey(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		md := e.createKey(kms.CreateKeyInput{})
		old := e.encrypt(md.KeyID, []byte("v1 data"), nil)
		got, err := e.svc.RotateKey(e.ctx, md.KeyID)
		if err != nil || got.PrimaryVersion != 2 {
			t.Fatalf("rotate: %+v, %v", got, err)
		}
		nw := e.encrypt(md.KeyID, []byte("v2 data"), nil)
		if nw.KeyVersion != 2 {
			t.Fatalf("encrypt after rotate used version %d", nw.KeyVersion)
		}
		e.mustDecrypt(old.CiphertextBlob, nil, []byte("v1 data"))
		e.mustDecrypt(nw.CiphertextBlob, nil, []byte("v2 data"))
		vs, err := e.svc.ListKeyVersions(e.ctx, md.KeyID)
		if err != nil || len(vs) != 2 || vs[0].Primary || !vs[1].Primary || vs[1].Version != 2 || vs[0].State != kms.VersionEnabled {
			t.Fatalf("versions = %+v, %v", vs, err)
		}
		e.checkVersionsHaveMaterial(md.KeyID)
	})
}

// failStatements makes every statement of kind ("create" or "update") on
// table fail while armed: a real database with a fault injected through a
// GORM callback.
func failStatements(t *testing.T, db *gorm.DB, kind, table string) (setArmed func(bool)) {
	t.Helper()
	var mu sync.Mutex
	armed := false
	fail := func(tx *gorm.DB) {
		mu.Lock()
		defer mu.Unlock()
		if armed && tx.Statement.Table == table {
			_ = tx.AddError(errors.New("injected store failure"))
		}
	}
	name := "kmstest:fail_" + kind + "_" + table
	var err error
	switch kind {
	case "create":
		err = db.Callback().Create().Before("gorm:create").Register(name, fail)
		t.Cleanup(func() { _ = db.Callback().Create().Remove(name) })
	case "update":
		err = db.Callback().Update().Before("gorm:update").Register(name, fail)
		t.Cleanup(func() { _ = db.Callback().Update().Remove(name) })
	default:
		t.Fatalf("unknown statement kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return func(v bool) { mu.Lock(); armed = v; mu.Unlock() }
}

// failVersionInserts makes every INSERT into kms_key_versions fail while armed.
func failVersionInserts(t *testing.T, db *gorm.DB) (setArmed func(bool)) {
	return failStatements(t, db, "create", "kms_key_versions")
}

// TestRotateStoreFailure fails the database at two points of the rotation's
// transaction: the version insert, and the key's compare-and-swap update
// that follows it (so the version row must be rolled back). Afterwards the
// key works on version 1, no version exists without material, the new HSM
// object is gone, and a retry succeeds.
func TestRotateStoreFailure(t *testing.T) {
	points := []struct{ kind, table string }{
		{"create", "kms_key_versions"},
		{"update", "kms_keys"},
	}
	forEach(t, func(t *testing.T, e *env) {
		md := e.createKey(kms.CreateKeyInput{})
		blob := e.encrypt(md.KeyID, []byte("data"), nil).CiphertextBlob
		for i, pt := range points {
			setArmed := failStatements(t, e.db, pt.kind, pt.table)
			setArmed(true)
			if _, err := e.svc.RotateKey(e.ctx, md.KeyID); err == nil {
				t.Fatalf("%s %s: rotate succeeded despite the store failure", pt.kind, pt.table)
			}
			setArmed(false)
			want := i + 1 // the previous point's retry added a version
			if out := e.encrypt(md.KeyID, []byte("x"), nil); out.KeyVersion != want {
				t.Fatalf("%s %s: encrypt after failed rotate used version %d, want %d", pt.kind, pt.table, out.KeyVersion, want)
			}
			e.mustDecrypt(blob, nil, []byte("data"))
			if vs := e.checkVersionsHaveMaterial(md.KeyID); len(vs) != want {
				t.Fatalf("%s %s: %d versions after failed rotate, want %d", pt.kind, pt.table, len(vs), want)
			}
			if got, _ := e.svc.DescribeKey(e.ctx, md.KeyID); got.PrimaryVersion != want {
				t.Fatalf("%s %s: primary = %d", pt.kind, pt.table, got.PrimaryVersion)
			}
			if objs := e.hsmObjects(md.KeyID); e.pl == kms.ProtectionHSM && len(objs) != want {
				t.Fatalf("%s %s: HSM objects after failed rotate: %v", pt.kind, pt.table, objs)
			}
			got, err := e.svc.RotateKey(e.ctx, md.KeyID)
			if err != nil || got.PrimaryVersion != want+1 {
				t.Fatalf("%s %s: retry: %+v, %v", pt.kind, pt.table, got, err)
			}
			e.checkVersionsHaveMaterial(md.KeyID)
			e.mustDecrypt(blob, nil, []byte("data"))
		}
	})
}

// TestRotateHSMFailure fails the HSM at two points of a rotation: before it
// creates anything, and after it created the new object (or drew and wrapped
// the new material) but lost the reply. Afterwards the key still works on
// its old primary, no version exists without material, a retry succeeds,
// and an object left in the HSM is found by its id and cleaned up.
func TestRotateHSMFailure(t *testing.T) {
	cases := []struct {
		name string
		arm  func(f *faultyBackend, on bool)
	}{
		{"before create", func(f *faultyBackend, on bool) { f.failCreate.Store(on) }},
		{"after create, reply lost", func(f *faultyBackend, on bool) { f.failAfterCreate.Store(on) }},
	}
	// A private token per HSM run: CleanupOrphans looks at every object.
	lvls := []level{levels[0], {"HSM", kms.ProtectionHSM, privateSoftHSM}}
	for _, d := range dbtest.Dialects(t) {
		for _, lv := range lvls {
			for _, c := range cases {
				t.Run(d+"/"+lv.name+"/"+c.name, func(t *testing.T) {
					e := newEnv(t, dbtest.Open(t, d), lv)
					md := e.createKey(kms.CreateKeyInput{})
					blob := e.encrypt(md.KeyID, []byte("data"), nil).CiphertextBlob
					c.arm(e.hsm, true)
					if _, err := e.svc.RotateKey(e.ctx, md.KeyID); !isErr(err, hsm.ErrUnavailable) {
						t.Fatalf("rotate with the HSM failing: err = %v, want hsm.ErrUnavailable", err)
					}
					c.arm(e.hsm, false)
					e.mustDecrypt(blob, nil, []byte("data"))
					if vs := e.checkVersionsHaveMaterial(md.KeyID); len(vs) != 1 {
						t.Fatalf("%d versions after the failed rotation", len(vs))
					}
					if out := e.encrypt(md.KeyID, []byte("x"), nil); out.KeyVersion != 1 {
						t.Fatal("primary moved")
					}
					if got, _ := e.svc.DescribeKey(e.ctx, md.KeyID); got.PrimaryVersion != 1 {
						t.Fatalf("primary = %d after the failed rotation", got.PrimaryVersion)
					}
					orphans := 0
					if lv.pl == kms.ProtectionHSM && c.name != "before create" {
						orphans = 1
					}
					if objs := e.hsmObjects(md.KeyID); lv.pl == kms.ProtectionHSM && len(objs) != 1+orphans {
						t.Fatalf("HSM objects after the failed rotation: %v, want %d", objs, 1+orphans)
					}
					got, err := e.svc.RotateKey(e.ctx, md.KeyID)
					if err != nil || got.PrimaryVersion != 2 {
						t.Fatalf("retry: %+v, %v", got, err)
					}
					e.checkVersionsHaveMaterial(md.KeyID)
					e.mustDecrypt(blob, nil, []byte("data"))
					e.clock.Advance(kms.DefaultOrphanGrace + time.Minute)
					if n, err := e.svc.CleanupOrphans(e.ctx); err != nil || n != orphans {
						t.Fatalf("CleanupOrphans = %d, %v; want %d", n, err, orphans)
					}
					if objs := e.hsmObjects(md.KeyID); lv.pl == kms.ProtectionHSM && len(objs) != 2 {
						t.Fatalf("HSM objects after cleanup: %v, want the two live versions", objs)
					}
					e.checkVersionsHaveMaterial(md.KeyID)
					e.mustDecrypt(blob, nil, []byte("data"))
					if out := e.encrypt(md.KeyID, []byte("x"), nil); out.KeyVersion != 2 {
						t.Fatalf("encrypt after retry used version %d", out.KeyVersion)
					}
				})
			}
		}
	}
}

// TestOrphanCleanup leaves an HSM object behind (store fails, then the HSM
// fails to destroy the new object) and checks CleanupOrphans finds it by
// its id and removes only it, after the grace period.
func TestOrphanCleanup(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			e := newEnv(t, dbtest.Open(t, d), level{"HSM", kms.ProtectionHSM, privateSoftHSM})
			md := e.createKey(kms.CreateKeyInput{})
			blob := e.encrypt(md.KeyID, []byte("data"), nil).CiphertextBlob
			setArmed := failVersionInserts(t, e.db)
			setArmed(true)
			e.hsm.failDestroy.Store(true)
			if _, err := e.svc.RotateKey(e.ctx, md.KeyID); err == nil {
				t.Fatal("rotate succeeded")
			}
			setArmed(false)
			e.hsm.failDestroy.Store(false)
			if objs := e.hsmObjects(md.KeyID); len(objs) != 2 {
				t.Fatalf("want the live object and one orphan, got %v", objs)
			}
			if n, err := e.svc.CleanupOrphans(e.ctx); err != nil || n != 0 {
				t.Fatalf("cleanup inside the grace period: %d, %v", n, err)
			}
			e.clock.Advance(kms.DefaultOrphanGrace + time.Minute)
			if n, err := e.svc.CleanupOrphans(e.ctx); err != nil || n != 1 {
				t.Fatalf("cleanup: %d, %v", n, err)
			}
			e.checkVersionsHaveMaterial(md.KeyID)
			if objs := e.hsmObjects(md.KeyID); len(objs) != 1 {
				t.Fatalf("objects after cleanup: %v", objs)
			}
			e.mustDecrypt(blob, nil, []byte("data"))
			if got, err := e.svc.RotateKey(e.ctx, md.KeyID); err != nil || got.PrimaryVersion != 2 {
				t.Fatalf("retry: %v", err)
			}
		})
	}
}

// TestConcurrentRotate has two replicas (two Services with their own
// connection pools on one database) rotate one key at the same moment.
func TestConcurrentRotate(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			for _, lv := range levels {
				t.Run(lv.name, func(t *testing.T) {
					dsn, db := dbtest.OpenDSN(t, d)
					e := newEnv(t, db, lv)
					db2, err := dbtest.Connect(d, dsn)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() {
						if s, err := db2.DB(); err == nil {
							_ = s.Close()
						}
					})
					replicas := []*kms.Service{e.svc, e.service(db2)}
					md := e.createKey(kms.CreateKeyInput{})
					// Both rotations reach the HSM before either persists.
					var arrived sync.WaitGroup
					arrived.Add(2)
					release := make(chan struct{})
					hook := func() { arrived.Done(); <-release }
					e.hsm.beforeCreate.Store(&hook)
					go func() { arrived.Wait(); e.hsm.beforeCreate.Store(nil); close(release) }()
					errs := make([]error, 2)
					var wg sync.WaitGroup
					for i, r := range replicas {
						wg.Add(1)
						go func() { defer wg.Done(); _, errs[i] = r.RotateKey(e.ctx, md.KeyID) }()
					}
					wg.Wait()
					ok := 0
					for _, err := range errs {
						switch {
						case err == nil:
							ok++
						case !isErr(err, kms.ErrConcurrentUpdate) || !isErr(err, kms.ErrInvalidKeyState):
							t.Fatalf("loser: err = %v, want ErrConcurrentUpdate", err)
						}
					}
					if ok != 1 {
						t.Fatalf("%d rotations succeeded: %v", ok, errs)
					}
					vs := e.checkVersionsHaveMaterial(md.KeyID)
					if len(vs) != 2 {
						t.Fatalf("%d versions, want 2", len(vs))
					}
					if lv.pl == kms.ProtectionHSM {
						if objs := e.hsmObjects(md.KeyID); len(objs) != 2 {
							t.Fatalf("loser's HSM object not removed: %v", objs)
						}
					}
					for _, r := range replicas {
						out, err := r.Encrypt(e.ctx, kms.EncryptInput{KeyID: md.KeyID, Plaintext: []byte("x")})
						if err != nil || out.KeyVersion != 2 {
							t.Fatalf("encrypt after rotate: %+v, %v", out, err)
						}
					}
				})
			}
		})
	}
}

func TestRotationPolicyAndRotateDueKeys(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		md := e.createKey(kms.CreateKeyInput{})
		other := e.createKey(kms.CreateKeyInput{})
		p, err := e.svc.GetRotationPolicy(e.ctx, md.KeyID)
		if err != nil || p.Enabled || p.PeriodDays != kms.DefaultRotationDays || p.NextRotationAt != nil {
			t.Fatalf("default policy: %+v, %v", p, err)
		}
		for _, days := range []int{89, 2561, -1} {
			if _, err := e.svc.SetRotationPolicy(e.ctx, kms.SetRotationPolicyInput{KeyID: md.KeyID, Enabled: true, PeriodDays: days}); !isErr(err, kms.ErrValidation) {
				t.Errorf("period %d: %v", days, err)
			}
		}
		p, err = e.svc.SetRotationPolicy(e.ctx, kms.SetRotationPolicyInput{KeyID: md.KeyID, Enabled: true, PeriodDays: 90})
		want := e.clock.Now().Add(90 * 24 * time.Hour)
		if err != nil || !p.Enabled || p.PeriodDays != 90 || p.NextRotationAt == nil || !p.NextRotationAt.Equal(want) {
			t.Fatalf("set policy: %+v, %v (want next %v)", p, err, want)
		}
		if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 0 {
			t.Fatalf("nothing due yet: %d, %v", n, err)
		}
		e.clock.Advance(91 * 24 * time.Hour)
		if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 1 {
			t.Fatalf("due: %d, %v", n, err)
		}
		got, _ := e.svc.DescribeKey(e.ctx, md.KeyID)
		if got.PrimaryVersion != 2 || got.Rotation.NextRotationAt == nil || !got.Rotation.NextRotationAt.Equal(e.clock.Now().Add(90*24*time.Hour)) {
			t.Fatalf("after auto rotation: %+v", got)
		}
		if o, _ := e.svc.DescribeKey(e.ctx, other.KeyID); o.PrimaryVersion != 1 {
			t.Fatal("a key without policy was rotated")
		}
		if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 0 {
			t.Fatalf("rotated twice: %d, %v", n, err)
		}
		// A disabled key is not rotated even when due.
		e.clock.Advance(91 * 24 * time.Hour)
		if _, err := e.svc.DisableKey(e.ctx, md.KeyID); err != nil {
			t.Fatal(err)
		}
		if n, err := e.svc.RotateDueKeys(e.ctx); err != nil || n != 0 {
			t.Fatalf("disabled key rotated: %d, %v", n, err)
		}
		p, err = e.svc.SetRotationPolicy(e.ctx, kms.SetRotationPolicyInput{KeyID: md.KeyID, Enabled: false})
		if err != nil || p.Enabled || p.NextRotationAt != nil {
			t.Fatalf("disable policy: %+v, %v", p, err)
		}
	})
}
