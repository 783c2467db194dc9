package httpapi

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	crypto   *prometheus.CounterVec

	// Children already looked up, so that a request does not hash its
	// label values and search the vector's map (and allocate the status
	// string) on every call. Bounded by maxCachedChildren: label values
	// come partly from requests (the method), so past the bound a lookup
	// goes to the vector as before.
	reqChildren    sync.Map // reqLabels -> prometheus.Counter
	latChildren    sync.Map // latLabels -> prometheus.Observer
	cryptoChildren sync.Map // cryptoLabels -> prometheus.Counter
	cached         atomic.Int64
}

const maxCachedChildren = 4096

type reqLabels struct {
	route, method string
	status        int
}

type latLabels struct{ route, method string }

type cryptoLabels struct{ op, keyID, result string }

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

// keep caches v under k in cache unless maxCachedChildren are cached.
func (m *metrics) keep(cache *sync.Map, k, v any) {
	if m.cached.Load() < maxCachedChildren {
		if _, loaded := cache.LoadOrStore(k, v); !loaded {
			m.cached.Add(1)
		}
	}
}

func (m *metrics) observeRequest(method, route string, status int, d time.Duration) {
	rk := reqLabels{route, method, status}
	var c prometheus.Counter
	if v, ok := m.reqChildren.Load(rk); ok {
		c = v.(prometheus.Counter)
	} else {
		c = m.requests.WithLabelValues(route, method, strconv.Itoa(status))
		m.keep(&m.reqChildren, rk, c)
	}
	c.Inc()
	lk := latLabels{route, method}
	var o prometheus.Observer
	if v, ok := m.latChildren.Load(lk); ok {
		o = v.(prometheus.Observer)
	} else {
		o = m.latency.WithLabelValues(route, method)
		m.keep(&m.latChildren, lk, o)
	}
	o.Observe(d.Seconds())
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
	k := cryptoLabels{op, keyID, result}
	var c prometheus.Counter
	if v, ok := m.cryptoChildren.Load(k); ok {
		c = v.(prometheus.Counter)
	} else {
		c = m.crypto.WithLabelValues(op, keyID, result)
		m.keep(&m.cryptoChildren, k, c)
	}
	c.Inc()
}
