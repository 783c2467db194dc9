package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets of the issue.
const (
	// The targets of the load test (issue 8), checked per cell. Rates are
	// against the bare gin route of the same run when there is one (else
	// against kmsd's /healthz).
	targetSoftwareRatio = 0.5                    // SOFTWARE ops/s >= 0.5x gin's
	targetCPURatio      = 2.5                    // kmsd CPU per op <= 2.5x gin's
	targetP99           = 5 * time.Millisecond   // p99 at concurrency 16
	targetP99Conc       = 16                     //
	targetP50C1         = 300 * time.Microsecond // p50 at concurrency 1
	targetHSMRatio      = 0.8                    // HSM key ops/s >= 0.8x SOFTWARE key's
)

type reportMeta struct {
	Endpoint      string            `json:"endpoint"`
	Started       time.Time         `json:"started"`
	Finished      time.Time         `json:"finished"`
	GoVersion     string            `json:"go_version"`
	NumCPU        int               `json:"num_cpu"`
	GOMAXPROCS    int               `json:"gomaxprocs"`
	LoadAvgBefore string            `json:"loadavg_before,omitempty"`
	LoadAvgAfter  string            `json:"loadavg_after,omitempty"`
	Duration      string            `json:"duration_per_cell"`
	Warmup        string            `json:"warmup_per_cell"`
	PayloadBytes  int               `json:"payload_bytes"`
	Keys          map[string]string `json:"keys,omitempty"` // protection level -> key id
}

type resultRow struct {
	Op          string         `json:"op"`
	Protection  string         `json:"protection,omitempty"`
	Concurrency int            `json:"concurrency"`
	Requests    int            `json:"requests"`
	Errors      int            `json:"errors"`
	ErrorKinds  map[string]int `json:"error_kinds,omitempty"`
	ElapsedSec  float64        `json:"elapsed_s"`
	OpsPerSec   float64        `json:"ops_per_s"`
	MeanMs      float64        `json:"mean_ms"`
	P50Ms       float64        `json:"p50_ms"`
	P90Ms       float64        `json:"p90_ms"`
	P99Ms       float64        `json:"p99_ms"`
	MaxMs       float64        `json:"max_ms"`
	// ClientCPUPct is kmsload's own CPU use during the cell, in percent of
	// one core (200 = both cores of a 2-core machine).
	ClientCPUPct float64 `json:"client_cpu_pct"`
	// Ratios of OpsPerSec to the baselines at the same concurrency.
	RatioHealthz     *float64 `json:"ratio_to_healthz,omitempty"`
	RatioDescribeKey *float64 `json:"ratio_to_describe_key,omitempty"`
	RatioGin         *float64 `json:"ratio_to_gin,omitempty"`
	// ServerCPUUsPerOp is the server's CPU time per successful request
	// (kmsd's, or the gin server's for the gin row), from /proc/PID/stat.
	ServerCPUUsPerOp *float64 `json:"server_cpu_us_per_op,omitempty"`
	// ServerCPUxGin is ServerCPUUsPerOp over the gin row's at the same
	// concurrency.
	ServerCPUxGin *float64 `json:"server_cpu_x_gin,omitempty"`
}

type checkRow struct {
	Name        string  `json:"name"`
	Op          string  `json:"op"`
	Protection  string  `json:"protection"`
	Concurrency int     `json:"concurrency"`
	Value       float64 `json:"value"`
	Target      string  `json:"target"`
	Pass        bool    `json:"pass"`
}

type report struct {
	Meta    reportMeta  `json:"meta"`
	Results []resultRow `json:"results"`
	Checks  []checkRow  `json:"checks"`
}

func newReport(opts options) *report {
	ncpu, procs, gov := hostInfo()
	return &report{Meta: reportMeta{
		Endpoint: opts.Endpoint, Started: time.Now().UTC(), GoVersion: gov, NumCPU: ncpu, GOMAXPROCS: procs,
		LoadAvgBefore: loadAvg(), Duration: opts.Duration.String(), Warmup: opts.Warmup.String(),
		PayloadBytes: benchPlaintextSize, Keys: map[string]string{},
	}}
}

