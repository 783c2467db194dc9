package httpapi_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// TestKeysOnSoftHSM runs the crypto routes with HSM and SOFTWARE keys on a
// real PKCS#11 token.
func TestKeysOnSoftHSM(t *testing.T) {
	srv := kmstest.Start(t, kmstest.WithHSM(softhsmtest.Backend(t)))
	for _, prot := range []string{"HSM", "SOFTWARE"} {
		t.Run(prot, func(t *testing.T) {
			id := createKey(t, srv, map[string]any{"protection_level": prot})
			blob := encrypt(t, srv, id, []byte("on a token"), map[string]string{"p": prot})
			var dec kmsapi.DecryptResponse
			call(t, srv, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": blob, "encryption_context": map[string]string{"p": prot}}, 200, &dec)
			if string(dec.Plaintext) != "on a token" {
				t.Fatalf("decrypt %q", dec.Plaintext)
			}
			var dk kmsapi.GenerateDataKeyResponse
			call(t, srv, "POST", "/v1/generate-data-key", map[string]any{"key_id": id, "number_of_bytes": 32}, 200, &dk)
			if len(dk.Plaintext) != 32 {
				t.Fatalf("data key %d bytes", len(dk.Plaintext))
			}
		})
	}
}

// faultyHSM is a real dev backend whose crypto calls can be made to fail
// with hsm.ErrUnavailable, standing in for an HSM outage (which a real
// token cannot be made to have on demand in a unit test).
type faultyHSM struct {
	hsm.Backend
	down atomic.Bool
}

func (f *faultyHSM) err() error {
	if f.down.Load() {
		return fmt.Errorf("%w: injected outage", hsm.ErrUnavailable)
	}
	return nil
}

func (f *faultyHSM) Encrypt(ctx context.Context, id string, pt, aad []byte) (hsm.Sealed, error) {
	if err := f.err(); err != nil {
		return hsm.Sealed{}, err
	}
	return f.Backend.Encrypt(ctx, id, pt, aad)
}

func (f *faultyHSM) Decrypt(ctx context.Context, id string, ct hsm.Sealed, aad []byte) ([]byte, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Backend.Decrypt(ctx, id, ct, aad)
}

func (f *faultyHSM) Health(ctx context.Context) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Backend.Health(ctx)
}

func TestHSMOutageIs503(t *testing.T) {
	dev, err := devhsm.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	f := &faultyHSM{Backend: dev}
	srv := kmstest.Start(t, kmstest.WithHSM(f))
	id := createKey(t, srv, map[string]any{"protection_level": "HSM"})
	blob := encrypt(t, srv, id, []byte("x"), nil)

	f.down.Store(true)
	for _, tc := range []struct{ path, body string }{
		{"/v1/encrypt", `{"key_id":"` + id + `","plaintext":"eA=="}`},
		{"/v1/decrypt", `{"ciphertext_blob":"` + b64(blob) + `"}`},
	} {
		resp, body := send(t, srv, "POST", tc.path, []byte(tc.body), time.Now(), nil)
		checkError(t, resp, body, http.StatusServiceUnavailable, kmsapi.CodeHSMUnavailable)
		if resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: no Retry-After", tc.path)
		}
	}
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz during outage: %d", resp.StatusCode)
	}
	f.down.Store(false)
	call(t, srv, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": blob}, 200, nil)
	recs := auditRecords(t, srv)
	n := 0
	for _, r := range recs {
		if r["reason_code"] == kmsapi.CodeHSMUnavailable {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d audit records of the outage, want 2", n)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// slowHSM blocks Encrypt until released, to hold a request in flight.
type slowHSM struct {
	hsm.Backend
	entered chan struct{}
	release chan struct{}
}

func (s *slowHSM) Encrypt(ctx context.Context, id string, pt, aad []byte) (hsm.Sealed, error) {
	if id != hsm.RootKeyID {
		s.entered <- struct{}{}
		<-s.release
	}
	return s.Backend.Encrypt(ctx, id, pt, aad)
}

func TestTooManyRequestsIs429(t *testing.T) {
	dev, err := devhsm.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	slow := &slowHSM{Backend: dev, entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv := kmstest.Start(t, kmstest.WithHSM(slow), kmstest.WithConfig(func(c *config.Config) { c.Limits.MaxInFlight = 1 }))
	id := createKey(t, srv, map[string]any{"protection_level": "HSM"})
	done := make(chan int)
	go func() {
		st, _ := srv.Do(t, "POST", "/v1/encrypt", map[string]any{"key_id": id, "plaintext": []byte("x")})
		done <- st
	}()
	<-slow.entered // the first request holds the only slot
	resp, body := send(t, srv, "GET", "/v1/keys", nil, time.Now(), nil)
	checkError(t, resp, body, http.StatusTooManyRequests, kmsapi.CodeTooManyRequests)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	if r, err := http.Get(srv.URL + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("healthz must not be limited: %v", err)
	} else {
		r.Body.Close()
	}
	close(slow.release)
	if st := <-done; st != 200 {
		t.Fatalf("held request: %d", st)
	}
	call(t, srv, "GET", "/v1/keys", nil, 200, nil)
}
