package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	crypto   *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		crypto: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_crypto_operations_total", Help: "Cryptographic operations by operation, key and result.",
		}, []string{"operation", "key_id", "result"}),
	}
	cs := []prometheus.Collector{m.requests, m.latency, m.crypto}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observeRequest(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// cryptoOp counts one cryptographic operation; result is "ok" or an error code.
func (m *metrics) cryptoOp(op, keyID string, err error) {
	result := "ok"
	if err != nil {
		result, _ = classify(err)
	}
	if keyID == "" {
		keyID = "unknown"
	}
	m.crypto.WithLabelValues(op, keyID, result).Inc()
}
