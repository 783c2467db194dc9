package kmsclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kmsgo/kmsgo/starter/kmsclient/dkcache"
)

// BenchmarkEncryptRoundTrip measures one signed call (with nonce) over
// loopback against a handler that does no verification: client overhead
// plus HTTP, not server work.
func BenchmarkEncryptRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"key_id":"k","key_version":1,"ciphertext_blob":"AQID"}`))
	}))
	defer srv.Close()
	c, err := New(Config{Endpoint: srv.URL, AccessKeyID: testAK, SecretAccessKey: testSK, SendNonce: true})
	if err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, 64)
	for b.Loop() {
		if _, err := c.Encrypt(context.Background(), "alias/orders", pt, map[string]string{"a": "b"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedGenerateDataKeyHit measures a data-key cache hit.
func BenchmarkCachedGenerateDataKeyHit(b *testing.B) {
	c, _ := New(Config{Endpoint: "http://127.0.0.1:1", AccessKeyID: testAK, SecretAccessKey: testSK})
	cc, _ := NewCached(c, CacheConfig{DataKeys: dkcache.DataKeyConfig{MaxUses: dkcache.MaxUsesLimit}})
	encCtx := map[string]string{"table": "users"}
	cc.dataKeys.Put("alias/orders", encCtx, dkcache.DataKey{KeyID: "k", Plaintext: make([]byte, 32), CiphertextBlob: []byte{1}}, 0)
	for b.Loop() {
		dk, err := cc.GenerateDataKeyFor(context.Background(), "alias/orders", encCtx, 100)
		if err != nil {
			b.Fatal(err)
		}
		clear(dk.Plaintext)
	}
}
