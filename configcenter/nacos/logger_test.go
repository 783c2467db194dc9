package nacos

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	sdklogger "github.com/nacos-group/nacos-sdk-go/v2/common/logger"
)

type memWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (m *memWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b.Write(p)
}

func (m *memWriter) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b.String()
}

// The SDK's own content-bearing log calls, copied from nacos-sdk-go v2.3.2,
// go through the installed logger without the content.
func TestSafeLoggerRedactsSDKContentMessages(t *testing.T) {
	const canary = "CANARY-plaintext-55e1"
	var w memWriter
	clientMu.Lock()
	installSafeLogger(slog.New(slog.NewTextHandler(&w, &slog.HandlerOptions{Level: slog.LevelDebug})), slog.LevelDebug)
	clientMu.Unlock()
	l := sdklogger.GetLogger()

	tests := []struct {
		name string
		log  func()
		keep string
	}{
		{"data-received", func() {
			l.Infof("[config_rpc_client] [data-received] dataId=%s, group=%s, tenant=%s, md5=%s, content=%s, type=%s",
				"app.yaml", "G", "ns", "md5", "password: "+canary, "text")
		}, "[data-received]"},
		{"cache write error", func() {
			l.Error(errors.New("failed to write Config Content cache file, file name: x, value: " + canary + ", err:disk full"))
		}, "[redacted]"},
		{"request retry", func() {
			l.Errorf("Send request fail, request=%s, body=%s, retryTimes=%v, error=%+v", "ConfigPublishRequest", `{"content":"`+canary+`"}`, 2, errors.New("x"))
		}, "retryTimes=2"},
		{"numbers kept", func() { l.Warnf("took %v after %d tries", 2*time.Second, 3) }, "took 2s after 3 tries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(w.String())
			tc.log()
			got := w.String()[before:]
			if strings.Contains(got, canary) {
				t.Fatalf("content leaked: %s", got)
			}
			if !strings.Contains(got, tc.keep) {
				t.Fatalf("log line %q lacks %q", got, tc.keep)
			}
		})
	}

	// Below the threshold nothing is written.
	clientMu.Lock()
	installSafeLogger(slog.New(slog.NewTextHandler(&w, nil)), slog.LevelWarn)
	clientMu.Unlock()
	before := len(w.String())
	l.Infof("quiet %d", 1)
	if len(w.String()) != before {
		t.Fatal("info line passed a warn threshold")
	}
}
