package main

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"slices"
	"testing"
	"time"
)

func TestPidCPU(t *testing.T) {
	if got := pidCPU(0); got != -1 {
		t.Fatalf("pid 0: %v, want -1", got)
	}
	if got := pidCPU(1 << 30); got != -1 {
		t.Fatalf("no such pid: %v, want -1", got)
	}
	before := pidCPU(os.Getpid())
	if before < 0 {
		t.Fatalf("own pid: %v", before)
	}
	// Burn at least 100 ms of CPU (10 clock ticks), however slow the machine.
	sum := sha256.Sum256(nil)
	for deadline := time.Now().Add(30 * time.Second); pidCPU(os.Getpid())-before < 100*time.Millisecond; {
		for range 10000 {
			sum = sha256.Sum256(sum[:])
		}
		if time.Now().After(deadline) {
			t.Fatal("CPU time did not grow")
		}
	}
}

func TestGinRatiosAndServerCPU(t *testing.T) {
	r := newReport(options{Duration: time.Second})
	sum := func(ops float64) summary { return summary{Requests: 1000, OpsPerSec: ops, Elapsed: time.Second} }
	r.add(cell{op: opGin, concurrency: 16}, sum(20000), nil, 0, 40*time.Millisecond)                                // 40 µs/op
	r.add(cell{op: opEncrypt, protection: protSoftware, concurrency: 16}, sum(10000), nil, 0, 100*time.Millisecond) // 100 µs/op
	r.add(cell{op: opEncrypt, protection: protHSM, concurrency: 64}, sum(5000), nil, 0, -1)
	r.finish()
	enc := r.Results[1]
	if enc.RatioGin == nil || *enc.RatioGin != 0.5 {
		t.Fatalf("ratio to gin %v, want 0.5", enc.RatioGin)
	}
	if enc.ServerCPUUsPerOp == nil || *enc.ServerCPUUsPerOp != 100 || enc.ServerCPUxGin == nil || *enc.ServerCPUxGin != 2.5 {
		t.Fatalf("server cpu %v µs/op, ×gin %v; want 100 and 2.5", enc.ServerCPUUsPerOp, enc.ServerCPUxGin)
	}
	if hsm := r.Results[2]; hsm.RatioGin != nil || hsm.ServerCPUUsPerOp != nil {
		t.Fatalf("a row without a gin baseline or server CPU got ratios: %+v", hsm)
	}
}

func TestGinOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantOps []string
		wantErr error
	}{
		{"gin first", []string{"--gin-endpoint", "http://127.0.0.1:9", "--ops", "encrypt,healthz"}, []string{opGin, opHealthz, opEncrypt}, nil},
		{"gin without endpoint", []string{"--ops", "gin,encrypt"}, nil, ErrUsage},
		{"remote gin", []string{"--gin-endpoint", "http://10.0.0.1:9"}, nil, ErrRemoteEndpoint},
		{"negative pid", []string{"--server-pid", "-1"}, nil, ErrUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseArgs(tc.args, io.Discard)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err == nil && !slices.Equal(o.Ops, tc.wantOps) {
				t.Fatalf("ops %v, want %v", o.Ops, tc.wantOps)
			}
		})
	}
}
