package kmsclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kmsgo/kmsgo/starter/kmsclient/dkcache"
)

// cryptoDouble is a TEST DOUBLE of kmsd's data-key and decrypt routes: it
// hands out numbered 32-byte "data keys" whose blob is the key itself, and
// "decrypts" a blob by echoing it (InvalidCiphertext for blobs starting
// with 0xEE). It only counts calls; no cryptography is involved.
func cryptoDouble(t *testing.T, gdk, dec *atomic.Int32) *kmsdDouble {
	return newDouble(t, func(w http.ResponseWriter, r *http.Request, body []byte, _ int) {
		switch r.URL.Path {
		case "/v1/generate-data-key":
			n := gdk.Add(1)
			key := bytes.Repeat([]byte{byte(n)}, 32)
			writeJSON(w, 200, map[string]any{"key_id": "9f1c", "key_version": 1, "plaintext": key, "ciphertext_blob": key})
		case "/v1/decrypt":
			dec.Add(1)
			var in DecryptItem
			_ = json.Unmarshal(body, &in)
			if len(in.CiphertextBlob) > 0 && in.CiphertextBlob[0] == 0xEE {
				writeError(w, 400, CodeInvalidCiphertext, "no")
				return
			}
			writeJSON(w, 200, map[string]any{"key_id": "9f1c", "key_version": 1, "plaintext": in.CiphertextBlob})
		case "/v1/decrypt/batch":
			var in kmsapi.DecryptBatchRequest
			_ = json.Unmarshal(body, &in)
			var out []any
			for _, it := range in.Items {
				dec.Add(1)
				out = append(out, map[string]any{"key_id": "9f1c", "key_version": 1, "plaintext": it.CiphertextBlob})
			}
			writeJSON(w, 200, map[string]any{"results": out})
		default:
			writeError(w, 404, CodeNotFound, r.URL.Path)
		}
	})
}

