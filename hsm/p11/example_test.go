package p11_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
)

// ExampleOpen opens a Backend, creates an HSM key and round-trips a data
// key through it. A throwaway SoftHSM2 token stands in for the real HSM; in
// production the Config comes from kmsd's configuration and the PIN from
// PINFromEnvOrFile.
func ExampleOpen() {
	cfg, cleanup, err := softhsmtest.NewToken()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cleanup()

	b, err := p11.Open(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	ctx := context.Background()
	if err := b.GenerateKey(ctx, "cmk-1/v1", 256); err != nil {
		fmt.Println(err)
		return
	}
	dataKey := []byte("0123456789abcdef0123456789abcdef")
	aad := []byte("cmk=cmk-1/version=1")
	blob, err := b.Encrypt(ctx, "cmk-1/v1", dataKey, aad)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("IV bytes:", len(blob.IV), "ciphertext bytes:", len(blob.Ciphertext), "=", len(dataKey), "+", hsm.TagSize)

	plain, err := b.Decrypt(ctx, "cmk-1/v1", blob, aad)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hsm.Zero(plain)
	fmt.Println("round trip ok:", string(plain) == string(dataKey))

	_, err = b.Decrypt(ctx, "cmk-1/v1", blob, []byte("cmk=other"))
	fmt.Println("wrong context:", err)
	// Output:
	// IV bytes: 12 ciphertext bytes: 48 = 32 + 16
	// round trip ok: true
	// wrong context: hsm: decryption failed
}

// ExamplePINFromEnvOrFile reads the PIN from $KMS_PKCS11_PIN or, when that
// is unset, from a 0600 file.
func ExamplePINFromEnvOrFile() {
	dir, err := os.MkdirTemp("", "pin-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "pin")
	if err := os.WriteFile(file, []byte("1234\n"), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	os.Unsetenv("KMS_PKCS11_PIN")
	pin, err := p11.PINFromEnvOrFile("KMS_PKCS11_PIN", file)
	fmt.Println(pin, err)
	// Output: 1234 <nil>
}
