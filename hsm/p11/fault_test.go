package p11_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
)

// The tests in this file are deliberately not parallel: a PKCS#11 module is
// process-wide state, so finalizing it disturbs every Backend in the process.
// Go runs all sequential top-level tests before resuming parallel ones.

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// load runs encrypt/decrypt loops on b until stop is closed and counts the
// outcomes; any error other than ErrUnavailable is recorded.
type load struct {
	ok, unavailable atomic.Int64
	slowest         atomic.Int64 // ns, of a failed call
	mu              sync.Mutex
	other           []error
	wg              sync.WaitGroup
	stop            chan struct{}
}

func startLoad(b *p11.Backend, id string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				blob, err := b.Encrypt(bg, id, []byte("payload"), []byte("aad"))
				if err == nil {
					_, err = b.Decrypt(bg, id, blob, []byte("aad"))
				}
				switch {
				case err == nil:
					l.ok.Add(1)
				case errors.Is(err, hsm.ErrUnavailable):
					l.unavailable.Add(1)
					if d := int64(time.Since(start)); d > l.slowest.Load() {
						l.slowest.Store(d)
					}
					time.Sleep(time.Millisecond)
				default:
					l.mu.Lock()
					l.other = append(l.other, err)
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for _, err := range l.other {
		t.Errorf("call failed with something other than ErrUnavailable: %v", err)
	}
}

func TestFaultRecovery(t *testing.T) {
	for _, kind := range []string{p11.FaultFinalize, p11.FaultLogout, p11.FaultCloseSessions} {
		t.Run(kind, func(t *testing.T) {
			cfg := softhsmtest.New(t)
			cfg.PoolSize = 2
			logs := &syncBuffer{}
			cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
			b := open(t, cfg)
			generate(t, b, "k", 256)
			before, err := b.Encrypt(bg, "k", []byte("before"), nil)
			if err != nil {
				t.Fatal(err)
			}
			l := startLoad(b, "k", 4) // 4 workers on a pool of 2: real contention
			waitFor(t, "load to run", 10*time.Second, func() bool { return l.ok.Load() > 200 })
			if st := b.Stats(); st.Waits == 0 {
				t.Fatalf("no call ever waited for a session (%+v): the load is not concurrent", st)
			}

			if err := p11.InjectFault(b, kind); err != nil {
				t.Fatalf("inject %s: %v", kind, err)
			}
			waitFor(t, "calls to fail with ErrUnavailable", 5*time.Second, func() bool { return l.unavailable.Load() > 0 })
			waitFor(t, "Health to recover", 5*time.Second, func() bool { return b.Health(bg) == nil })
			okAt := l.ok.Load()
			waitFor(t, "calls to succeed again", 10*time.Second, func() bool { return l.ok.Load() > okAt+200 })
			l.finish(t)

			if d := time.Duration(l.slowest.Load()); d > time.Second {
				t.Errorf("a failing call took %v; calls must fail fast while recovering", d)
			}
			if got, err := b.Decrypt(bg, "k", before, nil); err != nil || string(got) != "before" {
				t.Errorf("data from before the fault: %q, %v", got, err)
			}
			if _, err := b.UnwrapKey(bg, mustWrap(t, b), nil); err != nil {
				t.Errorf("root key after recovery: %v", err)
			}
			if st := b.Stats(); !st.Available || st.InUse != 0 {
				t.Errorf("Stats after recovery = %+v", st)
			}
			// The log tells the story, and never the PIN or any data.
			out := logs.String()
			for _, want := range []string{"HSM unavailable", "HSM available again"} {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %q:\n%s", want, out)
				}
			}
			for _, secret := range []string{cfg.PIN, "payload", "before"} {
				if strings.Contains(out, secret) {
					t.Errorf("log contains %q:\n%s", secret, out)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func mustWrap(t *testing.T, b *p11.Backend) []byte {
	t.Helper()
	w, err := b.WrapKey(bg, []byte("0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestUnavailableWhileHSMGone keeps the HSM "gone" for several recovery
// attempts: calls fail fast with ErrUnavailable, Health and Stats say so,
// and the Backend comes back by itself once the HSM does.
func TestUnavailableWhileHSMGone(t *testing.T) {
	b := open(t, softhsmtest.New(t))
	generate(t, b, "k", 256)
	before, err := b.Encrypt(bg, "k", []byte("before"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var gone atomic.Bool
	var attempts atomic.Int64
	gone.Store(true)
	p11.SetRecoverHook(b, func() error {
		attempts.Add(1)
		if gone.Load() {
			return errors.New("HSM still gone")
		}
		return nil
	})
	if err := p11.InjectFault(b, p11.FaultFinalize); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Encrypt(bg, "k", []byte("x"), nil); !errors.Is(err, hsm.ErrUnavailable) {
		t.Fatalf("first call after the HSM vanished: %v, want ErrUnavailable", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Encrypt", func() error { _, err := b.Encrypt(bg, "k", []byte("x"), nil); return err }},
		{"Decrypt", func() error { _, err := b.Decrypt(bg, "k", before, nil); return err }},
		{"GenerateKey", func() error { return b.GenerateKey(bg, "new", 256) }},
		{"ListKeys", func() error { _, err := b.ListKeys(bg, ""); return err }},
		{"Random", func() error { _, err := b.Random(bg, 8); return err }},
		{"WrapKey", func() error { _, err := b.WrapKey(bg, []byte("k"), nil); return err }},
		{"Health", func() error { return b.Health(bg) }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.call()
		if !errors.Is(err, hsm.ErrUnavailable) {
			t.Errorf("%s while gone: %v, want ErrUnavailable", c.name, err)
		}
		if d := time.Since(start); d > time.Second { // far below AcquireTimeout (2s); generous for loaded CI
			t.Errorf("%s took %v while gone; want a fast failure", c.name, d)
		}
	}
	if b.Stats().Available {
		t.Error("Stats().Available while gone")
	}
	waitFor(t, "several recovery attempts", 5*time.Second, func() bool { return attempts.Load() >= 3 })
	gone.Store(false)
	waitFor(t, "recovery", 5*time.Second, func() bool { return b.Health(bg) == nil })
	if got, err := b.Decrypt(bg, "k", before, nil); err != nil || string(got) != "before" {
		t.Fatalf("Decrypt after recovery: %q, %v", got, err)
	}
	if !b.Stats().Available {
		t.Error("Stats().Available false after recovery")
	}
}

// TestSharedModuleRecovery: two Backends on different tokens share the
// process-wide module; a fault under one recovers both, without the two
// re-initialising each other in a loop.
func TestSharedModuleRecovery(t *testing.T) {
	b1 := open(t, softhsmtest.New(t))
	b2 := open(t, softhsmtest.New(t))
	generate(t, b1, "k", 256)
	generate(t, b2, "k", 256)
	l1, l2 := startLoad(b1, "k", 2), startLoad(b2, "k", 2)
	waitFor(t, "load", 5*time.Second, func() bool { return l1.ok.Load() > 10 && l2.ok.Load() > 10 })
	if err := p11.InjectFault(b1, p11.FaultFinalize); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both to notice", 5*time.Second, func() bool { return l1.unavailable.Load() > 0 && l2.unavailable.Load() > 0 })
	waitFor(t, "both to recover", 5*time.Second, func() bool { return b1.Health(bg) == nil && b2.Health(bg) == nil })
	ok1, ok2 := l1.ok.Load(), l2.ok.Load()
	waitFor(t, "both to serve again", 5*time.Second, func() bool { return l1.ok.Load() > ok1+20 && l2.ok.Load() > ok2+20 })
	// Stable: a second of load without new failures.
	u1, u2 := l1.unavailable.Load(), l2.unavailable.Load()
	time.Sleep(300 * time.Millisecond)
	if l1.unavailable.Load() != u1 || l2.unavailable.Load() != u2 {
		t.Errorf("failures continued after recovery: %d->%d, %d->%d", u1, l1.unavailable.Load(), u2, l2.unavailable.Load())
	}
	l1.finish(t)
	l2.finish(t)
}

// TestRootKeyVanished: without its root key nothing stored outside the HSM
// can be read, so the Backend fails closed (unavailable) and stays so; it
// never creates a new root key behind the operator's back.
func TestRootKeyVanished(t *testing.T) {
	b := open(t, softhsmtest.New(t))
	wrapped := mustWrap(t, b)
	p, slot := p11.Raw(b)
	rw, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyObject(rw, rawFind(t, p, rw, hsm.RootKeyID)); err != nil {
		t.Fatal(err)
	}
	_ = p.CloseSession(rw)

	if _, err := b.UnwrapKey(bg, wrapped, nil); !errors.Is(err, hsm.ErrUnavailable) {
		t.Fatalf("UnwrapKey without a root key: %v, want ErrUnavailable", err)
	}
	time.Sleep(300 * time.Millisecond) // several recovery attempts
	if err := b.Health(bg); !errors.Is(err, hsm.ErrUnavailable) {
		t.Errorf("Health without a root key: %v, want ErrUnavailable", err)
	}
	if _, err := b.WrapKey(bg, []byte("k"), nil); !errors.Is(err, hsm.ErrUnavailable) {
		t.Errorf("WrapKey without a root key: %v, want ErrUnavailable", err)
	}
	if b.Stats().Available {
		t.Error("Stats().Available without a root key")
	}
}
