package awsapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/internal/awsapi"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// TestMaxInFlight: beyond MaxInFlight concurrent requests the answer is
// ThrottlingException, which SDKs retry with back-off.
func TestMaxInFlight(t *testing.T) {
	srv := kmstest.Start(t, kmstest.WithConfig(func(c *config.Config) { c.Limits.MaxInFlight = 1; c.Jobs.Enabled = false }))
	h := srv.App.Handler() // the router's in-flight limit covers the AWS route
	newReq := func(body io.Reader) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", body)
		r.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		r.Header.Set("Content-Type", awsapi.ContentType)
		return r
	}
	// The first request holds the only slot while its body is still
	// arriving. A probe may take the slot just before the first request
	// does, which then is throttled itself and ends at once: start it again.
	deadline := time.Now().Add(30 * time.Second)
	var (
		pw    *io.PipeWriter
		first chan int
	)
	start := func() {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		first = make(chan int, 1)
		go func(r *http.Request, done chan<- int) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			done <- w.Code
		}(newReq(pr), first)
	}
	start()
	for {
		select {
		case <-first: // throttled by a probe: it never held the slot
			pw.Close()
			start()
		default:
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, newReq(strings.NewReader("{}")))
		if w.Code == http.StatusBadRequest && strings.Contains(w.Body.String(), `"__type":"ThrottlingException"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ThrottlingException while a request is in flight: %d %s", w.Code, w.Body.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	pw.Close()
	if code := <-first; code != http.StatusForbidden { // unsigned: MissingAuthenticationToken, after the slot
		t.Fatalf("first request: %d", code)
	}
	// The slot is free again.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, newReq(strings.NewReader("{}")))
	if strings.Contains(w.Body.String(), "ThrottlingException") {
		t.Fatalf("still throttled: %s", w.Body.String())
	}
}
