// Package webhook delivers the outbox: it sends each delivery to its destination signed
// per Standard Webhooks, retries with backoff, probes failing destinations so their
// backlog drains as soon as they return, and dead-letters what exhausts its retries.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"prefsync"
)

// Config tunes the dispatcher. Zero fields take the defaults in brackets.
type Config struct {
	// Timeout bounds one attempt [10s].
	Timeout time.Duration
	// ProbeInterval is the longest a failing destination goes unprobed [30s].
	ProbeInterval time.Duration
	// PollInterval is how often a destination's worker looks for due deliveries without
	// being told of new ones: retries come due, another process adds deliveries [1s].
	PollInterval time.Duration
	// Linger is how long a worker told of new deliveries waits for more before it reads
	// them [5ms].
	Linger time.Duration
	// Batch is how many deliveries a worker takes at once [256]; Concurrency how many of
	// them it sends at a time [32].
	Batch       int
	Concurrency int
	// FailureThreshold is how many attempts in a row may find a destination down before
	// it is failing [5]. A batch in which every attempt found it down makes it failing
	// at once; one delivery that fails among others that succeed is only retried.
	FailureThreshold int
	// DisableAfter disables a destination that has been failing this long [72h].
	DisableAfter time.Duration
	// MaxRetryAfter caps how long a Retry-After header holds back a destination [1h].
	MaxRetryAfter time.Duration
	// Now is the clock [time.Now].
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics, when set, records delivery metrics.
	Metrics *Metrics
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Timeout, 10*time.Second)
	def(&c.ProbeInterval, 30*time.Second)
	def(&c.PollInterval, time.Second)
	def(&c.DisableAfter, 72*time.Hour)
	def(&c.Linger, 5*time.Millisecond)
	def(&c.MaxRetryAfter, time.Hour)
	if c.Batch <= 0 {
		c.Batch = 256
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = 5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Dispatcher runs one worker per destination, so a slow or dead destination never
// delays another.
type Dispatcher struct {
	store prefsync.Outbox
	cfg   Config

	mu      sync.Mutex
	workers map[string]*worker
	reload  chan struct{}
}

var _ prefsync.Dispatcher = (*Dispatcher)(nil)

// New returns a dispatcher of the store's outbox; Run starts it.
func New(store prefsync.Outbox, cfg Config) *Dispatcher {
	cfg.setDefaults()
	return &Dispatcher{store: store, cfg: cfg, workers: map[string]*worker{}, reload: make(chan struct{}, 1)}
}

// DeliveriesAdded implements prefsync.Dispatcher: every worker looks for due deliveries.
func (d *Dispatcher) DeliveriesAdded() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.workers {
		w.poke()
	}
}

// DestinationsChanged implements prefsync.Dispatcher.
func (d *Dispatcher) DestinationsChanged() {
	select {
	case d.reload <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done, then waits for the attempts in flight.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	// Destinations are also read again now and then: another process (the CLI) may
	// have changed them.
	tick := time.NewTicker(5 * d.cfg.PollInterval)
	defer tick.Stop()
	for {
		if err := d.sync(ctx, &wg); err != nil {
			d.cfg.Logger.Error("read destinations", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.reload:
		case <-tick.C:
		}
	}
}

// sync starts a worker for each new destination, stops those of removed ones, and hands
// every worker its destination as stored.
func (d *Dispatcher) sync(ctx context.Context, wg *sync.WaitGroup) error {
	dests, err := d.store.Destinations(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[string]bool{}
	for _, dest := range dests {
		seen[dest.Name] = true
		d.cfg.Metrics.status(dest.Name, dest.Status)
		w, ok := d.workers[dest.Name]
		if !ok {
			wctx, cancel := context.WithCancel(ctx)
			w = &worker{d: d, name: dest.Name, wake: make(chan struct{}, 1), stop: cancel, recording: map[int64]bool{},
				jitter: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
			d.workers[dest.Name] = w
			w.dest.Store(dest)
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(wctx)
			}()
			continue
		}
		// The worker may have changed the status since the store was read.
		if cur := w.dest.Load(); dest.StatusSince.Before(cur.StatusSince) {
			d := *dest
			d.Status, d.StatusReason, d.StatusSince = cur.Status, cur.StatusReason, cur.StatusSince
			dest = &d
		}
		w.dest.Store(dest)
		w.poke()
	}
	for name, w := range d.workers {
		if !seen[name] {
			w.stop()
			delete(d.workers, name)
			d.cfg.Metrics.forget(name)
		}
	}
	return nil
}

// result is what one attempt got.
type result struct {
	code    int
	err     error
	latency time.Duration
	// retryAfter is the wait a 429 or 503 asked for.
	retryAfter time.Duration
}

// verdict classes of a result.
const (
	delivered = iota
	// refused: the destination answered but would not take this delivery (a 4xx). It
	// is up; the delivery is retried on its own schedule.
	refused
	// down: no answer, a timeout, a 5xx or a 429: the destination is not taking deliveries.
	down
	// gone: a 410, the destination wants no more.
	gone
)

func (r result) class() int {
	switch {
	case r.err != nil:
		return down
	case r.code >= 200 && r.code < 300:
		return delivered
	case r.code == http.StatusGone:
		return gone
	case r.code == http.StatusTooManyRequests || r.code >= 500:
		return down
	default:
		return refused
	}
}

// send makes one attempt of a delivery to dest through p.
func (d *Dispatcher) send(ctx context.Context, p *poster, dest *prefsync.Destination, dl *prefsync.Delivery) result {
	now := d.cfg.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	headers := [][2]string{{"Content-Type", "application/json"}, {"User-Agent", "prefsync"},
		{"webhook-id", dl.MessageID}, {"webhook-timestamp", ts},
		{"webhook-signature", Sign(dest.SigningSecrets(now), dl.MessageID, now, dl.Payload)}}
	start := time.Now()
	code, h, err := p.post(ctx, headers, dl.Payload)
	r := result{code: code, err: err, latency: time.Since(start)}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		r.retryAfter = min(retryAfter(h.Get("Retry-After"), now), d.cfg.MaxRetryAfter)
	}
	return r
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// attempt turns a result into the delivery's record: delivered, retried at the next
// point of its schedule (not before a Retry-After), or dead once the schedule is over.
func (w *worker) attempt(dl *prefsync.Delivery, r result, now time.Time) prefsync.Attempt {
	a := prefsync.Attempt{DeliveryID: dl.ID, At: now, Code: r.code, Latency: r.latency, Status: prefsync.DeliveryPending}
	if r.err != nil {
		a.Error = errorText(r.err)
	}
	if r.class() == delivered {
		a.Status = prefsync.DeliveryDelivered
		return a
	}
	next, ok := prefsync.NextAttempt(dl.RetryFrom, now, w.jitter)
	if !ok {
		a.Status = prefsync.DeliveryDead
		return a
	}
	a.NextAttemptAt = maxTime(next, now.Add(r.retryAfter))
	return a
}

// errorText says why an attempt got no answer, without the URL (it may hold a secret).
func errorText(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func describe(r result) string {
	if r.err != nil {
		return errorText(r.err)
	}
	return fmt.Sprintf("answered %d", r.code)
}
