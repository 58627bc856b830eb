package webhook

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"prefsync"
)

// worker delivers to one destination. Active, it sends due deliveries in batches;
// failing, it only probes; disabled, it only expires what waited too long.
type worker struct {
	d      *Dispatcher
	name   string
	dest   atomic.Pointer[prefsync.Destination]
	wake   chan struct{}
	stop   func()
	jitter *rand.Rand

	// Owned by run.
	poster   *poster // for the destination's URL
	failures int     // attempts in a row that found the destination down
	// recording holds the deliveries whose attempts are being recorded, until
	// recordDone is closed.
	recording  map[int64]bool
	recordDone chan struct{}
	probeWait  time.Duration // the wait before the next probe; it doubles up to ProbeInterval
	nextProbe  time.Time
	expired    time.Time // when deliveries past the horizon were last looked for
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	defer w.recorded(true)
	defer func() {
		if w.poster != nil {
			w.poster.close()
		}
	}()
	for ctx.Err() == nil {
		wait := w.step(ctx)
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-w.wake:
			// Told of new deliveries, wait a moment for those right behind them: one
			// batch instead of many costs one query and one write instead of many.
			timer.Stop()
			timer.Reset(w.d.cfg.Linger)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		case <-timer.C:
		}
		timer.Stop()
	}
}

// step does what the destination's status calls for and returns how long to wait before
// the next step, unless woken.
func (w *worker) step(ctx context.Context) time.Duration {
	cfg := &w.d.cfg
	dest := w.dest.Load()
	now := cfg.Now()
	if dest.Status != prefsync.DestinationActive {
		w.recorded(true) // a probe picks by the times the last attempts set
		if now.Sub(w.expired) >= time.Minute {
			w.expire(ctx, now)
			w.expired = now
		}
	}
	switch dest.Status {
	case prefsync.DestinationDisabled:
		return cfg.PollInterval
	case prefsync.DestinationFailing:
		if now.Sub(dest.StatusSince) >= cfg.DisableAfter {
			w.setStatus(ctx, prefsync.DestinationDisabled, "failing since "+dest.StatusSince.Format(time.RFC3339), now)
			return 0
		}
		if now.Before(w.nextProbe) {
			return min(w.nextProbe.Sub(now), cfg.PollInterval)
		}
		return w.probe(ctx, dest, now)
	}
	return w.drain(ctx, dest, now)
}

// drain sends one batch of due deliveries; it asks to be run again at once when the
// batch was full.
func (w *worker) drain(ctx context.Context, dest *prefsync.Destination, now time.Time) time.Duration {
	cfg := &w.d.cfg
	w.recorded(false)
	batch, err := w.d.store.DueDeliveries(ctx, w.name, now, cfg.Batch+len(w.recording))
	if err != nil {
		if ctx.Err() == nil {
			cfg.Logger.Error("read due deliveries", "destination", w.name, "err", err)
		}
		return cfg.PollInterval
	}
	// What was just sent is still due until its attempts are recorded.
	batch = slices.DeleteFunc(batch, func(d prefsync.Delivery) bool { return w.recording[d.ID] })
	full := len(batch) >= cfg.Batch
	if full {
		batch = batch[:cfg.Batch]
	}
	if len(batch) == 0 {
		return cfg.PollInterval
	}
	p, err := w.posterFor(dest)
	if err != nil {
		cfg.Logger.Error("destination URL", "destination", w.name, "err", err)
		return cfg.PollInterval
	}
	// When the dispatcher stops, no new attempt starts, and those under way are
	// finished (within the timeout) and recorded, so a graceful stop sends nothing twice.
	stopping := ctx
	ctx = context.WithoutCancel(ctx)
	results := make([]result, len(batch))
	sem := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range batch {
		sem <- struct{}{}
		if stopping.Err() != nil {
			batch = batch[:i]
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = w.d.send(ctx, p, dest, &batch[i])
		}()
	}
	wg.Wait()
	results = results[:len(batch)]
	done := cfg.Now()
	attempts := make([]prefsync.Attempt, len(batch))
	var worst result // the last attempt that found the destination down
	answered, sawDown, sawGone := false, false, false
	for i, r := range results {
		attempts[i] = w.attempt(&batch[i], r, done)
		switch r.class() {
		case delivered, refused:
			w.failures, answered = 0, true
		case down:
			w.failures++
			worst, sawDown = r, true
		case gone:
			sawGone = true
		}
	}
	// The attempts are recorded while the next batch is read and sent: the worker
	// does not wait for the write, only keeps from sending what it covers again.
	w.recorded(true)
	for _, d := range batch {
		w.recording[d.ID] = true
	}
	w.recordDone = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		w.record(ctx, batch, attempts, results)
	}(w.recordDone)
	switch {
	case sawGone:
		w.setStatus(ctx, prefsync.DestinationDisabled, "the destination answered 410 Gone", done)
	case sawDown && (!answered || w.failures >= cfg.FailureThreshold):
		w.setStatus(ctx, prefsync.DestinationFailing, describe(worst), done)
		w.probeWait = time.Second
		w.nextProbe = done.Add(max(w.probeWait, worst.retryAfter))
	}
	if full {
		return 0
	}
	return cfg.PollInterval
}

