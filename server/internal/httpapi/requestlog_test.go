package httpapi_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// requestLines returns the "request" log lines written so far.
func (l *lockedBuffer) requestLines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(l.b.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

// TestRequestLogLevels: a success is logged at debug level only (the audit
// log has it), a client error at info, with its route and status.
func TestRequestLogLevels(t *testing.T) {
	for _, tc := range []struct {
		name      string
		level     slog.Level
		path      string
		status    int
		wantLines int
		wantLevel string
	}{
		{"success hidden at info", slog.LevelInfo, "/healthz", 200, 0, ""},
		{"success shown at debug", slog.LevelDebug, "/healthz", 200, 1, "DEBUG"},
		{"client error at info", slog.LevelInfo, "/v1/keys", 401, 1, "INFO"},
		{"client error hidden at warn", slog.LevelWarn, "/v1/keys", 401, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf lockedBuffer
			srv := kmstest.Start(t, kmstest.WithLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tc.level}))))
			resp, err := http.Get(srv.URL + tc.path) // unsigned
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			lines := buf.requestLines(t)
			if len(lines) != tc.wantLines {
				t.Fatalf("%d request lines, want %d: %v", len(lines), tc.wantLines, lines)
			}
			if tc.wantLines == 1 && (lines[0]["level"] != tc.wantLevel || lines[0]["status"] != float64(tc.status)) {
				t.Fatalf("line %v, want level %s status %d", lines[0], tc.wantLevel, tc.status)
			}
		})
	}
}
