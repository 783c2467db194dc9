package awsapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/awsapi"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// BenchmarkEncrypt compares one signed Encrypt of 32 bytes through the AWS
// protocol with the same call through /v1 on the same server and client
// (the baseline), so the ratio is the adapter's cost.
func BenchmarkEncrypt(b *testing.B) {
	srv := kmstest.Start(b)
	st, body := srv.Do(b, http.MethodPost, "/v1/keys", map[string]any{"alias": "alias/bench"})
	if st != http.StatusCreated {
		b.Fatalf("create key: %d %s", st, body)
	}
	pt := bytes.Repeat([]byte("x"), 32)
	v1, _ := json.Marshal(map[string]any{"key_id": "alias/bench", "plaintext": pt})
	aws, _ := json.Marshal(map[string]any{"KeyId": "alias/bench", "Plaintext": pt})
	send := func(b *testing.B, path string, body []byte, hdr map[string]string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if err := srv.Sign(req, srv.AccessKeyID, srv.SecretAccessKey, body, time.Now()); err != nil {
			b.Fatal(err)
		}
		resp, err := srv.HTTP.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		_, _ = out.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d %s", path, resp.StatusCode, out.Bytes())
		}
	}
	b.Run("v1", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			send(b, "/v1/encrypt", v1, map[string]string{"Content-Type": "application/json"})
		}
	})
	b.Run("aws", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			send(b, "/", aws, map[string]string{"Content-Type": awsapi.ContentType, "X-Amz-Target": "TrentService.Encrypt"})
		}
	})
}
