package hsm_test

import (
	"errors"
	"fmt"

	"github.com/kmsgo/kmsgo/hsm"
)

// ExampleParseSealed splits a framed blob (as returned by Backend.WrapKey
// and stored by kmsgo) into its IV and ciphertext, and shows that anything
// else is refused with the one opaque decryption error.
func ExampleParseSealed() {
	blob := hsm.Sealed{IV: make([]byte, hsm.IVSize), Ciphertext: make([]byte, 32+hsm.TagSize)}.Encode()
	s, err := hsm.ParseSealed(blob)
	fmt.Println(len(blob), len(s.IV), len(s.Ciphertext), err)

	_, err = hsm.ParseSealed([]byte("ENC(not a blob)"))
	fmt.Println(errors.Is(err, hsm.ErrDecrypt))
	// Output:
	// 61 12 48 <nil>
	// true
}

// ExampleSealed_Check: Backend.Encrypt returns raw parts and
// Backend.Decrypt takes them; parts of any other size are refused with the
// one opaque decryption error.
func ExampleSealed_Check() {
	good := hsm.Sealed{IV: make([]byte, hsm.IVSize), Ciphertext: make([]byte, 5+hsm.TagSize)}
	fmt.Println(good.Check())
	shortIV := hsm.Sealed{IV: make([]byte, 8), Ciphertext: good.Ciphertext}
	noTag := hsm.Sealed{IV: good.IV, Ciphertext: make([]byte, hsm.TagSize-1)}
	fmt.Println(errors.Is(shortIV.Check(), hsm.ErrDecrypt), errors.Is(noTag.Check(), hsm.ErrDecrypt))
	// Output:
	// <nil>
	// true true
}

// ExampleWrapAAD shows the domain separation between WrapKey and Encrypt
// under the root key.
func ExampleWrapAAD() {
	aad := hsm.WrapAAD([]byte("cmk=1/v=2"))
	fmt.Println(hsm.IsWrapAAD(aad), hsm.IsWrapAAD([]byte("cmk=1/v=2")))
	// Output: true false
}

// ExampleZero wipes a plaintext key buffer once it is no longer needed.
func ExampleZero() {
	dataKey := []byte{1, 2, 3, 4}
	hsm.Zero(dataKey)
	fmt.Println(dataKey)
	// Output: [0 0 0 0]
}

// ExampleErrBusy: an exhausted session pool is a kind of unavailability,
// so callers that map ErrUnavailable to 503 handle it too.
func ExampleErrBusy() {
	fmt.Println(errors.Is(hsm.ErrBusy, hsm.ErrUnavailable))
	// Output: true
}
