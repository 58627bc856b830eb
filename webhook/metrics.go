package webhook

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"prefsync"
)

// Metrics are the delivery metrics. A nil *Metrics records nothing.
type Metrics struct {
	propagation *prometheus.HistogramVec
	attempts    *prometheus.CounterVec
	deadTotal   *prometheus.CounterVec
	statuses    *prometheus.GaugeVec
}

var destinationStatuses = []string{prefsync.DestinationActive, prefsync.DestinationFailing, prefsync.DestinationDisabled}

// NewMetrics registers the delivery metrics with reg. The backlog of each destination
// (depth and the age of its oldest undelivered change) is read from the store when
// scraped, so it is true whichever process wrote the deliveries.
func NewMetrics(reg prometheus.Registerer, store prefsync.Outbox, now func() time.Time) *Metrics {
	m := &Metrics{
		propagation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prefsync_delivery_propagation_seconds",
			Help:    "Time from a change being accepted to its destination answering 2xx, per destination.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600, 72 * 3600},
		}, []string{"destination"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prefsync_delivery_attempts_total",
			Help: "Delivery attempts per destination, by outcome: delivered, failed (retried later) or dead.",
		}, []string{"destination", "outcome"}),
		deadTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prefsync_deliveries_dead_total",
			Help: "Deliveries that exhausted their retries, per destination.",
		}, []string{"destination"}),
		statuses: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prefsync_destination_status",
			Help: "1 for a destination's current status (active, failing or disabled), as this process last saw it.",
		}, []string{"destination", "status"}),
	}
	reg.MustRegister(m.propagation, m.attempts, m.deadTotal, m.statuses, &backlog{store: store, now: now})
	return m
}

func (m *Metrics) attempted(dest string, dl *prefsync.Delivery, a prefsync.Attempt, r result) {
	if m == nil {
		return
	}
	switch a.Status {
	case prefsync.DeliveryDelivered:
		m.attempts.WithLabelValues(dest, "delivered").Inc()
		m.propagation.WithLabelValues(dest).Observe(a.At.Sub(dl.CreatedAt).Seconds())
	case prefsync.DeliveryDead:
		m.attempts.WithLabelValues(dest, "dead").Inc()
		m.deadTotal.WithLabelValues(dest).Inc()
	default:
		m.attempts.WithLabelValues(dest, "failed").Inc()
	}
}

func (m *Metrics) dead(dest string, n int) {
	if m != nil {
		m.deadTotal.WithLabelValues(dest).Add(float64(n))
	}
}

func (m *Metrics) status(dest, status string) {
	if m == nil {
		return
	}
	for _, s := range destinationStatuses {
		v := 0.0
		if s == status {
			v = 1
		}
		m.statuses.WithLabelValues(dest, s).Set(v)
	}
}

func (m *Metrics) forget(dest string) {
	if m == nil {
		return
	}
	for _, s := range destinationStatuses {
		m.statuses.DeleteLabelValues(dest, s)
	}
}

// backlog collects the queue depth and the age of the oldest undelivered change per
// destination: alert on the age, not only on failures.
type backlog struct {
	store prefsync.Outbox
	now   func() time.Time
}

var (
	depthDesc = prometheus.NewDesc("prefsync_delivery_queue_depth",
		"Deliveries not yet delivered, per destination.", []string{"destination"}, nil)
	ageDesc = prometheus.NewDesc("prefsync_delivery_oldest_pending_age_seconds",
		"Age of the oldest change not yet delivered, per destination.", []string{"destination"}, nil)
)

func (b *backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- ageDesc
}

func (b *backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dests, err := b.store.Destinations(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	stats, err := b.store.DeliveryStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	byName := map[string]prefsync.DeliveryStats{}
	for _, s := range stats {
		byName[s.Destination] = s
	}
	now := b.now()
	for _, d := range dests {
		s, age := byName[d.Name], 0.0
		if s.Pending > 0 {
			age = now.Sub(s.OldestPending).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(s.Pending), d.Name)
		ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, age, d.Name)
	}
}
