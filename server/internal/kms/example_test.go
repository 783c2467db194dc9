package kms_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/server/internal/kms"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

func Example() {
	dir, err := os.MkdirTemp("", "kms-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	// The dev backend is NOT an HSM; production uses hsm/p11.
	backend, err := devhsm.Open(filepath.Join(dir, "hsm"))
	if err != nil {
		panic(err)
	}
	defer backend.Close()
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "kms.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := migrate.Apply(db, store.Migrations()...); err != nil {
		panic(err)
	}
	svc, err := kms.New(kms.Config{DB: db, HSM: backend})
	if err != nil {
		panic(err)
	}
	defer svc.Close()

	ctx := context.Background()
	key, err := svc.CreateKey(ctx, kms.CreateKeyInput{Alias: "alias/orders"})
	if err != nil {
		panic(err)
	}
	ec := map[string]string{"table": "orders"}
	enc, err := svc.Encrypt(ctx, kms.EncryptInput{KeyID: "alias/orders", Plaintext: []byte("4111-1111"), EncryptionContext: ec})
	if err != nil {
		panic(err)
	}
	dec, err := svc.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	if err != nil {
		panic(err)
	}
	fmt.Println(key.KeyState, enc.KeyVersion, string(dec.Plaintext))

	_, err = svc.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	fmt.Println(err, kms.ReasonCode(err))
	// Output:
	// Enabled 1 4111-1111
	// kms: invalid ciphertext auth_failed
}

func ExampleService_GenerateDataKey() {
	dir, _ := os.MkdirTemp("", "kms-example-")
	defer os.RemoveAll(dir)
	backend, _ := devhsm.Open(filepath.Join(dir, "hsm"))
	defer backend.Close()
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "kms.db")), &gorm.Config{Logger: logger.Discard})
	_ = migrate.Apply(db, store.Migrations()...)
	svc, _ := kms.New(kms.Config{DB: db, HSM: backend})
	ctx := context.Background()
	key, _ := svc.CreateKey(ctx, kms.CreateKeyInput{})

	dk, err := svc.GenerateDataKey(ctx, kms.GenerateDataKeyInput{KeyID: key.KeyID, KeySpec: kms.KeySpecAES256})
	if err != nil {
		panic(err)
	}
	// Use dk.Plaintext locally, store only dk.CiphertextBlob, then zero it.
	back, _ := svc.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: dk.CiphertextBlob})
	fmt.Println(len(dk.Plaintext), string(back.Plaintext) == string(dk.Plaintext))
	// Output: 32 true
}

// Retiring version 1 after a rotation: refused while it is still in use,
// accepted once the data is renewed and the version quiet for
// Config.RetirementQuietPeriod, or when forced.
func ExampleService_DisableKeyVersion() {
	dir, _ := os.MkdirTemp("", "kms-example-")
	defer os.RemoveAll(dir)
	backend, _ := devhsm.Open(filepath.Join(dir, "hsm"))
	defer backend.Close()
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "kms.db")), &gorm.Config{Logger: logger.Discard})
	_ = migrate.Apply(db, store.Migrations()...)
	svc, _ := kms.New(kms.Config{DB: db, HSM: backend}) // quiet period: 24h
	defer svc.Close()
	ctx := context.Background()
	key, _ := svc.CreateKey(ctx, kms.CreateKeyInput{})
	old, _ := svc.Encrypt(ctx, kms.EncryptInput{KeyID: key.KeyID, Plaintext: []byte("row 1")})
	_, _ = svc.RotateKey(ctx, key.KeyID)

	// The old row is still read: version 1 is in use.
	_, _ = svc.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: old.CiphertextBlob})
	_, err := svc.DisableKeyVersion(ctx, kms.DisableKeyVersionInput{KeyID: key.KeyID, Version: 1})
	fmt.Println(errors.Is(err, kms.ErrVersionInUse))

	// Renew the row under version 2; after the quiet period (or with
	// Force, as here) version 1 is retired.
	renewed, _ := svc.ReEncrypt(ctx, kms.ReEncryptInput{CiphertextBlob: old.CiphertextBlob})
	v, _ := svc.DisableKeyVersion(ctx, kms.DisableKeyVersionInput{KeyID: key.KeyID, Version: 1, Force: true})
	fmt.Println(v.Version, v.State, v.DecryptCount)

	_, err = svc.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: old.CiphertextBlob})
	fmt.Println(errors.Is(err, kms.ErrKeyVersionDisabled))
	dec, _ := svc.Decrypt(ctx, kms.DecryptInput{CiphertextBlob: renewed.CiphertextBlob})
	fmt.Println(string(dec.Plaintext), dec.KeyVersion)
	// Output:
	// true
	// 1 Disabled 2
	// true
	// row 1 2
}
