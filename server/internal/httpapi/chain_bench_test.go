package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
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

// cpuTime is the CPU time (user + system) of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHandlerChain measures one request through the whole server
// chain in process, without sockets: body read, SigV4 verification, strict
// JSON decode, alias/key resolution, policy, the core's crypto, the audit
// record's durable group commit (SQLite) and the JSON answer. Run with
// -benchmem: allocs/op is the whole chain's, the audit writer goroutine
// included. cpu-µs/op is the process's CPU time (user + system, every
// goroutine and SQLite's fsync included) per request: on a shared machine
// it varies far less than ns/op, which is mostly the wait for fsync.
//
// Variants: dev (the development software HSM, SOFTWARE keys), and a
// SoftHSM2 token with a SOFTWARE and an HSM-protected key. "serial" sends
// one request at a time (one audit commit each); "c16" sends from 16
// goroutines, so audit records share group commits as under load. The
// requests are signed once (SigV4 allows replays inside its clock window
// unless nonces are required).
//
//	go test -run '^$' -bench HandlerChain -benchmem -benchtime 2000x ./server/internal/httpapi
func BenchmarkHandlerChain(b *testing.B) {
	b.Run("dev", func(b *testing.B) {
		benchChain(b, kmstest.Start(b), "SOFTWARE")
	})
	hsmSrv := kmstest.Start(b, kmstest.WithHSM(softhsmtest.Backend(b)))
	for _, prot := range []string{"SOFTWARE", "HSM"} {
		b.Run("softhsm-"+prot, func(b *testing.B) { benchChain(b, hsmSrv, prot) })
	}
}

func benchChain(b *testing.B, srv *kmstest.Server, protection string) {
	alias := "alias/bench-" + protection
	st, body := srv.Do(b, "POST", "/v1/keys", map[string]any{"alias": alias, "protection_level": protection})
	if st != 201 {
		b.Fatalf("create: %d %s", st, body)
	}
	var md struct {
		KeyID string `json:"key_id"`
	}
	_ = json.Unmarshal(body, &md)
	ec := map[string]string{"app": "bench"}
	st, body = srv.Do(b, "POST", "/v1/encrypt", map[string]any{"key_id": md.KeyID, "plaintext": make([]byte, 32), "encryption_context": ec})
	if st != 200 {
		b.Fatalf("encrypt: %d %s", st, body)
	}
	var enc struct {
		CiphertextBlob []byte `json:"ciphertext_blob"`
	}
	_ = json.Unmarshal(body, &enc)
	for _, op := range []struct {
		name, path string
		body       any
	}{
		{"Encrypt", "/v1/encrypt", map[string]any{"key_id": md.KeyID, "plaintext": make([]byte, 32), "encryption_context": ec}},
		{"EncryptAlias", "/v1/encrypt", map[string]any{"key_id": alias, "plaintext": make([]byte, 32), "encryption_context": ec}},
		{"Decrypt", "/v1/decrypt", map[string]any{"ciphertext_blob": enc.CiphertextBlob, "encryption_context": ec}},
		{"GenerateDataKey", "/v1/generate-data-key", map[string]any{"key_id": md.KeyID, "number_of_bytes": 32, "encryption_context": ec}},
	} {
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
		h := srv.App.Handler()
		// one serves a copy of req (so that goroutines do not share it).
		one := func(b *testing.B, w *discardWriter, rd *bytes.Reader) {
			rd.Reset(raw)
			r := *req
			r.Header = req.Header
			r.Body = io.NopCloser(rd)
			clear(w.h)
			w.status = 0
			h.ServeHTTP(w, &r)
			if w.status != 200 {
				b.Errorf("status %d", w.status)
			}
		}
		b.Run(op.name+"/serial", func(b *testing.B) {
			rd := bytes.NewReader(raw)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			c0 := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				one(b, w, rd)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-c0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
		b.Run(op.name+"/c16", func(b *testing.B) {
			b.SetParallelism(8) // 8 x GOMAXPROCS (2 here) goroutines
			b.ReportAllocs()
			c0 := cpuTime(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rd := bytes.NewReader(raw)
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					one(b, w, rd)
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-c0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}
