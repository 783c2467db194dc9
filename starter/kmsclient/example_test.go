package kmsclient_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
	"github.com/kmsgo/kmsgo/starter/kmsclient/dkcache"
)

// The examples below that talk to kmsd have no Output line: they compile
// and document the calls but need a running server.

func ExampleNew() {
	c, err := kmsclient.New(kmsclient.Config{
		Endpoint:        "https://kms.internal:8443",
		AccessKeyID:     "AK...",
		SecretAccessKey: "...", // from a file or the environment, never from the config center
		Timeout:         3 * time.Second,
		MaxRetries:      4,
		SendNonce:       true,
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = c
}

func ExampleClient_Encrypt() {
	c, _ := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:8080", AccessKeyID: "AK", SecretAccessKey: "SK"})
	ctx := context.Background()
	encCtx := map[string]string{"app": "billing", "field": "db_password"}

	enc, err := c.Encrypt(ctx, "alias/config", []byte("s3cret"), encCtx)
	if err != nil {
		log.Fatal(err)
	}
	dec, err := c.Decrypt(ctx, enc.CiphertextBlob, encCtx)
	switch {
	case errors.Is(err, kmsclient.ErrInvalidCiphertext):
		log.Fatal("wrong context or tampered value")
	case err != nil:
		log.Fatal(err)
	}
	defer clear(dec.Plaintext)
	fmt.Println(dec.KeyID, dec.KeyVersion)
}

// Envelope encryption: one KMS call for a data key, then local AES-GCM.
// Store the sealed data and dk.CiphertextBlob; decrypt the blob later to
// get the data key back.
func ExampleClient_GenerateDataKey() {
	c, _ := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:8080", AccessKeyID: "AK", SecretAccessKey: "SK"})
	encCtx := map[string]string{"table": "users", "column": "email"}
	dk, err := c.GenerateDataKey(context.Background(), "alias/orders", encCtx)
	if err != nil {
		log.Fatal(err)
	}
	defer clear(dk.Plaintext)

	block, _ := aes.NewCipher(dk.Plaintext)
	aead, _ := cipher.NewGCMWithRandomNonce(block)
	sealed := aead.Seal(nil, nil, []byte("alice@example.com"), nil)
	fmt.Println(len(sealed), len(dk.CiphertextBlob) > 0)
}

func ExampleClient_DecryptBatch() {
	c, _ := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:8080", AccessKeyID: "AK", SecretAccessKey: "SK"})
	var blobs [][]byte // e.g. every ENC(...) value of a config snapshot
	items := make([]kmsclient.DecryptItem, len(blobs))
	for i, b := range blobs {
		items[i] = kmsclient.DecryptItem{CiphertextBlob: b, EncryptionContext: map[string]string{"app": "billing"}}
	}
	results, err := c.DecryptBatch(context.Background(), items)
	if err != nil {
		log.Fatal(err) // the whole request failed
	}
	for i, r := range results {
		if r.Err != nil {
			log.Printf("item %d: %v", i, r.Err) // fail closed for this value
			continue
		}
		clear(r.Plaintext)
	}
}

func ExampleClient_CreateKey() {
	c, _ := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:8080", AccessKeyID: "AK", SecretAccessKey: "SK"})
	ctx := context.Background()
	key, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{
		Description:     "orders table",
		ProtectionLevel: kmsclient.ProtectionHSM,
		Alias:           "alias/orders",
		Tags:            map[string]string{"team": "pay"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.SetRotationPolicy(ctx, key.KeyID, true, 90); err != nil {
		log.Fatal(err)
	}
	page, err := c.ListKeys(ctx, kmsclient.ListKeysInput{State: kmsclient.KeyStateEnabled, Limit: 50})
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range page.Keys {
		fmt.Println(k.KeyID, k.Aliases, k.PrimaryVersion)
	}
}

// A Cached client reuses data keys within limits and remembers decrypted
// values; every other method is the plain Client's.
func ExampleCached() {
	c, _ := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:8080", AccessKeyID: "AK", SecretAccessKey: "SK"})
	cc, err := kmsclient.NewCached(c, kmsclient.CacheConfig{
		DataKeys: dkcache.DataKeyConfig{MaxAge: 5 * time.Minute, MaxUses: 1 << 20, MaxBytes: 1 << 30},
		Decrypt:  dkcache.DecryptConfig{TTL: time.Minute, MaxEntries: 10000},
	})
	if err != nil {
		log.Fatal(err)
	}
	encCtx := map[string]string{"table": "users", "column": "email"}
	value := []byte("alice@example.com")
	dk, err := cc.GenerateDataKeyFor(context.Background(), "alias/orders", encCtx, int64(len(value)))
	if err != nil {
		log.Fatal(err)
	}
	defer clear(dk.Plaintext)
	// ... AES-GCM value with dk.Plaintext, store it with dk.CiphertextBlob.

	// In an incident (key disabled), drop everything cached at once:
	cc.ClearCaches()
}

// Errors from kmsd match sentinels with errors.Is; only transient faults
// are retryable, and a failed decryption never is.
func ExampleIsRetryable() {
	errs := []error{
		&kmsclient.APIError{StatusCode: 503, Code: kmsclient.CodeHSMUnavailable},
		&kmsclient.APIError{StatusCode: 429, Code: kmsclient.CodeTooManyRequests},
		&kmsclient.APIError{StatusCode: 400, Code: kmsclient.CodeInvalidCiphertext},
		&kmsclient.APIError{StatusCode: 404, Code: kmsclient.CodeNotFound},
	}
	for _, err := range errs {
		fmt.Println(err.(*kmsclient.APIError).Code, kmsclient.IsRetryable(err))
	}
	// Output:
	// HSMUnavailable true
	// TooManyRequests true
	// InvalidCiphertext false
	// NotFound false
}

func ExampleAPIError() {
	var err error = fmt.Errorf("load config: %w", &kmsclient.APIError{
		StatusCode: 404, Code: kmsclient.CodeNotFound, Message: "key 9f1c not found", RequestID: "r-17",
	})
	fmt.Println(errors.Is(err, kmsclient.ErrNotFound), errors.Is(err, kmsclient.ErrAccessDenied))
	var ae *kmsclient.APIError
	if errors.As(err, &ae) {
		fmt.Println(ae.StatusCode, ae.RequestID)
	}
	fmt.Println(err)
	// Output:
	// true false
	// 404 r-17
	// load config: kmsclient: 404 NotFound: key 9f1c not found (request r-17)
}

func ExampleClient_RunJob() {
	c, _ := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:8400", AccessKeyID: "AK", SecretAccessKey: "SK"})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // bounds the wait
	defer cancel()

	js, err := c.ListJobs(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, j := range js {
		fmt.Println(j.Name, j.Schedule, j.LastOutcome)
	}
	run, err := c.RunJob(ctx, "rotate_due_keys")
	if errors.Is(err, kmsclient.ErrJobRunning) {
		log.Print("running already on some replica; try later")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	for _, ch := range run.Changes {
		fmt.Printf("%s %s: %s -> %s\n", ch.KeyID, ch.Field, ch.Old, ch.New)
	}
}
