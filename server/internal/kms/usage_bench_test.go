package kms

import (
	"context"
	"testing"

	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

// BenchmarkDecryptUsage measures Decrypt of a SOFTWARE key (the fastest
// path, so counting weighs most) with the per-version usage counting
// ("counted") and without it ("uncounted", the code path before version
// retirement), serially and from parallel goroutines, on one Service.
// Compare the two ns/op of each pair for the cost of counting.
func BenchmarkDecryptUsage(b *testing.B) {
	ctx := context.Background()
	db := dbtest.Open(b, dbtest.SQLite)
	if err := migrate.Apply(db, store.Migrations()...); err != nil {
		b.Fatal(err)
	}
	backend, err := devhsm.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = backend.Close() })
	svc, err := New(Config{DB: db, HSM: backend, UsageFlushInterval: -1}) // svc.usage is swapped below
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = svc.Close() })
	md, err := svc.CreateKey(ctx, CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	ec := map[string]string{"table": "orders"}
	enc, err := svc.Encrypt(ctx, EncryptInput{KeyID: md.KeyID, Plaintext: make([]byte, 32), EncryptionContext: ec})
	if err != nil {
		b.Fatal(err)
	}
	in := DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec}
	table := svc.usage
	for _, mode := range []string{"uncounted", "counted"} {
		for _, parallel := range []bool{false, true} {
			name := mode + "/serial"
			if parallel {
				name = mode + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				svc.usage = table
				if mode == "uncounted" {
					svc.usage = nil
				}
				svc.invalidate(md.KeyID) // reload the entry with (or without) its counters
				defer func() { svc.usage = table; svc.invalidate(md.KeyID) }()
				b.ReportAllocs()
				if !parallel {
					for b.Loop() {
						if _, err := svc.Decrypt(ctx, in); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := svc.Decrypt(ctx, in); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkUsageNote is the counting alone, as the crypto path does it:
// the counter found through the key's cache entry, one atomic add.
func BenchmarkUsageNote(b *testing.B) {
	const id = "9f1c0000-0000-4000-8000-000000000000"
	u := newUsageTable()
	e := &keyEntry{key: store.Key{ID: id}, versions: map[int64]store.KeyVersion{3: {}}}
	e.usage = u.cellsFor(id, e.versions)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			noteUse(e, 3)
		}
	})
	if u.pending(id, 3) != int64(b.N) {
		b.Fatalf("counted %d of %d", u.pending(id, 3), b.N)
	}
}
