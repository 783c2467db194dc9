package awsapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts AWS protocol requests (the /v1 router sees them as one
// unmatched route).
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_aws_requests_total", Help: "AWS KMS protocol requests by operation, HTTP status and exception.",
		}, []string{"operation", "status", "error"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_aws_request_duration_seconds",
			Help:    "AWS KMS protocol request latency by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"operation"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records one answered request. Operation names outside the
// supported set are counted as "unsupported" to bound label cardinality.
func (h *Handler) observe(op string, status int, exc string, d time.Duration) {
	if h.metrics == nil {
		return
	}
	if _, ok := h.ops[op]; !ok {
		op = "unsupported"
	}
	h.metrics.requests.WithLabelValues(op, strconv.Itoa(status), exc).Inc()
	h.metrics.latency.WithLabelValues(op).Observe(d.Seconds())
}
