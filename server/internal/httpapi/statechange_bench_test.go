package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

// BenchmarkStateChange measures one state change (disable, then enable, a
// key) end to end on SQLite: with intent-first audit each costs two
// durable audit appends.
func BenchmarkStateChange(b *testing.B) {
	srv := kmstest.Start(b)
	code, body := srv.Do(b, http.MethodPost, "/v1/keys", nil)
	if code != http.StatusCreated {
		b.Fatalf("create: %d %s", code, body)
	}
	var md struct {
		KeyID string `json:"key_id"`
	}
	if err := json.Unmarshal(body, &md); err != nil {
		b.Fatal(err)
	}
	id := md.KeyID
	ops := []string{"/v1/keys/" + id + "/disable", "/v1/keys/" + id + "/enable"}
	i := 0
	for b.Loop() {
		i++
		if code, body := srv.Do(b, http.MethodPost, ops[i%2], nil); code != http.StatusOK {
			b.Fatalf("%d %s", code, body)
		}
	}
}
