package kmsd

import (
	"github.com/kmsgo/kmsgo/hsm"
	"github.com/prometheus/client_golang/prometheus"
)

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
