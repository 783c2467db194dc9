package httpapi

import (
	"strconv"
	"time"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	crypto   *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, stats func() hsm.Stats) (*metrics, error) {
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
	if stats != nil {
		cs = append(cs, hsmCollector{stats})
	}
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

var (
	hsmSize      = prometheus.NewDesc("kms_hsm_pool_size", "Maximum HSM sessions in flight.", nil, nil)
	hsmInUse     = prometheus.NewDesc("kms_hsm_pool_in_use", "HSM sessions currently lent out.", nil, nil)
	hsmWaits     = prometheus.NewDesc("kms_hsm_pool_waits_total", "Calls that waited for an HSM session.", nil, nil)
	hsmTimeouts  = prometheus.NewDesc("kms_hsm_pool_timeouts_total", "Calls that gave up waiting for an HSM session.", nil, nil)
	hsmAvailable = prometheus.NewDesc("kms_hsm_available", "1 when the HSM backend is available.", nil, nil)
)

// hsmCollector reads hsm.Backend.Stats at scrape time.
type hsmCollector struct{ stats func() hsm.Stats }

func (hsmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hsmSize, hsmInUse, hsmWaits, hsmTimeouts, hsmAvailable} {
		ch <- d
	}
}

func (h hsmCollector) Collect(ch chan<- prometheus.Metric) {
	st := h.stats()
	avail := 0.0
	if st.Available {
		avail = 1
	}
	ch <- prometheus.MustNewConstMetric(hsmSize, prometheus.GaugeValue, float64(st.Size))
	ch <- prometheus.MustNewConstMetric(hsmInUse, prometheus.GaugeValue, float64(st.InUse))
	ch <- prometheus.MustNewConstMetric(hsmWaits, prometheus.CounterValue, float64(st.Waits))
	ch <- prometheus.MustNewConstMetric(hsmTimeouts, prometheus.CounterValue, float64(st.Timeouts))
	ch <- prometheus.MustNewConstMetric(hsmAvailable, prometheus.GaugeValue, avail)
}