// loadAvg returns /proc/loadavg's first three fields, "" where unknown:
// the machine is shared, so the report records how busy it was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// add records a measured cell and returns its row.
func (r *report) add(c cell, s summary, kinds map[string]int, clientCPU, serverCPU time.Duration) resultRow {
	row := resultRow{
		Op: c.op, Protection: c.protection, Concurrency: c.concurrency,
		Requests: s.Requests, Errors: s.Errors, ElapsedSec: s.Elapsed.Seconds(), OpsPerSec: s.OpsPerSec,
		MeanMs: ms(s.Mean), P50Ms: ms(s.P50), P90Ms: ms(s.P90), P99Ms: ms(s.P99), MaxMs: ms(s.Max),
	}
	if len(kinds) > 0 {
		row.ErrorKinds = kinds
	}
	if s.Elapsed > 0 {
		row.ClientCPUPct = 100 * clientCPU.Seconds() / s.Elapsed.Seconds()
	}
	if ok := s.Requests - s.Errors; serverCPU >= 0 && ok > 0 {
		row.ServerCPUUsPerOp = ratio(float64(serverCPU.Microseconds()) / float64(ok))
	}
	r.Results = append(r.Results, row)
	return row
}

// baseline returns the rate of op at concurrency c, if measured.
func (r *report) baseline(op string, c int) (float64, bool) {
	for _, row := range r.Results {
		if row.Op == op && row.Concurrency == c {
			return row.OpsPerSec, row.OpsPerSec > 0
		}
	}
	return 0, false
}

func ratio(v float64) *float64 { return &v }

// finish computes the ratios and the target checks.
func (r *report) finish() {
	r.Meta.Finished = time.Now().UTC()
	r.Meta.LoadAvgAfter = loadAvg()
	r.Checks = nil
	for i := range r.Results {
		row := &r.Results[i]
		if row.Op == opGin {
			continue
		}
		for _, g := range r.Results {
			if g.Op != opGin || g.Concurrency != row.Concurrency {
				continue
			}
			if g.OpsPerSec > 0 {
				row.RatioGin = ratio(row.OpsPerSec / g.OpsPerSec)
			}
			if g.ServerCPUUsPerOp != nil && *g.ServerCPUUsPerOp > 0 && row.ServerCPUUsPerOp != nil {
				row.ServerCPUxGin = ratio(*row.ServerCPUUsPerOp / *g.ServerCPUUsPerOp)
			}
		}
		if row.Op == opHealthz {
			continue
		}
		if b, ok := r.baseline(opHealthz, row.Concurrency); ok {
			row.RatioHealthz = ratio(row.OpsPerSec / b)
		}
		if row.Op == opDescribeKey {
			continue
		}
		if b, ok := r.baseline(opDescribeKey, row.Concurrency); ok {
			row.RatioDescribeKey = ratio(row.OpsPerSec / b)
		}
		ok := row.Errors == 0 && row.Requests > 0
		if row.Protection == protSoftware {
			if row.RatioGin != nil {
				r.Checks = append(r.Checks, checkRow{
					Name: "software_rate_vs_gin", Op: row.Op, Protection: row.Protection, Concurrency: row.Concurrency,
					Value: *row.RatioGin, Target: fmt.Sprintf(">= %.2f", targetSoftwareRatio),
					Pass: *row.RatioGin >= targetSoftwareRatio && ok,
				})
			} else if row.RatioHealthz != nil {
				r.Checks = append(r.Checks, checkRow{
					Name: "software_rate_vs_healthz", Op: row.Op, Protection: row.Protection, Concurrency: row.Concurrency,
					Value: *row.RatioHealthz, Target: fmt.Sprintf(">= %.2f", targetSoftwareRatio),
					Pass: *row.RatioHealthz >= targetSoftwareRatio && ok,
				})
			}
			if row.ServerCPUxGin != nil {
				r.Checks = append(r.Checks, checkRow{
					Name: "server_cpu_vs_gin", Op: row.Op, Protection: row.Protection, Concurrency: row.Concurrency,
					Value: *row.ServerCPUxGin, Target: fmt.Sprintf("<= %.1f", targetCPURatio),
					Pass: *row.ServerCPUxGin <= targetCPURatio && ok,
				})
			}
			if row.Concurrency == 1 {
				r.Checks = append(r.Checks, checkRow{
					Name: "p50_at_c1", Op: row.Op, Protection: row.Protection, Concurrency: row.Concurrency,
					Value: row.P50Ms, Target: fmt.Sprintf("<= %.1f ms", ms(targetP50C1)),
					Pass: row.P50Ms <= ms(targetP50C1) && ok,
				})
			}
		}
		if row.Protection == protHSM {
			for _, sw := range r.Results {
				if sw.Op == row.Op && sw.Protection == protSoftware && sw.Concurrency == row.Concurrency && sw.OpsPerSec > 0 {
					v := row.OpsPerSec / sw.OpsPerSec
					r.Checks = append(r.Checks, checkRow{
						Name: "hsm_rate_vs_software", Op: row.Op, Protection: row.Protection, Concurrency: row.Concurrency,
						Value: v, Target: fmt.Sprintf(">= %.1f", targetHSMRatio),
						Pass: v >= targetHSMRatio && ok,
					})
				}
			}
		}
		if row.Concurrency == targetP99Conc {
			r.Checks = append(r.Checks, checkRow{
				Name: "p99_at_c16", Op: row.Op, Protection: row.Protection, Concurrency: row.Concurrency,
				Value: row.P99Ms, Target: fmt.Sprintf("<= %.0f ms", ms(targetP99)),
				Pass: row.P99Ms <= ms(targetP99) && ok,
			})
		}
	}
}

