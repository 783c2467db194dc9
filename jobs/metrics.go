package jobs

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a run (State.LastOutcome, the outcome label of
// kms_jobs_runs_total).
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
	OutcomePanic = "panic"
	OutcomeLost  = "lost"
)

// Outcome names how a run with error err ended: OutcomeOK, OutcomeError,
// OutcomePanic or OutcomeLost.
func Outcome(err error) string { return outcome(err) }

type metrics struct {
	runs, failures, items, skipped *prometheus.CounterVec
	lastSuccess, lastItems         *prometheus.GaugeVec
	running                        *prometheus.GaugeVec
	duration                       *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, jobs []string) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_jobs_runs_total", Help: "Job runs by job and outcome (ok, error, panic, lost)."}, []string{"job", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_jobs_failures_total", Help: "Job runs that returned an error or panicked, by job."}, []string{"job"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_jobs_items_total", Help: "Items changed by jobs (keys destroyed or rotated, HSM objects removed), by job."}, []string{"job"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_jobs_skipped_total", Help: "Scheduled runs skipped because the previous run was still running, by job."}, []string{"job"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kms_jobs_last_success_timestamp_seconds", Help: "Unix time of the end of the last successful run, by job."}, []string{"job"}),
		lastItems: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kms_jobs_last_run_items", Help: "Items changed by the last finished run, by job."}, []string{"job"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kms_jobs_running", Help: "1 while this process runs the job, by job."}, []string{"job"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kms_jobs_duration_seconds", Help: "Duration of job runs, by job.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800}}, []string{"job"}),
	}
	var err error
	m.runs, err = register(reg, m.runs)
	if err == nil {
		m.failures, err = register(reg, m.failures)
	}
	if err == nil {
		m.items, err = register(reg, m.items)
	}
	if err == nil {
		m.skipped, err = register(reg, m.skipped)
	}
	if err == nil {
		m.lastSuccess, err = register(reg, m.lastSuccess)
	}
	if err == nil {
		m.lastItems, err = register(reg, m.lastItems)
	}
	if err == nil {
		m.running, err = register(reg, m.running)
	}
	if err == nil {
		m.duration, err = register(reg, m.duration)
	}
	if err != nil {
		return nil, err
	}
	for _, j := range jobs { // export zero series so alerts can see them
		for _, o := range []string{OutcomeOK, OutcomeError, OutcomePanic, OutcomeLost} {
			m.runs.WithLabelValues(j, o)
		}
		m.failures.WithLabelValues(j)
		m.items.WithLabelValues(j)
		m.skipped.WithLabelValues(j)
		m.running.WithLabelValues(j)
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same description (two schedulers sharing one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *metrics) observe(r Result) {
	m.runs.WithLabelValues(r.Job, outcome(r.Err)).Inc()
	m.items.WithLabelValues(r.Job).Add(float64(max(r.Items, 0)))
	m.lastItems.WithLabelValues(r.Job).Set(float64(max(r.Items, 0)))
	m.duration.WithLabelValues(r.Job).Observe(r.Duration.Seconds())
	if r.Err != nil {
		m.failures.WithLabelValues(r.Job).Inc()
		return
	}
	m.lastSuccess.WithLabelValues(r.Job).Set(float64(r.Started.Add(r.Duration).Unix()))
}
