package kmsclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the Write calls made on a client connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func bodyTestClient(t *testing.T, url string, rt http.RoundTripper) *Client {
	t.Helper()
	c, err := New(Config{Endpoint: url, AccessKeyID: "AKIDBODYTEST", SecretAccessKey: "secret-body-test",
		HTTPClient: &http.Client{Transport: rt}, MaxRetries: -1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sendBody(t *testing.T, c *Client, body *bodyBuffer) error {
	t.Helper()
	sum := sha256.Sum256(body.b)
	op := call{method: http.MethodPost, path: "/v1/encrypt", secretBody: body.tracked || body.locked}
	return c.attempt(context.Background(), op, c.base.String()+"/v1/encrypt", body, hex.EncodeToString(sum[:]))
}

func zeroed(b []byte) bool { return bytes.Equal(b, make([]byte, len(b))) }

// Headers and body leave in one write, secret or not: any body type other
// than the in-memory ones of the standard library makes net/http flush the
// headers first.
func TestBodySentInOneWrite(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	for _, secret := range []bool{false, true} {
		var writes atomic.Int64
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{conn, &writes}, nil
		}
		c := bodyTestClient(t, srv.URL, tr)
		payload := []byte(`{"key_id":"k","plaintext":"c2VjcmV0"}`)
		body := newBodyBuffer(bytes.Clone(payload), secret, tr)
		if err := sendBody(t, c, body); err != nil {
			t.Fatalf("secret=%v: %v", secret, err)
		}
		if b := <-got; !bytes.Equal(b, payload) {
			t.Fatalf("secret=%v: server read %q", secret, b)
		}
		if n := writes.Load(); n != 1 {
			t.Errorf("secret=%v: request sent in %d writes, want 1", secret, n)
		}
		if secret { // do wipes secret bodies only
			body.wipe()
		}
		if secret != zeroed(body.b) {
			t.Errorf("secret=%v: body zeroed = %v after the call", secret, zeroed(body.b))
		}
		tr.CloseIdleConnections()
	}
}

// A server that answers before reading the body leaves the transport still
// writing it when the call returns: the buffer is cleared only once that
// write ends, and never under it (run with -race).
func TestSecretBodyWipedAfterEarlyAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}))
	defer srv.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	c := bodyTestClient(t, srv.URL, tr)
	body := newBodyBuffer(bytes.Repeat([]byte{'s'}, 8<<20), true, tr)
	if err := sendBody(t, c, body); err == nil {
		t.Fatal("413 answered as success")
	}
	body.mu.Lock()
	inFlight := body.writing
	body.mu.Unlock()
	t.Logf("writes in flight at wipe: %d", inFlight)
	body.wipe()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body.mu.Lock()
		done := body.writing == 0 && zeroed(body.b)
		body.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("secret body never cleared after the transport's write ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lateReader is a RoundTripper that answers at once and reads the body
// afterwards, as the RoundTripper contract allows.
type lateReader struct {
	wg   sync.WaitGroup
	read []byte
	err  error
}

func (l *lateReader) RoundTrip(r *http.Request) (*http.Response, error) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		time.Sleep(20 * time.Millisecond)
		l.read, l.err = io.ReadAll(r.Body)
		_ = r.Body.Close()
	}()
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader([]byte(`{}`))), Request: r}, nil
}

// On a RoundTripper that is not an *http.Transport the secret body is read
// under the buffer's lock: a read after wipe fails instead of racing it.
func TestSecretBodyOtherRoundTripper(t *testing.T) {
	rt := &lateReader{}
	c := bodyTestClient(t, "http://127.0.0.1:1", rt)
	body := newBodyBuffer(bytes.Repeat([]byte{'s'}, 64), true, rt)
	if !body.locked {
		t.Fatal("secret body on a custom RoundTripper is not lock-guarded")
	}
	if err := sendBody(t, c, body); err != nil {
		t.Fatal(err)
	}
	body.wipe()
	rt.wg.Wait()
	if !zeroed(body.b) {
		t.Fatal("body not cleared")
	}
	if rt.err == nil || bytes.Contains(rt.read, []byte{'s'}) {
		t.Fatalf("late read after wipe got %q, %v", rt.read, rt.err)
	}
}
