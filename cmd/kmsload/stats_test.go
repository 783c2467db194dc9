package main

import (
	"testing"
	"time"
)

func ds(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", ds(7), 50, 7 * time.Millisecond},
		{"single p99", ds(7), 99, 7 * time.Millisecond},
		{"p0 is not a percentile", ds(1, 2, 3), 0, 0},
		{"negative", ds(1, 2, 3), -5, 0},
		{"p100 is max", ds(1, 2, 3), 100, 3 * time.Millisecond},
		{"above 100 is max", ds(1, 2, 3), 150, 3 * time.Millisecond},
		{"two values p50 nearest rank", ds(1, 9), 50, 1 * time.Millisecond},
		{"two values p51", ds(1, 9), 51, 9 * time.Millisecond},
		{"1..100 p50", hundred, 50, 50 * time.Millisecond},
		{"1..100 p90", hundred, 90, 90 * time.Millisecond},
		{"1..100 p99", hundred, 99, 99 * time.Millisecond},
		{"1..100 p99.5", hundred, 99.5, 100 * time.Millisecond},
		{"tail outlier shows in p99 of 10", ds(1, 1, 1, 1, 1, 1, 1, 1, 1, 500), 99, 500 * time.Millisecond},
		{"tail outlier hidden from p90 of 10", ds(1, 1, 1, 1, 1, 1, 1, 1, 1, 500), 90, 1 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Fatalf("percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		lat     []time.Duration
		errors  int
		elapsed time.Duration
		want    summary
	}{
		{
			name: "unsorted input", lat: ds(5, 1, 3, 2, 4), elapsed: time.Second,
			want: summary{Requests: 5, Elapsed: time.Second, OpsPerSec: 5, Mean: 3 * time.Millisecond,
				P50: 3 * time.Millisecond, P90: 5 * time.Millisecond, P99: 5 * time.Millisecond, Max: 5 * time.Millisecond},
		},
		{
			name: "errors count as requests but not as ops", lat: ds(2, 2), errors: 3, elapsed: 500 * time.Millisecond,
			want: summary{Requests: 5, Errors: 3, Elapsed: 500 * time.Millisecond, OpsPerSec: 4, Mean: 2 * time.Millisecond,
				P50: 2 * time.Millisecond, P90: 2 * time.Millisecond, P99: 2 * time.Millisecond, Max: 2 * time.Millisecond},
		},
		{
			name: "only errors", errors: 7, elapsed: time.Second,
			want: summary{Requests: 7, Errors: 7, Elapsed: time.Second},
		},
		{
			name: "zero elapsed gives no rate", lat: ds(1),
			want: summary{Requests: 1, Mean: time.Millisecond, P50: time.Millisecond, P90: time.Millisecond, P99: time.Millisecond, Max: time.Millisecond},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := summarize(tc.lat, tc.errors, tc.elapsed); got != tc.want {
				t.Fatalf("summarize = %+v\nwant        %+v", got, tc.want)
			}
		})
	}
}

