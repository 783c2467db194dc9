package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

// discardWriter is a reusable http.ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }

// BenchmarkHandlerChain measures one request through the whole server
// chain in process, without sockets: body read, SigV4 verification, strict
// JSON decode, alias/key resolution, policy, the core's crypto, the audit
// record's durable group commit (SQLite, dev backend) and the JSON answer.
// Run with -benchmem: allocs/op is the whole chain's, the audit writer
// goroutine included. The request is signed once (SigV4 allows replays
// inside its clock window unless nonces are required).
//
//	go test -run '^$' -bench HandlerChain -benchmem -benchtime 2000x ./server/httpapi
func BenchmarkHandlerChain(b *testing.B) {
	srv := kmstest.Start(b)
	h := srv.App.Handler
	st, body := srv.Do(b, "POST", "/v1/keys", map[string]any{"alias": "alias/bench"})
	if st != 201 {
		b.Fatalf("create: %d %s", st, body)
	}
	var md struct {
		KeyID string `json:"key_id"`
	}
	_ = json.Unmarshal(body, &md)
	st, body = srv.Do(b, "POST", "/v1/encrypt", map[string]any{"key_id": md.KeyID, "plaintext": make([]byte, 32), "encryption_context": map[string]string{"app": "bench"}})
	if st != 200 {
		b.Fatalf("encrypt: %d %s", st, body)
	}
	var enc struct {
		CiphertextBlob []byte `json:"ciphertext_blob"`
	}
	_ = json.Unmarshal(body, &enc)
	ec := map[string]string{"app": "bench"}
	for _, op := range []struct {
		name, path string
		body       any
	}{
		{"Encrypt", "/v1/encrypt", map[string]any{"key_id": md.KeyID, "plaintext": make([]byte, 32), "encryption_context": ec}},
		{"EncryptAlias", "/v1/encrypt", map[string]any{"key_id": "alias/bench", "plaintext": make([]byte, 32), "encryption_context": ec}},
		{"Decrypt", "/v1/decrypt", map[string]any{"ciphertext_blob": enc.CiphertextBlob, "encryption_context": ec}},
		{"GenerateDataKey", "/v1/generate-data-key", map[string]any{"key_id": md.KeyID, "number_of_bytes": 32, "encryption_context": ec}},
	} {
		b.Run(op.name, func(b *testing.B) {
			raw, _ := json.Marshal(op.body)
			req, err := http.NewRequest(http.MethodPost, srv.URL+op.path, bytes.NewReader(raw))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if err := srv.Sign(req, srv.AccessKeyID, srv.SecretAccessKey, raw, time.Now()); err != nil {
				b.Fatal(err)
			}
			req.RemoteAddr = "127.0.0.1:40000"
			rd := bytes.NewReader(raw)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				rd.Reset(raw)
				req.Body = io.NopCloser(rd)
				clear(w.h)
				w.status = 0
				h.ServeHTTP(w, req)
				if w.status != 200 {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
