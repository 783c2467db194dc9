package kmsclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// loseFirstAnswer carries requests to a real kmsd; the first POST to path
// reaches the server and is served, but its answer is replaced by a 503,
// as if the connection broke after the server committed. It keeps every
// body sent to path.
type loseFirstAnswer struct {
	next   http.RoundTripper
	path   string
	mu     sync.Mutex
	bodies []string
}

func (l *loseFirstAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := l.next.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost || r.URL.Path != l.path {
		return resp, err
	}
	l.mu.Lock()
	l.bodies = append(l.bodies, string(body))
	first := len(l.bodies) == 1
	l.mu.Unlock()
	if !first {
		return resp, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	lost := `{"error":{"code":"HSMUnavailable","message":"answer lost"}}`
	return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(lost)), ContentLength: int64(len(lost)), Request: r}, nil
}

func (l *loseFirstAnswer) tokens(t *testing.T) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, b := range l.bodies {
		var v struct {
			Token string `json:"idempotency_token"`
		}
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v.Token)
	}
	return out
}

// TestRetriedCreateIsIdempotent: the client sends one generated token on
// every attempt of a call, so a create whose answer was lost is not
// repeated by the retry: one key (one access key) exists and the retry
// answers it.
func TestRetriedCreateIsIdempotent(t *testing.T) {
	srv := kmstest.Start(t)
	fast := func(c *kmsclient.Config) { c.RetryBaseDelay, c.RetryMaxDelay = time.Millisecond, 5*time.Millisecond }
	ctx := context.Background()

	t.Run("CreateKey", func(t *testing.T) {
		rt := &loseFirstAnswer{next: srv.HTTP.Client().Transport, path: "/v1/keys"}
		c := e2eClient(t, srv, srv.AccessKeyID, srv.SecretAccessKey, rt, fast)
		md, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{Description: "lost answer"})
		if err != nil {
			t.Fatal(err)
		}
		toks := rt.tokens(t)
		if len(toks) != 2 || toks[0] == "" || toks[0] != toks[1] {
			t.Fatalf("tokens sent: %q, want the same generated token twice", toks)
		}
		var n int64
		if err := srv.App.DB.Table("kms_keys").Where("description = ?", "lost answer").Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%d keys created by one call, want 1", n)
		}
		got, err := c.DescribeKey(ctx, md.KeyID)
		if err != nil || got.Description != "lost answer" {
			t.Fatalf("answered key %s: %v %v", md.KeyID, got, err)
		}
		// A new call is a new request: a new token, a new key.
		md2, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{Description: "lost answer"})
		if err != nil || md2.KeyID == md.KeyID {
			t.Fatalf("second call: %v %v", md2, err)
		}
		if toks := rt.tokens(t); len(toks) != 3 || toks[2] == toks[0] {
			t.Fatalf("second call reused the token: %q", toks)
		}
		// A caller-chosen token is sent as given and must be valid.
		if _, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{IdempotencyToken: "not valid!"}); err == nil {
			t.Fatal("invalid token accepted by the client")
		}
	})

	t.Run("CreateAccessKey", func(t *testing.T) {
		rt := &loseFirstAnswer{next: srv.HTTP.Client().Transport, path: "/v1/access-keys"}
		c := e2eClient(t, srv, srv.AccessKeyID, srv.SecretAccessKey, rt, fast)
		var before int64
		srv.App.DB.Table("kms_access_keys").Count(&before)
		k, err := c.CreateAccessKey(ctx, "lost answer", kmsclient.AdminPolicy())
		if err != nil {
			t.Fatal(err)
		}
		if !k.IdempotentReplay || k.SecretAccessKey != "" || k.AccessKeyID == "" {
			t.Fatalf("retry answer %+v: want the created key, flagged as a replay, without secret", k)
		}
		var after int64
		srv.App.DB.Table("kms_access_keys").Count(&after)
		if after != before+1 {
			t.Fatalf("%d access keys created by one call, want 1", after-before)
		}
		if toks := rt.tokens(t); len(toks) != 2 || toks[0] != toks[1] {
			t.Fatalf("tokens sent: %q", toks)
		}
	})
}
