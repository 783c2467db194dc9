package kmsd_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// TestLostKeyObjectIs503: an HSM key version whose object vanished from
// the token (token swapped, object deleted behind kmsd's back) answers 503
// HSMUnavailable from the very first request, for Encrypt and Decrypt
// (it answered 500 Internal before).
func TestLostKeyObjectIs503(t *testing.T) {
	b, err := p11.Open(softhsmtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := kmstest.Start(t, kmstest.WithHSM(b), kmstest.WithConfig(func(c *config.Config) { c.Jobs.Enabled = false }))
	code, body := srv.Do(t, http.MethodPost, "/v1/keys", map[string]any{"protection_level": "HSM"})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var md struct {
		KeyID string `json:"key_id"`
	}
	_ = json.Unmarshal(body, &md)
	code, body = srv.Do(t, http.MethodPost, "/v1/encrypt", map[string]any{"key_id": md.KeyID, "plaintext": "aGVsbG8="})
	if code != http.StatusOK {
		t.Fatalf("encrypt: %d %s", code, body)
	}
	var enc struct {
		CiphertextBlob string `json:"ciphertext_blob"`
	}
	_ = json.Unmarshal(body, &enc)
	vs, err := store.New(srv.App.DB).Versions(context.Background(), md.KeyID)
	if err != nil || len(vs) != 1 {
		t.Fatal(vs, err)
	}
	if err := b.DestroyKey(context.Background(), vs[0].HSMObjectID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		in   map[string]any
	}{
		{"/v1/encrypt", map[string]any{"key_id": md.KeyID, "plaintext": "aGVsbG8="}},
		{"/v1/decrypt", map[string]any{"ciphertext_blob": enc.CiphertextBlob}},
	} {
		code, body := srv.Do(t, http.MethodPost, c.path, c.in)
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if code != http.StatusServiceUnavailable || e.Error.Code != "HSMUnavailable" {
			t.Fatalf("%s with the key object gone: %d %s, want 503 HSMUnavailable", c.path, code, body)
		}
	}
}
