package ciphertext_test

import (
	"bytes"
	"fmt"

	"github.com/kmsgo/kmsgo/server/internal/ciphertext"
)

func ExampleParse() {
	raw, _ := ciphertext.Blob{
		KeyID:      "example-key",
		KeyVersion: 3,
		IV:         make([]byte, ciphertext.IVSize),
		Sealed:     bytes.Repeat([]byte{1}, ciphertext.TagSize+4),
	}.Encode()
	b, err := ciphertext.Parse(raw)
	fmt.Println(b.KeyID, b.KeyVersion, len(b.Sealed), err)
	// Output: example-key 3 20 <nil>
}

func ExampleCanonicalContext() {
	a, _ := ciphertext.CanonicalContext(map[string]string{"b": "2", "a": "1"})
	b, _ := ciphertext.CanonicalContext(map[string]string{"a": "1", "b": "2"})
	fmt.Println(bytes.Equal(a, b))
	// Output: true
}