func TestReportChecks(t *testing.T) {
	r := &report{}
	add := func(op, prot string, c int, ops float64, p99 time.Duration, errs int) {
		r.add(cell{op: op, protection: prot, concurrency: c},
			summary{Requests: 1000, Errors: errs, OpsPerSec: ops, P99: p99}, nil, 0, -1)
	}
	add(opHealthz, "", 16, 10000, time.Millisecond, 0)
	add(opDescribeKey, "", 16, 4000, time.Millisecond, 0)         // baselines get no checks
	add(opEncrypt, protSoftware, 16, 6000, 4*time.Millisecond, 0) // ratio 0.6, p99 ok
	add(opDecrypt, protSoftware, 16, 4000, 6*time.Millisecond, 0) // ratio 0.4, p99 too high
	add(opEncrypt, protHSM, 16, 2000, 3*time.Millisecond, 0)      // no ratio check for HSM
	add(opGenerateDataKey, protSoftware, 16, 9000, time.Millisecond, 2)
	add(opEncrypt, protSoftware, 1, 900, time.Millisecond, 0) // no healthz at c=1: no ratio
	r.finish()

	type key struct{ name, op, prot string }
	got := map[key]bool{}
	for _, c := range r.Checks {
		got[key{c.Name, c.Op, c.Protection}] = c.Pass
	}
	want := map[key]bool{
		{"software_rate_vs_healthz", opEncrypt, protSoftware}:         true,
		{"software_rate_vs_healthz", opDecrypt, protSoftware}:         false,
		{"software_rate_vs_healthz", opGenerateDataKey, protSoftware}: false, // errors fail the check
		{"p99_at_c16", opEncrypt, protSoftware}:                       true,
		{"p99_at_c16", opDecrypt, protSoftware}:                       false,
		{"p99_at_c16", opEncrypt, protHSM}:                            true,
		{"p99_at_c16", opGenerateDataKey, protSoftware}:               false,
		{"hsm_rate_vs_software", opEncrypt, protHSM}:                  false, // 2000 / 6000
		{"p50_at_c1", opEncrypt, protSoftware}:                        true,
	}
	if len(got) != len(want) {
		t.Fatalf("checks %v, want %v", got, want)
	}
	for k, v := range want {
		if pass, ok := got[k]; !ok || pass != v {
			t.Errorf("check %v: got %v (present %v), want %v", k, pass, ok, v)
		}
	}
	enc := r.Results[2]
	if enc.RatioHealthz == nil || *enc.RatioHealthz != 0.6 || enc.RatioDescribeKey == nil || *enc.RatioDescribeKey != 1.5 {
		t.Fatalf("encrypt ratios %v %v", enc.RatioHealthz, enc.RatioDescribeKey)
	}
	if r.Results[6].RatioHealthz != nil {
		t.Fatal("ratio computed without a baseline at that concurrency")
	}
}

// TestReportChecksAgainstGin: with a gin row at the same concurrency the
// rate and CPU targets are against gin, and p50 at c=1 and the HSM ratio
// are checked.
func TestReportChecksAgainstGin(t *testing.T) {
	var r report
	add := func(op, prot string, c int, ops float64, p50 time.Duration, cpuPerOp time.Duration) {
		r.add(cell{op: op, protection: prot, concurrency: c},
			summary{Requests: 1000, OpsPerSec: ops, P50: p50, P99: time.Millisecond}, nil, 0, 1000*cpuPerOp)
	}
	add(opGin, "", 16, 20000, time.Millisecond, 40*time.Microsecond)
	add(opEncrypt, protSoftware, 16, 11000, time.Millisecond, 90*time.Microsecond) // 0.55x, 2.25x: pass
	add(opDecrypt, protSoftware, 16, 9000, time.Millisecond, 110*time.Microsecond) // 0.45x, 2.75x: fail
	add(opEncrypt, protHSM, 16, 9000, time.Millisecond, 100*time.Microsecond)      // 0.82x SOFTWARE: pass
	add(opGin, "", 1, 5000, 150*time.Microsecond, 100*time.Microsecond)
	add(opEncrypt, protSoftware, 1, 2500, 350*time.Microsecond, 200*time.Microsecond) // p50 too high
	r.finish()
	type key struct {
		name, op, prot string
		c              int
	}
	got := map[key]checkRow{}
	for _, c := range r.Checks {
		got[key{c.Name, c.Op, c.Protection, c.Concurrency}] = c
	}
	for k, want := range map[key]bool{
		{"software_rate_vs_gin", opEncrypt, protSoftware, 16}: true,
		{"software_rate_vs_gin", opDecrypt, protSoftware, 16}: false,
		{"server_cpu_vs_gin", opEncrypt, protSoftware, 16}:    true,
		{"server_cpu_vs_gin", opDecrypt, protSoftware, 16}:    false,
		{"hsm_rate_vs_software", opEncrypt, protHSM, 16}:      true,
		{"p50_at_c1", opEncrypt, protSoftware, 1}:             false,
		{"software_rate_vs_gin", opEncrypt, protSoftware, 1}:  true,
	} {
		c, ok := got[k]
		if !ok || c.Pass != want {
			t.Errorf("check %v: %+v (present %v), want pass=%v", k, c, ok, want)
		}
	}
	if _, ok := got[key{"software_rate_vs_healthz", opEncrypt, protSoftware, 16}]; ok {
		t.Error("healthz rate checked although gin was measured")
	}
}
