package devhsm_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/devhsm"
)

// Open a development key store, create a key and encrypt with it.
// devhsm is NOT an HSM: use it for development and demos only.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "devhsm-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	b, err := devhsm.Open(dir) // creates dir/root.key (0600) and dir/keys/ (0700)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	ctx := context.Background()
	if err := b.GenerateKey(ctx, "orders-cmk/v1", 256); err != nil {
		log.Fatal(err)
	}
	aad := []byte("table=orders")
	blob, err := b.Encrypt(ctx, "orders-cmk/v1", []byte("card 4111"), aad)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("IV bytes:", len(blob.IV), "ciphertext bytes:", len(blob.Ciphertext), "=", len("card 4111"), "+", hsm.TagSize)

	plain, err := b.Decrypt(ctx, "orders-cmk/v1", blob, aad)
	fmt.Printf("decrypted: %s %v\n", plain, err)

	_, err = b.Decrypt(ctx, "orders-cmk/v1", blob, []byte("table=users"))
	fmt.Println("wrong AAD is ErrDecrypt:", errors.Is(err, hsm.ErrDecrypt))

	ids, _ := b.ListKeys(ctx, "orders-")
	fmt.Println("keys:", ids)
	// Output:
	// IV bytes: 12 ciphertext bytes: 25 = 9 + 16
	// decrypted: card 4111 <nil>
	// wrong AAD is ErrDecrypt: true
	// keys: [orders-cmk/v1]
}

// Wrap key material under the root key so it can be stored outside the
// backend, bound to its purpose by the aad.
func ExampleBackend_WrapKey() {
	dir, err := os.MkdirTemp("", "devhsm-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b, err := devhsm.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	ctx := context.Background()
	material, err := b.Random(ctx, 32)
	if err != nil {
		log.Fatal(err)
	}
	aad := []byte("cmk=orders/version=1")
	wrapped, err := b.WrapKey(ctx, material, aad)
	if err != nil {
		log.Fatal(err)
	}
	hsm.Zero(material)

	unwrapped, err := b.UnwrapKey(ctx, wrapped, aad)
	fmt.Println("unwrapped bytes:", len(unwrapped), err)
	hsm.Zero(unwrapped)

	_, err = b.UnwrapKey(ctx, wrapped, []byte("cmk=orders/version=2"))
	fmt.Println("other purpose is ErrDecrypt:", errors.Is(err, hsm.ErrDecrypt))
	// Output:
	// unwrapped bytes: 32 <nil>
	// other purpose is ErrDecrypt: true
}
