package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

// runAt runs op b.N times with conc requests in flight and reports ops/s
// and the p99 latency.
func runAt(b *testing.B, conc int, op func() error) {
	var mu sync.Mutex
	var lats []time.Duration
	worker := func(next func() bool) {
		local := make([]time.Duration, 0, 1024)
		for next() {
			t0 := time.Now()
			if err := op(); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lats = append(lats, local...)
		mu.Unlock()
	}
	b.ResetTimer()
	start := time.Now()
	if conc == 1 {
		i := 0
		worker(func() bool { i++; return i <= b.N })
	} else {
		b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) { worker(pb.Next) })
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lats) == 0 {
		return
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkAPI measures full requests (client SigV4 signing, server
// verification, policy, service, audit group commit, JSON) against an
// in-process kmsd on SQLite and the dev backend, next to /healthz as the
// ceiling of the HTTP stack, at 1, 16 and 64 requests in flight. Client
// and server share the CPUs.
//
//	go test -run '^$' -bench API -benchtime 2s ./server/internal/httpapi
func BenchmarkAPI(b *testing.B) {
	srv := kmstest.Start(b)
	client := srv.HTTP.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 256 // shared with srv.Do
	keys := map[string]string{}
	blobs := map[string][]byte{}
	for _, prot := range []string{"SOFTWARE", "HSM"} {
		st, body := srv.Do(b, "POST", "/v1/keys", map[string]any{"protection_level": prot})
		if st != 201 {
			b.Fatalf("create: %d %s", st, body)
		}
		var md struct {
			KeyID string `json:"key_id"`
		}
		_ = json.Unmarshal(body, &md)
		keys[prot] = md.KeyID
		st, body = srv.Do(b, "POST", "/v1/encrypt", map[string]any{"key_id": md.KeyID, "plaintext": make([]byte, 32)})
		if st != 200 {
			b.Fatalf("encrypt: %d %s", st, body)
		}
		var enc struct {
			CiphertextBlob []byte `json:"ciphertext_blob"`
		}
		_ = json.Unmarshal(body, &enc)
		blobs[prot] = enc.CiphertextBlob
	}
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("c%d/healthz", conc), func(b *testing.B) {
			runAt(b, conc, func() error {
				resp, err := client.Get(srv.URL + "/healthz")
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return nil
			})
		})
		for _, prot := range []string{"SOFTWARE", "HSM"} {
			for _, op := range []struct {
				name, path string
				body       any
			}{
				{"Encrypt32", "/v1/encrypt", map[string]any{"key_id": keys[prot], "plaintext": make([]byte, 32)}},
				{"Decrypt32", "/v1/decrypt", map[string]any{"ciphertext_blob": blobs[prot]}},
				{"GenerateDataKey32", "/v1/generate-data-key", map[string]any{"key_id": keys[prot], "number_of_bytes": 32}},
			} {
				b.Run(fmt.Sprintf("c%d/%s/%s", conc, op.name, prot), func(b *testing.B) {
					runAt(b, conc, func() error {
						if st, body := srv.Do(b, http.MethodPost, op.path, op.body); st != 200 {
							return fmt.Errorf("%d %s", st, body)
						}
						return nil
					})
				})
			}
		}
	}
}