func TestCachedGenerateDataKey(t *testing.T) {
	var gdk, dec atomic.Int32
	d := cryptoDouble(t, &gdk, &dec)
	cc, err := NewCached(d.client(t, nil), CacheConfig{DataKeys: dkcache.DataKeyConfig{MaxUses: 3, MaxBytes: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	encCtx := map[string]string{"table": "users"}
	var keys [][]byte
	for range 7 {
		dk, err := cc.GenerateDataKey(ctx, "alias/orders", encCtx)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, dk.Plaintext)
	}
	// 3 uses per key: keys 1,1,1,2,2,2,3.
	if gdk.Load() != 3 {
		t.Fatalf("GenerateDataKey calls = %d, want 3", gdk.Load())
	}
	for i, k := range keys {
		if want := byte(i/3 + 1); k[0] != want || len(k) != 32 {
			t.Fatalf("use %d got key %d", i, k[0])
		}
	}
	// The caller's copies are independent of the cache.
	clear(keys[5])
	if dk, _ := cc.GenerateDataKey(ctx, "alias/orders", encCtx); dk.Plaintext[0] != 3 {
		t.Fatal("cache shares memory with a returned key")
	}

	// Another context gets another key; MaxBytes forces a new one.
	if dk, _ := cc.GenerateDataKey(ctx, "alias/orders", map[string]string{"table": "orders"}); dk.Plaintext[0] != 4 {
		t.Fatalf("different context reused a key: %d", dk.Plaintext[0])
	}
	if dk, _ := cc.GenerateDataKeyFor(ctx, "alias/orders", map[string]string{"table": "orders"}, 999); dk.Plaintext[0] != 4 {
		t.Fatalf("key within MaxBytes not reused: %d", dk.Plaintext[0])
	}
	if dk, _ := cc.GenerateDataKeyFor(ctx, "alias/orders", map[string]string{"table": "orders"}, 2); dk.Plaintext[0] != 5 {
		t.Fatalf("key over MaxBytes reused: %d", dk.Plaintext[0])
	}

	// The generated key's blob decrypts from the cache.
	before := dec.Load()
	blob := bytes.Repeat([]byte{4}, 32)
	res, err := cc.Decrypt(ctx, blob, map[string]string{"table": "orders"})
	if err != nil || !bytes.Equal(res.Plaintext, blob) || dec.Load() != before {
		t.Fatalf("primed decrypt: %v %v calls=%d", res, err, dec.Load()-before)
	}

	cc.ClearCaches()
	if _, err := cc.GenerateDataKey(ctx, "alias/orders", encCtx); err != nil || gdk.Load() != 6 {
		t.Fatalf("after ClearCaches: calls = %d", gdk.Load())
	}
}

func TestCachedDecrypt(t *testing.T) {
	var gdk, dec atomic.Int32
	d := cryptoDouble(t, &gdk, &dec)
	cc, err := NewCached(d.client(t, nil), CacheConfig{Decrypt: dkcache.DecryptConfig{MaxEntries: 2}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		r, err := cc.Decrypt(ctx, []byte("aa"), map[string]string{"x": "1"})
		if err != nil || string(r.Plaintext) != "aa" {
			t.Fatal(r, err)
		}
		clear(r.Plaintext)
	}
	if dec.Load() != 1 {
		t.Fatalf("decrypt calls = %d, want 1", dec.Load())
	}
	if _, err := cc.Decrypt(ctx, []byte("aa"), map[string]string{"x": "2"}); err != nil || dec.Load() != 2 {
		t.Fatalf("other context served from cache: calls = %d", dec.Load())
	}
	// Failures are not cached (and not retried).
	for range 2 {
		if _, err := cc.Decrypt(ctx, []byte{0xEE}, nil); !errors.Is(err, ErrInvalidCiphertext) {
			t.Fatal(err)
		}
	}
	if dec.Load() != 4 {
		t.Fatalf("decrypt calls = %d, want 4", dec.Load())
	}

	// Batch: hits come from the cache, misses go to the server in order.
	before := dec.Load()
	res, err := cc.DecryptBatch(ctx, []DecryptItem{
		{CiphertextBlob: []byte("aa"), EncryptionContext: map[string]string{"x": "2"}}, // cached
		{CiphertextBlob: []byte("bb")},
		{CiphertextBlob: []byte("cc")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Load()-before != 2 {
		t.Fatalf("batch sent %d items, want 2", dec.Load()-before)
	}
	for i, want := range []string{"aa", "bb", "cc"} {
		if string(res[i].Plaintext) != want || res[i].Err != nil {
			t.Fatalf("item %d: %+v", i, res[i])
		}
	}
	if _, err := cc.Decrypt(ctx, []byte("cc"), nil); err != nil || dec.Load()-before != 2 {
		t.Fatal("batch result not cached")
	}
}

func TestCachedConcurrent(t *testing.T) {
	var gdk, dec atomic.Int32
	d := cryptoDouble(t, &gdk, &dec)
	cc, _ := NewCached(d.client(t, nil), CacheConfig{DataKeys: dkcache.DataKeyConfig{MaxUses: 20}})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range 30 {
				dk, err := cc.GenerateDataKeyFor(context.Background(), "k", nil, 10)
				if err != nil {
					t.Error(err)
					return
				}
				if dk.Plaintext[0] == 0 {
					t.Error("got a zeroed key")
				}
				r, err := cc.Decrypt(context.Background(), dk.CiphertextBlob, nil)
				if err != nil || !bytes.Equal(r.Plaintext, dk.Plaintext) {
					t.Error("decrypt mismatch", err)
				}
				clear(dk.Plaintext)
				clear(r.Plaintext)
			}
		})
	}
	wg.Wait()
	// 180 uses at 20 per key need at least 9 keys, and concurrent misses
	// may add a few, but nothing near one per use.
	if n := gdk.Load(); n < 9 || n > 60 {
		t.Fatalf("GenerateDataKey calls = %d", n)
	}
}
