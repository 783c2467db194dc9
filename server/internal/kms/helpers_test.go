package kms_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"gorm.io/gorm"
)

// sharedSoftHSM is one SoftHSM2 token for the whole package run: creating
// tokens is slow, and key object ids are unique per key anyway. Tests that
// list every object (orphan cleanup) open their own token.
var sharedSoftHSM *p11.Backend

func TestMain(m *testing.M) {
	cfg, cleanup, err := softhsmtest.NewToken()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kms tests need SoftHSM2:", err)
		os.Exit(1)
	}
	b, err := p11.Open(cfg)
	if err != nil {
		cleanup()
		fmt.Fprintln(os.Stderr, "open SoftHSM2:", err)
		os.Exit(1)
	}
	sharedSoftHSM = b
	code := m.Run()
	_ = b.Close()
	cleanup()
	os.Exit(code)
}

// fakeClock is a settable business clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// faultyBackend is a fault-injecting decorator around a REAL backend
// (devhsm or SoftHSM): every call goes to the real backend unless a fault
// is armed. It is not a mock: it exists to make the real HSM fail at chosen
// points of a rotation.
type faultyBackend struct {
	hsm.Backend
	failCreate  atomic.Bool // GenerateKey, ImportKey, Random, WrapKey fail with ErrUnavailable
	failDestroy atomic.Bool // DestroyKey fails with ErrUnavailable
	failCrypto  atomic.Bool // Encrypt, Decrypt, UnwrapKey fail with ErrUnavailable
	// failAfterCreate lets GenerateKey, Random and WrapKey run on the real
	// backend and then report ErrUnavailable, as when the HSM did the work
	// but its reply was lost: a created object becomes an orphan.
	failAfterCreate atomic.Bool
	// beforeCreate, if set, runs before GenerateKey and Random.
	beforeCreate atomic.Pointer[func()]
}

var errInjected = fmt.Errorf("injected fault: %w", hsm.ErrUnavailable)

func (f *faultyBackend) hook() error {
	if h := f.beforeCreate.Load(); h != nil {
		(*h)()
	}
	if f.failCreate.Load() {
		return errInjected
	}
	return nil
}

func (f *faultyBackend) GenerateKey(ctx context.Context, id string, bits int) error {
	if err := f.hook(); err != nil {
		return err
	}
	if err := f.Backend.GenerateKey(ctx, id, bits); err != nil {
		return err
	}
	if f.failAfterCreate.Load() {
		return errInjected
	}
	return nil
}

func (f *faultyBackend) ImportKey(ctx context.Context, id string, m []byte) error {
	if f.failCreate.Load() {
		return errInjected
	}
	return f.Backend.ImportKey(ctx, id, m)
}

func (f *faultyBackend) Random(ctx context.Context, n int) ([]byte, error) {
	if err := f.hook(); err != nil {
		return nil, err
	}
	r, err := f.Backend.Random(ctx, n)
	if err == nil && f.failAfterCreate.Load() {
		hsm.Zero(r)
		return nil, errInjected
	}
	return r, err
}

func (f *faultyBackend) WrapKey(ctx context.Context, m, aad []byte) ([]byte, error) {
	if f.failCreate.Load() {
		return nil, errInjected
	}
	w, err := f.Backend.WrapKey(ctx, m, aad)
	if err == nil && f.failAfterCreate.Load() {
		return nil, errInjected
	}
	return w, err
}

func (f *faultyBackend) Encrypt(ctx context.Context, id string, pt, aad []byte) (hsm.Sealed, error) {
	if f.failCrypto.Load() {
		return hsm.Sealed{}, errInjected
	}
	return f.Backend.Encrypt(ctx, id, pt, aad)
}

func (f *faultyBackend) Decrypt(ctx context.Context, id string, sealed hsm.Sealed, aad []byte) ([]byte, error) {
	if f.failCrypto.Load() {
		return nil, errInjected
	}
	return f.Backend.Decrypt(ctx, id, sealed, aad)
}

func (f *faultyBackend) UnwrapKey(ctx context.Context, w, aad []byte) ([]byte, error) {
	if f.failCrypto.Load() {
		return nil, errInjected
	}
	return f.Backend.UnwrapKey(ctx, w, aad)
}

func (f *faultyBackend) DestroyKey(ctx context.Context, id string) error {
	if f.failDestroy.Load() {
		return errInjected
	}
	return f.Backend.DestroyKey(ctx, id)
}

// level is a protection level with the real backend that serves it in tests.
type level struct {
	name    string
	pl      kms.ProtectionLevel
	backend func(t testing.TB) hsm.Backend
}