func (r *report) totalErrors() int {
	n := 0
	for _, row := range r.Results {
		n += row.Errors
	}
	return n
}

func (r *report) totalRequests() int {
	n := 0
	for _, row := range r.Results {
		n += row.Requests
	}
	return n
}

func (r *report) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.writeTable(w)
}

func fmtRatio(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *p)
}

func fmtNum(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f", *p)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (r *report) writeTable(w io.Writer) error {
	m := r.Meta
	fmt.Fprintf(w, "# kmsload against %s, %s per cell after %s warm-up, %d-byte payloads\n", m.Endpoint, m.Duration, m.Warmup, m.PayloadBytes)
	fmt.Fprintf(w, "# load generator: %s, NumCPU %d, GOMAXPROCS %d; loadavg before %q, after %q\n",
		m.GoVersion, m.NumCPU, m.GOMAXPROCS, m.LoadAvgBefore, m.LoadAvgAfter)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tprotection\tconc\trequests\terrors\tops/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t÷gin\t÷healthz\t÷describe-key\tsrv µs/op\tsrv cpu ×gin\tkmsload cpu%\t")
	for _, row := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t%s\t%s\t%s\t%s\t%.0f\t\n",
			row.Op, dash(row.Protection), row.Concurrency, row.Requests, row.Errors, row.OpsPerSec,
			row.P50Ms, row.P90Ms, row.P99Ms, row.MaxMs, fmtRatio(row.RatioGin), fmtRatio(row.RatioHealthz),
			fmtRatio(row.RatioDescribeKey), fmtNum(row.ServerCPUUsPerOp), fmtRatio(row.ServerCPUxGin), row.ClientCPUPct)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, row := range r.Results {
		if len(row.ErrorKinds) == 0 {
			continue
		}
		kinds := make([]string, 0, len(row.ErrorKinds))
		for k, v := range row.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s x%d", k, v))
		}
		slices.Sort(kinds)
		fmt.Fprintf(w, "errors %s %s c=%d: %s\n", row.Op, dash(row.Protection), row.Concurrency, strings.Join(kinds, ", "))
	}
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, c := range r.Checks {
			verdict := "FAIL"
			if c.Pass {
				verdict = "PASS"
			}
			value := fmt.Sprintf("%.2f", c.Value)
			if c.Name == "p99_at_c16" || c.Name == "p50_at_c1" {
				value += " ms"
			}
			fmt.Fprintf(w, "  %s  %-24s %-17s %-8s c=%-3d %s (target %s)\n", verdict, c.Name, c.Op, c.Protection, c.Concurrency, value, c.Target)
		}
	}
	return nil
}
