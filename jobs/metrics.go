package jobs

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	runs, failures, items, skipped *prometheus.CounterVec
	lastSuccess                    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, jobs []string) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_jobs_runs_total", Help: "Maintenance job runs by job (finished or failed)."}, []string{"job"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_jobs_failures_total", Help: "Maintenance job runs that returned an error or panicked, by job."}, []string{"job"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_jobs_items_total", Help: "Items changed by maintenance jobs (keys destroyed or rotated, HSM objects removed), by job."}, []string{"job"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_jobs_skipped_total", Help: "Scheduled runs skipped because the previous run was still running, by job."}, []string{"job"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kms_jobs_last_success_timestamp_seconds", Help: "Unix time of the last successful run, by job."}, []string{"job"}),
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
	if err != nil {
		return nil, err
	}
	for _, j := range jobs { // export zero series so alerts can see them
		m.runs.WithLabelValues(j)
		m.failures.WithLabelValues(j)
		m.items.WithLabelValues(j)
		m.skipped.WithLabelValues(j)
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
	m.runs.WithLabelValues(r.Job).Inc()
	m.items.WithLabelValues(r.Job).Add(float64(max(r.Items, 0)))
	if r.Err != nil {
		m.failures.WithLabelValues(r.Job).Inc()
		return
	}
	m.lastSuccess.WithLabelValues(r.Job).Set(float64(r.Started.Add(r.Duration).Unix()))
}
