package kmsclient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestRunJobWaitsAndIsNotRetried: RunJob waits longer than Config.Timeout
// for a job's answer, never retries (a retry could run the job twice) and
// turns 409 JobRunning into ErrJobRunning.
func TestRunJobWaitsAndIsNotRetried(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		code    string
		delay   time.Duration
		wantErr error
	}{
		{"slow answer beyond Timeout", 200, "", 300 * time.Millisecond, nil},
		{"running elsewhere", 409, CodeJobRunning, 0, ErrJobRunning},
		{"server fault not retried", 503, CodeHSMUnavailable, 0, ErrHSMUnavailable},
		{"unknown job", 404, CodeNotFound, 0, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) {
				time.Sleep(tt.delay)
				if tt.status != 200 {
					writeError(w, tt.status, tt.code, "no")
					return
				}
				writeJSON(w, 200, map[string]any{"job": "j", "outcome": "ok", "items": 0, "changes": []any{}})
			})
			c := d.client(t, func(cfg *Config) { cfg.Timeout = 50 * time.Millisecond })
			r, err := c.RunJob(context.Background(), "j")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && (r == nil || r.Outcome != JobOutcomeOK)) {
				t.Fatalf("RunJob = %+v, %v; want error %v", r, err, tt.wantErr)
			}
			if n := d.count(); n != 1 {
				t.Fatalf("%d requests, want 1 (no retry)", n)
			}
		})
	}
	// The caller's context still bounds the wait.
	d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := d.client(t, nil).RunJob(ctx, "j"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RunJob past the caller's deadline: %v", err)
	}
}
