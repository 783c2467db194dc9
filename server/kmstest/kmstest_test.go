package kmstest_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

func TestStartServesSignedRequests(t *testing.T) {
	srv := kmstest.Start(t)
	st, body := srv.Do(t, http.MethodPost, "/v1/keys", map[string]any{"description": "t", "alias": "alias/smoke"})
	if st != http.StatusCreated {
		t.Fatalf("create key: %d %s", st, body)
	}
	var md struct {
		KeyID string `json:"key_id"`
	}
	if err := json.Unmarshal(body, &md); err != nil || md.KeyID == "" {
		t.Fatalf("create key body %s: %v", body, err)
	}
	st, body = srv.Do(t, http.MethodPost, "/v1/encrypt", map[string]any{"key_id": "alias/smoke", "plaintext": []byte("hello")})
	if st != http.StatusOK {
		t.Fatalf("encrypt: %d %s", st, body)
	}
	var enc struct {
		CiphertextBlob []byte `json:"ciphertext_blob"`
	}
	if err := json.Unmarshal(body, &enc); err != nil {
		t.Fatal(err)
	}
	st, body = srv.Do(t, http.MethodPost, "/v1/decrypt", map[string]any{"ciphertext_blob": enc.CiphertextBlob})
	if st != http.StatusOK {
		t.Fatalf("decrypt: %d %s", st, body)
	}
	var dec struct {
		KeyID     string `json:"key_id"`
		Plaintext []byte `json:"plaintext"`
	}
	if err := json.Unmarshal(body, &dec); err != nil || string(dec.Plaintext) != "hello" || dec.KeyID != md.KeyID {
		t.Fatalf("decrypt body %s: %v", body, err)
	}
}

func TestLimitedAccessKey(t *testing.T) {
	srv := kmstest.Start(t)
	st, body := srv.Do(t, http.MethodPost, "/v1/keys", map[string]any{"alias": "alias/allowed"})
	if st != http.StatusCreated {
		t.Fatalf("create key: %d %s", st, body)
	}
	if st, body = srv.Do(t, http.MethodPost, "/v1/keys", map[string]any{"alias": "alias/other"}); st != http.StatusCreated {
		t.Fatalf("create key: %d %s", st, body)
	}
	id, secret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:Encrypt"],"resources":["alias/allowed"]}]}`)
	tests := []struct {
		name, path string
		body       any
		want       int
	}{
		{"allowed key", "/v1/encrypt", map[string]any{"key_id": "alias/allowed", "plaintext": []byte("x")}, http.StatusOK},
		{"other key", "/v1/encrypt", map[string]any{"key_id": "alias/other", "plaintext": []byte("x")}, http.StatusForbidden},
		{"other action", "/v1/generate-data-key", map[string]any{"key_id": "alias/allowed"}, http.StatusForbidden},
		{"list keys", "/v1/keys", nil, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			if tc.body == nil {
				method = http.MethodGet
			}
			if st, body := srv.DoAs(t, id, secret, method, tc.path, tc.body); st != tc.want {
				t.Fatalf("got %d %s, want %d", st, body, tc.want)
			}
		})
	}
}
