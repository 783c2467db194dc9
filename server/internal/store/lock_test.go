package store_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

// TestAcquireLock: a second holder waits while the lease is held, gets it
// once it is released, and takes over an expired lease (a crashed holder).
// kmsd holds this lock while it finds or creates the HSM root key, so
// replicas starting at once with create_root_key make one root key.
func TestAcquireLock(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		if err := migrate.Apply(db, store.Migrations()...); err != nil {
			t.Fatal(err)
		}
		st := store.New(db)
		ctx := context.Background()
		release, err := st.AcquireLock(ctx, "root", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan func(), 1)
		go func() {
			r, err := st.AcquireLock(ctx, "root", time.Minute)
			if err != nil {
				t.Error(err)
				close(got)
				return
			}
			got <- r
		}()
		select {
		case <-got:
			t.Fatal("second holder got a held lock")
		case <-time.After(300 * time.Millisecond):
		}
		release()
		select {
		case r := <-got:
			if r != nil {
				r()
			}
		case <-time.After(60 * time.Second):
			t.Fatal("second holder did not get the released lock")
		}
		// An expired lease is taken over.
		if _, err := st.AcquireLock(ctx, "crashed", -time.Second); err != nil {
			t.Fatal(err)
		}
		tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		r, err := st.AcquireLock(tctx, "crashed", time.Minute)
		if err != nil {
			t.Fatalf("take over an expired lease: %v", err)
		}
		r()
	})
}
