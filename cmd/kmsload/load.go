package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// opFunc performs one request. A nil error is a success.
type opFunc func(ctx context.Context) error

// cellConfig bounds one measured cell.
type cellConfig struct {
	Concurrency int
	Warmup      time.Duration // unrecorded phase before the measurement
	Duration    time.Duration // measured phase
	MaxRequests int           // cap on measured requests
	Timeout     time.Duration // per request
	ServerPID   int           // process whose CPU time is measured (0: none)
}

// cellRun is the raw outcome of a cell.
type cellRun struct {
	Latencies []time.Duration // successful requests
	Errors    int
	ErrorKind map[string]int // error class -> count (bounded)
	Elapsed   time.Duration
	// ClientCPU is the CPU time (user+system) this process spent during
	// the measured phase: on a shared 2-core machine the load generator
	// competes with kmsd, and this shows by how much.
	ClientCPU time.Duration
	// ServerCPU is the CPU time of cfg.ServerPID during the measured
	// phase (-1 when unknown).
	ServerCPU time.Duration
}

// maxErrorKinds bounds the distinct error classes kept per cell.
const maxErrorKinds = 8

// runCell runs fn from cfg.Concurrency closed-loop workers: first for
// cfg.Warmup without recording, then for cfg.Duration or until
// cfg.MaxRequests requests were issued, whichever comes first. Each
// request is bounded by cfg.Timeout, so runCell returns within about
// Warmup + Duration + Timeout even against a server that never answers.
func runCell(ctx context.Context, cfg cellConfig, fn opFunc) cellRun {
	if cfg.Warmup > 0 {
		phase(ctx, cfg, cfg.Warmup, 0, fn, false)
	}
	return phase(ctx, cfg, cfg.Duration, cfg.MaxRequests, fn, true)
}

func phase(ctx context.Context, cfg cellConfig, d time.Duration, maxRequests int, fn opFunc, record bool) cellRun {
	cpu0, srv0 := processCPU(), pidCPU(cfg.ServerPID)
	start := time.Now()
	deadline := start.Add(d)
	// In-flight requests may finish after the deadline, but not after this.
	pctx, cancel := context.WithDeadline(ctx, deadline.Add(cfg.Timeout))
	defer cancel()

	var issued atomic.Int64
	type part struct {
		lat   []time.Duration
		errs  int
		kinds map[string]int
	}
	parts := make([]part, cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Go(func() {
			p := &parts[w]
			if record {
				p.lat = make([]time.Duration, 0, 1024)
				p.kinds = make(map[string]int)
			}
			for pctx.Err() == nil && time.Now().Before(deadline) {
				if maxRequests > 0 && issued.Add(1) > int64(maxRequests) {
					return
				}
				rctx, rcancel := context.WithTimeout(pctx, cfg.Timeout)
				t0 := time.Now()
				err := fn(rctx)
				el := time.Since(t0)
				rcancel()
				if !record {
					continue
				}
				if err == nil {
					p.lat = append(p.lat, el)
					continue
				}
				if ctx.Err() != nil {
					// The caller interrupted the run: not a server failure.
					return
				}
				p.errs++
				addKind(p.kinds, errorKind(err))
			}
		})
	}
	wg.Wait()
	out := cellRun{Elapsed: time.Since(start), ErrorKind: map[string]int{}, ClientCPU: processCPU() - cpu0, ServerCPU: -1}
	if srv1 := pidCPU(cfg.ServerPID); srv0 >= 0 && srv1 >= srv0 {
		out.ServerCPU = srv1 - srv0
	}
	if !record {
		return out
	}
	n := 0
	for _, p := range parts {
		n += len(p.lat)
	}
	out.Latencies = make([]time.Duration, 0, n)
	for _, p := range parts {
		out.Latencies = append(out.Latencies, p.lat...)
		out.Errors += p.errs
		for k, v := range p.kinds {
			addKindN(out.ErrorKind, k, v)
		}
	}
	return out
}

func addKind(m map[string]int, k string) { addKindN(m, k, 1) }

func addKindN(m map[string]int, k string, n int) {
	if _, ok := m[k]; !ok && len(m) >= maxErrorKinds {
		k = "other"
	}
	m[k] += n
}

// statusError is a non-2xx answer to an unsigned baseline request.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d", e.code) }

// errorKind classifies err for the report without quoting any payload.
func errorKind(err error) string {
	var ae *kmsclient.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("%s (%d)", ae.Code, ae.StatusCode)
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if errors.Is(err, kmsclient.ErrMalformedResponse) {
		return "malformed response"
	}
	return "transport error"
}

// newTransport returns the keep-alive transport every worker shares, with
// enough idle connections for the largest concurrency.
func newTransport(maxConc int) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // loopback: never through a proxy
		MaxIdleConns:        maxConc + 16,
		MaxIdleConnsPerHost: maxConc + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// processCPU returns the user+system CPU time of this process so far (0
// where getrusage is unavailable).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pidCPU returns the user+system CPU time of process pid from
// /proc/PID/stat (clock ticks of 10 ms), or -1 when unknown.
func pidCPU(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(ut+st) * tick
}
