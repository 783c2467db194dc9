package dkcache_test

import (
	"fmt"

	"github.com/kmsgo/kmsgo/starter/kmsclient/dkcache"
)

// A data key is reused until it has protected MaxUses messages; then the
// cache forgets (and zeroes) it and the caller fetches a new one.
func ExampleDataKeyCache() {
	cache, err := dkcache.NewDataKeyCache(dkcache.DataKeyConfig{MaxUses: 3})
	if err != nil {
		panic(err)
	}
	encCtx := map[string]string{"table": "users", "column": "email"}

	// The first key comes from the KMS (GenerateDataKey); here a stand-in.
	fresh := dkcache.DataKey{KeyID: "9f1c", KeyVersion: 1, Plaintext: make([]byte, 32), CiphertextBlob: []byte{1, 2, 3}}
	cache.Put("alias/orders", encCtx, fresh, 100) // first use: 100 bytes
	clear(fresh.Plaintext)                        // the cache keeps its own copy

	for i := 2; i <= 4; i++ {
		dk, ok := cache.Get("alias/orders", encCtx, 100)
		fmt.Printf("use %d: cached=%v\n", i, ok)
		clear(dk.Plaintext) // done with this use
	}
	// Output:
	// use 2: cached=true
	// use 3: cached=true
	// use 4: cached=false
}

// Decryption results are cached per (ciphertext, encryption context); a
// different context never hits.
func ExampleDecryptCache() {
	cache, err := dkcache.NewDecryptCache(dkcache.DecryptConfig{MaxEntries: 100})
	if err != nil {
		panic(err)
	}
	blob := []byte("ciphertext from the KMS")
	cache.Put(blob, map[string]string{"app": "billing"}, dkcache.Decrypted{KeyID: "9f1c", KeyVersion: 2, Plaintext: []byte("s3cret")})

	d, ok := cache.Get(blob, map[string]string{"app": "billing"})
	fmt.Println(ok, string(d.Plaintext), d.KeyVersion)
	clear(d.Plaintext)

	_, ok = cache.Get(blob, map[string]string{"app": "shipping"})
	fmt.Println(ok)
	// Output:
	// true s3cret 2
	// false
}