func devHSM(t testing.TB) hsm.Backend {
	t.Helper()
	b, err := devhsm.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func softHSM(testing.TB) hsm.Backend { return sharedSoftHSM }

// privateSoftHSM opens a token for this test only.
func privateSoftHSM(t testing.TB) hsm.Backend { return softhsmtest.Backend(t) }

var levels = []level{
	{"SOFTWARE", kms.ProtectionSoftware, devHSM},
	{"HSM", kms.ProtectionHSM, softHSM},
}

// env is one Service on a fresh database.
type env struct {
	t     *testing.T
	svc   *kms.Service
	hsm   *faultyBackend
	db    *gorm.DB
	st    *store.Store
	clock *fakeClock
	pl    kms.ProtectionLevel
	ctx   context.Context
}

func migrated(t testing.TB, db *gorm.DB) *gorm.DB {
	t.Helper()
	if err := migrate.Apply(db, store.Migrations()...); err != nil {
		t.Fatal(err)
	}
	return db
}

func newEnv(t *testing.T, db *gorm.DB, lv level, mods ...func(*kms.Config)) *env {
	t.Helper()
	migrated(t, db)
	e := &env{t: t, hsm: &faultyBackend{Backend: lv.backend(t)}, db: db, st: store.New(db), clock: newClock(), pl: lv.pl, ctx: context.Background()}
	e.svc = e.service(db, mods...)
	return e
}

// service opens another Service (a replica) sharing e's HSM and clock.
func (e *env) service(db *gorm.DB, mods ...func(*kms.Config)) *kms.Service {
	e.t.Helper()
	cfg := kms.Config{DB: db, HSM: e.hsm, Clock: e.clock.Now}
	for _, m := range mods {
		m(&cfg)
	}
	svc, err := kms.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = svc.Close() })
	return svc
}

// forEach runs fn for every dialect and protection level, each on a fresh
// database.
func forEach(t *testing.T, fn func(t *testing.T, e *env), mods ...func(*kms.Config)) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			for _, lv := range levels {
				t.Run(lv.name, func(t *testing.T) {
					fn(t, newEnv(t, dbtest.Open(t, d), lv, mods...))
				})
			}
		})
	}
}

func (e *env) createKey(in kms.CreateKeyInput) *kms.KeyMetadata {
	e.t.Helper()
	if in.ProtectionLevel == "" {
		in.ProtectionLevel = e.pl
	}
	md, err := e.svc.CreateKey(e.ctx, in)
	if err != nil {
		e.t.Fatalf("CreateKey: %v", err)
	}
	return md
}

func (e *env) encrypt(keyID string, pt []byte, ec map[string]string) *kms.EncryptOutput {
	e.t.Helper()
	out, err := e.svc.Encrypt(e.ctx, kms.EncryptInput{KeyID: keyID, Plaintext: pt, EncryptionContext: ec})
	if err != nil {
		e.t.Fatalf("Encrypt: %v", err)
	}
	return out
}

func (e *env) mustDecrypt(blob []byte, ec map[string]string, want []byte) {
	e.t.Helper()
	out, err := e.svc.Decrypt(e.ctx, kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	if err != nil {
		e.t.Fatalf("Decrypt: %v (reason %q)", err, kms.ReasonCode(err))
	}
	if string(out.Plaintext) != string(want) {
		e.t.Fatalf("Decrypt = %q, want %q", out.Plaintext, want)
	}
}

// hsmObjects lists the HSM objects of key id.
func (e *env) hsmObjects(keyID string) []string {
	e.t.Helper()
	ids, err := e.hsm.ListKeys(e.ctx, kms.HSMObjectPrefix+keyID+"-")
	if err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// checkVersionsHaveMaterial asserts that every live version of key id has
// material: a wrapped blob that unwraps, or an existing HSM object.
func (e *env) checkVersionsHaveMaterial(keyID string) []store.KeyVersion {
	e.t.Helper()
	vs, err := e.st.Versions(e.ctx, keyID)
	if err != nil {
		e.t.Fatal(err)
	}
	objs := map[string]bool{}
	for _, o := range e.hsmObjects(keyID) {
		objs[o] = true
	}
	for _, v := range vs {
		if v.State != store.VersionEnabled {
			continue
		}
		switch e.pl {
		case kms.ProtectionSoftware:
			if len(v.WrappedMaterial) == 0 || v.HSMObjectID != "" {
				e.t.Fatalf("version %d has no wrapped material", v.Version)
			}
		case kms.ProtectionHSM:
			if !objs[v.HSMObjectID] {
				e.t.Fatalf("version %d: HSM object %q missing", v.Version, v.HSMObjectID)
			}
		}
	}
	return vs
}

func isErr(err, target error) bool { return errors.Is(err, target) }

// fuzzEnv is a SOFTWARE-key Service on SQLite for fuzz targets.
func fuzzEnv(f *testing.F) *env {
	f.Helper()
	db := migrated(f, dbtest.Open(f, dbtest.SQLite))
	e := &env{hsm: &faultyBackend{Backend: devHSM(f)}, db: db, st: store.New(db), clock: newClock(), pl: kms.ProtectionSoftware, ctx: context.Background()}
	svc, err := kms.New(kms.Config{DB: db, HSM: e.hsm, Clock: e.clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = svc.Close() })
	e.svc = svc
	return e
}
