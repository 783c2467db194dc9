package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

func TestRunCell(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name        string
		cfg         cellConfig
		fn          func(calls int64) error
		sleep       time.Duration
		wantReqs    func(n int) bool
		wantErrs    func(n, reqs int) bool
		wantKinds   map[string]bool
		maxDuration time.Duration
	}{
		{
			name: "stops at max requests before the deadline",
			cfg:  cellConfig{Concurrency: 8, Duration: time.Minute, MaxRequests: 500, Timeout: time.Second},
			fn:   func(int64) error { return nil },
			// Exactly the cap: issued counts every started request.
			wantReqs:    func(n int) bool { return n == 500 },
			wantErrs:    func(n, _ int) bool { return n == 0 },
			maxDuration: 10 * time.Second,
		},
		{
			name:        "stops at the deadline",
			cfg:         cellConfig{Concurrency: 4, Duration: 200 * time.Millisecond, MaxRequests: maxMaxRequests, Timeout: time.Second},
			fn:          func(int64) error { return nil },
			sleep:       time.Millisecond,
			wantReqs:    func(n int) bool { return n > 0 && n < maxMaxRequests },
			wantErrs:    func(n, _ int) bool { return n == 0 },
			maxDuration: 3 * time.Second,
		},
		{
			name:        "every error counted and classified",
			cfg:         cellConfig{Concurrency: 3, Duration: 100 * time.Millisecond, MaxRequests: 300, Timeout: time.Second},
			fn:          func(int64) error { return &kmsclient.APIError{StatusCode: 401, Code: "Unauthenticated"} },
			wantReqs:    func(n int) bool { return n > 0 },
			wantErrs:    func(n, reqs int) bool { return n == reqs },
			wantKinds:   map[string]bool{"Unauthenticated (401)": true},
			maxDuration: 3 * time.Second,
		},
		{
			name: "mixed outcomes",
			cfg:  cellConfig{Concurrency: 2, Duration: time.Minute, MaxRequests: 100, Timeout: time.Second},
			fn: func(n int64) error {
				if n%2 == 0 {
					return errBoom
				}
				return nil
			},
			wantReqs:    func(n int) bool { return n == 100 },
			wantErrs:    func(n, _ int) bool { return n == 50 },
			wantKinds:   map[string]bool{"transport error": true},
			maxDuration: 5 * time.Second,
		},
		{
			name: "a request that never returns is cut by the per-request timeout",
			cfg:  cellConfig{Concurrency: 2, Duration: 100 * time.Millisecond, MaxRequests: 100, Timeout: 200 * time.Millisecond},
			fn:   nil, // blocks until its context ends
			wantReqs: func(n int) bool {
				return n >= 2 && n <= 4 // one per worker, maybe a second started before the deadline
			},
			wantErrs:    func(n, reqs int) bool { return n == reqs },
			wantKinds:   map[string]bool{"timeout": true},
			maxDuration: 2 * time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			fn := func(ctx context.Context) error {
				n := calls.Add(1)
				if tc.fn == nil {
					<-ctx.Done()
					return ctx.Err()
				}
				if tc.sleep > 0 {
					time.Sleep(tc.sleep)
				}
				return tc.fn(n)
			}
			start := time.Now()
			cr := runCell(context.Background(), tc.cfg, fn)
			if took := time.Since(start); took > tc.maxDuration {
				t.Fatalf("runCell took %v, bound %v", took, tc.maxDuration)
			}
			reqs := len(cr.Latencies) + cr.Errors
			if !tc.wantReqs(reqs) {
				t.Fatalf("requests = %d (ok %d, errors %d)", reqs, len(cr.Latencies), cr.Errors)
			}
			if !tc.wantErrs(cr.Errors, reqs) {
				t.Fatalf("errors = %d of %d", cr.Errors, reqs)
			}
			if int64(reqs) != calls.Load() {
				t.Fatalf("recorded %d requests, fn called %d times", reqs, calls.Load())
			}
			for k := range cr.ErrorKind {
				if !tc.wantKinds[k] {
					t.Fatalf("unexpected error kind %q in %v", k, cr.ErrorKind)
				}
			}
			for k := range tc.wantKinds {
				if cr.ErrorKind[k] == 0 {
					t.Fatalf("error kind %q missing from %v", k, cr.ErrorKind)
				}
			}
		})
	}
}

func TestRunCellWarmupNotRecorded(t *testing.T) {
	var calls atomic.Int64
	cr := runCell(context.Background(), cellConfig{
		Concurrency: 2, Warmup: 100 * time.Millisecond, Duration: time.Minute, MaxRequests: 50, Timeout: time.Second,
	}, func(context.Context) error {
		calls.Add(1)
		time.Sleep(time.Millisecond)
		return nil
	})
	if len(cr.Latencies) != 50 || cr.Errors != 0 {
		t.Fatalf("measured %d ok, %d errors; want exactly the 50 capped requests", len(cr.Latencies), cr.Errors)
	}
	if calls.Load() <= 50 {
		t.Fatalf("fn called %d times: the warm-up did not run", calls.Load())
	}
}

func TestRunCellInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	cr := runCell(ctx, cellConfig{Concurrency: 4, Duration: time.Minute, MaxRequests: maxMaxRequests, Timeout: time.Minute},
		func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
				return nil
			}
		})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("interrupted cell took %v", took)
	}
	if cr.Errors != 0 {
		t.Fatalf("an interruption was counted as %d server errors: %v", cr.Errors, cr.ErrorKind)
	}
}

func TestErrorKindBounded(t *testing.T) {
	m := map[string]int{}
	for i := range 20 {
		addKind(m, string(rune('a'+i)))
	}
	if len(m) != maxErrorKinds+1 || m["other"] != 20-maxErrorKinds {
		t.Fatalf("kinds not bounded: %v", m)
	}
}