// posterFor returns the poster of the destination's URL.
func (w *worker) posterFor(dest *prefsync.Destination) (*poster, error) {
	if w.poster != nil && w.poster.url == dest.URL {
		return w.poster, nil
	}
	p, err := newPoster(dest.URL, w.d.cfg.Timeout, w.d.cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	if w.poster != nil {
		w.poster.close()
	}
	w.poster = p
	return p, nil
}

// recorded forgets the deliveries of the last batch once its attempts are recorded,
// waiting for that if wait is set.
func (w *worker) recorded(wait bool) {
	if w.recordDone == nil {
		return
	}
	if !wait {
		select {
		case <-w.recordDone:
		default:
			return
		}
	}
	<-w.recordDone
	w.recordDone = nil
	clear(w.recording)
}

// probe retries the delivery that has waited longest for its next attempt. If the
// destination takes it, the destination is active again and all its waiting
// deliveries are released at once.
func (w *worker) probe(ctx context.Context, dest *prefsync.Destination, now time.Time) time.Duration {
	cfg := &w.d.cfg
	dl, err := w.d.store.ProbeDelivery(ctx, w.name)
	if prefsync.ErrorCode(err) == prefsync.ENOTFOUND {
		// Nothing waits: the next change will find out whether the destination is back.
		w.recover(ctx, now, "nothing left to deliver")
		return 0
	}
	if err != nil {
		cfg.Logger.Error("read probe delivery", "destination", w.name, "err", err)
		return cfg.PollInterval
	}
	p, err := w.posterFor(dest)
	if err != nil {
		cfg.Logger.Error("destination URL", "destination", w.name, "err", err)
		return cfg.PollInterval
	}
	ctx = context.WithoutCancel(ctx) // as in drain: a probe under way is finished and recorded
	r := w.d.send(ctx, p, dest, dl)
	done := cfg.Now()
	cfg.Logger.Debug("probe", "destination", w.name, "delivery", dl.ID, "result", describe(r))
	w.record(ctx, []prefsync.Delivery{*dl}, []prefsync.Attempt{w.attempt(dl, r, done)}, []result{r})
	switch r.class() {
	case delivered, refused:
		w.recover(ctx, done, describe(r))
		return 0
	case gone:
		w.setStatus(ctx, prefsync.DestinationDisabled, "the destination answered 410 Gone", done)
		return 0
	}
	// Counted from when this probe started, so probes start at most ProbeInterval apart.
	w.probeWait = min(max(2*w.probeWait, time.Second), cfg.ProbeInterval)
	w.nextProbe = now.Add(max(w.probeWait, r.retryAfter))
	return cfg.PollInterval
}

// recover makes a failing destination active and its waiting deliveries due now.
func (w *worker) recover(ctx context.Context, now time.Time, why string) {
	w.failures, w.probeWait = 0, time.Second
	n, err := w.d.store.ReleaseDeliveries(ctx, w.name, now)
	if err != nil {
		w.d.cfg.Logger.Error("release deliveries", "destination", w.name, "err", err)
		return
	}
	w.d.cfg.Logger.Info("destination is back", "destination", w.name, "probe", why, "released", n)
	w.setStatus(ctx, prefsync.DestinationActive, "", now)
}

// expire dead-letters deliveries past the retry horizon. An active destination's
// deliveries die on their last failed attempt instead.
func (w *worker) expire(ctx context.Context, now time.Time) {
	n, err := w.d.store.ExpireDeliveries(ctx, w.name, now.Add(-prefsync.RetryHorizon))
	if err != nil {
		w.d.cfg.Logger.Error("expire deliveries", "destination", w.name, "err", err)
		return
	}
	if n > 0 {
		w.d.cfg.Logger.Warn("deliveries dead after exhausting their retries", "destination", w.name, "count", n)
		w.d.cfg.Metrics.dead(w.name, n)
	}
}

// record stores the attempts and observes them. Attempts it fails to store are made
// again: a duplicate, which receivers drop by webhook-id or version.
func (w *worker) record(ctx context.Context, batch []prefsync.Delivery, attempts []prefsync.Attempt, results []result) {
	if err := w.d.store.RecordAttempts(ctx, attempts); err != nil {
		w.d.cfg.Logger.Error("record attempts", "destination", w.name, "err", err)
		return
	}
	for i, a := range attempts {
		w.d.cfg.Metrics.attempted(w.name, &batch[i], a, results[i])
	}
}

// setStatus changes the destination's status, in the store and for this worker.
func (w *worker) setStatus(ctx context.Context, status, reason string, now time.Time) {
	old := w.dest.Load()
	if old.Status == status {
		return
	}
	if err := w.d.store.UpdateDestination(ctx, w.name, prefsync.StatusUpdate(status, reason, now)); err != nil {
		w.d.cfg.Logger.Error("set destination status", "destination", w.name, "status", status, "err", err)
		return
	}
	d := *old
	d.Status, d.StatusReason, d.StatusSince = status, reason, now
	w.dest.Store(&d)
	if status != prefsync.DestinationActive {
		w.d.cfg.Logger.Warn("destination "+status, "destination", w.name, "reason", reason)
	}
	w.d.cfg.Metrics.status(w.name, status)
}
