package http

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus metrics, in a registry of their own.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	events    *prometheus.CounterVec
	apply     prometheus.Histogram
	decisions *prometheus.CounterVec
	allowed   prometheus.Counter
	denied    prometheus.Counter
}

// NewMetrics registers the metrics; contacts reports the size of the check index.
func NewMetrics(contacts func() int) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prefsync_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "prefsync_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"route"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prefsync_events_total", Help: "Events ingested, by resulting status.",
		}, []string{"status"}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "prefsync_ingest_commit_seconds", Help: "Time from validated events to their durable commit and index update.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prefsync_check_decisions_total", Help: "Check decisions by outcome.",
		}, []string{"allowed"}),
	}
	m.allowed = m.decisions.WithLabelValues("true")
	m.denied = m.decisions.WithLabelValues("false")
	m.reg.MustRegister(m.requests, m.latency, m.events, m.apply, m.decisions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "prefsync_index_contacts", Help: "Contacts in the check index."},
			func() float64 { return float64(contacts()) }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registerer registers more metrics beside the server's, such as the dispatcher's.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// route returns the observer of one route, its labels resolved once.
func (m *Metrics) route(pattern string) func(code int, d time.Duration) {
	lat := m.latency.WithLabelValues(pattern)
	ok := m.requests.WithLabelValues(pattern, "200") // looked up once: most answers are 200
	return func(code int, d time.Duration) {
		if code == http.StatusOK {
			ok.Inc()
		} else {
			m.requests.WithLabelValues(pattern, strconv.Itoa(code)).Inc()
		}
		lat.Observe(d.Seconds())
	}
}

func (m *Metrics) decided(allowed, denied int) {
	if allowed > 0 {
		m.allowed.Add(float64(allowed))
	}
	if denied > 0 {
		m.denied.Add(float64(denied))
	}
}
