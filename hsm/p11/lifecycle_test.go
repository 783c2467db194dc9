package p11_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
)

// TestKeyLifecycleRace creates and destroys one key over and over while
// other goroutines encrypt under it. Every Encrypt must either work or say
// ErrKeyNotFound: SoftHSM's odd errors for objects in flux must neither leak
// out nor be taken for a device fault.
func TestKeyLifecycleRace(t *testing.T) {
	t.Parallel()
	b := open(t, softhsmtest.New(t))
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := b.Encrypt(bg, "k", []byte("x"), nil); err != nil && !errors.Is(err, hsm.ErrKeyNotFound) {
					t.Errorf("Encrypt: %v", err)
					return
				}
			}
		}()
	}
	for range 60 {
		if err := b.GenerateKey(bg, "k", 128); err != nil {
			t.Errorf("GenerateKey: %v", err)
		}
		if _, err := b.ListKeys(bg, "k"); err != nil {
			t.Errorf("ListKeys: %v", err)
		}
		if err := b.DestroyKey(bg, "k"); err != nil {
			t.Errorf("DestroyKey: %v", err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if st := b.Stats(); !st.Available {
		t.Errorf("the backend went unavailable: %+v", st)
	}
}
