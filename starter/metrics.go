package starter

import (
	"github.com/prometheus/client_golang/prometheus"
)

// registerMetrics registers the App's metrics with r and returns the
// function that unregisters them.
func (a *App) registerMetrics(r prometheus.Registerer) (func(), error) {
	var cs []prometheus.Collector
	counter := func(name, help string, f func() float64) {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "kmsgo", Subsystem: "starter", Name: name, Help: help}, f))
	}
	gauge := func(name, help string, f func() float64) {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kmsgo", Subsystem: "starter", Name: name, Help: help}, f))
	}
	if a.cfg != nil {
		counter("config_reloads_total", "Config changes applied after start-up.", func() float64 { return float64(a.cfg.Stats().Reloads) })
		counter("config_reload_errors_total", "Config changes rejected (the last good configuration kept).", func() float64 { return float64(a.cfg.Stats().ReloadErrors) })
		counter("config_source_errors_total", "Errors config sources reported and recovered from.", func() float64 { return float64(a.cfg.Stats().SourceErrors) })
		counter("config_decrypt_requests_total", "Batch decrypt calls to kmsd for config values.", func() float64 { return float64(a.cfg.Stats().DecryptRequests) })
	}
	if a.db != nil {
		counter("db_rotations_total", "Database pool rotations after a DSN or password change.", func() float64 { return float64(a.db.rotations.Load()) })
		counter("db_rotation_errors_total", "Database pool rotations refused (the current pool kept).", func() float64 { return float64(a.db.rotationErrors.Load()) })
		gauge("db_pool_generation", "Number of the current database pool (1 + rotations).", func() float64 { return float64(a.db.pool.generation()) })
		gauge("db_open_connections", "Open connections of the current database pool.", func() float64 { return float64(a.db.pool.current().Stats().OpenConnections) })
		gauge("db_in_use_connections", "Connections of the current database pool in use.", func() float64 { return float64(a.db.pool.current().Stats().InUse) })
	}
	var done []prometheus.Collector
	unreg := func() {
		for _, c := range done {
			r.Unregister(c)
		}
	}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			unreg()
			return nil, err
		}
		done = append(done, c)
	}
	return unreg, nil
}
