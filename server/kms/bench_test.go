package kms_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/kms"
	"gorm.io/gorm"
)

// runG runs b.N calls of fn spread over g goroutines.
func runG(b *testing.B, g int, fn func() error) {
	b.Helper()
	b.ResetTimer()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < g; w++ {
		n := b.N / g
		if w < b.N%g {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := fn(); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if first != nil {
		b.Fatal(first)
	}
}

// BenchmarkCrypto measures the service's hot path for 32-byte payloads next
// to the bare backend call it wraps, on SQLite (the hot path must not query
// the database while metadata is fresh).
func BenchmarkCrypto(b *testing.B) {
	ctx := context.Background()
	pt := make([]byte, 32)
	for _, lv := range levels {
		backend := lv.backend(b)
		var db *gorm.DB = dbtest.Open(b, dbtest.SQLite)
		migrated(b, db)
		svc, err := kms.New(kms.Config{DB: db, HSM: backend, MetadataTTL: kms.DefaultMetadataTTL})
		if err != nil {
			b.Fatal(err)
		}
		md, err := svc.CreateKey(ctx, kms.CreateKeyInput{ProtectionLevel: lv.pl})
		if err != nil {
			b.Fatal(err)
		}
		ec := map[string]string{"table": "orders"}
		enc, err := svc.Encrypt(ctx, kms.EncryptInput{KeyID: md.KeyID, Plaintext: pt, EncryptionContext: ec})
		if err != nil {
			b.Fatal(err)
		}
		bareID := "kmsgo-bench-" + md.KeyID
		if err := backend.GenerateKey(ctx, bareID, 256); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = backend.DestroyKey(ctx, bareID) })
		aad := make([]byte, 80)
		sealed, err := backend.Encrypt(ctx, bareID, pt, aad)
		if err != nil {
			b.Fatal(err)
		}
		for _, g := range []int{1, 2} {
			name := func(op string) string { return fmt.Sprintf("%s/%s/g%d", lv.name, op, g) }
			b.Run(name("Encrypt"), func(b *testing.B) {
				runG(b, g, func() error {
					_, err := svc.Encrypt(ctx, kms.EncryptInput{KeyID: md.KeyID, Plaintext: pt, EncryptionContext: ec})
					return err
				})
			})
			b.Run(name("Decrypt"), func(b *testing.B) {
				runG(b, g, func() error {
					_, err := svc.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
					return err
				})
			})
			b.Run(name("GenerateDataKey"), func(b *testing.B) {
				runG(b, g, func() error {
					out, err := svc.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: md.KeyID, EncryptionContext: ec})
					if err == nil {
						hsm.Zero(out.Plaintext)
					}
					return err
				})
			})
			b.Run(name("BareHSMEncrypt"), func(b *testing.B) {
				runG(b, g, func() error { _, err := backend.Encrypt(ctx, bareID, pt, aad); return err })
			})
			b.Run(name("BareHSMDecrypt"), func(b *testing.B) {
				runG(b, g, func() error { _, err := backend.Decrypt(ctx, bareID, sealed, aad); return err })
			})
		}
		_ = svc.Close()
	}
}
