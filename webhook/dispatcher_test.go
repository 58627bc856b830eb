package webhook_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"prefsync"
	"prefsync/identifier"
	"prefsync/sqlite"
	"prefsync/webhook"
)

// clock is the injected time: tests move it on instead of waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// receiver is a destination on loopback. It verifies every delivery with the Standard
// Webhooks library and counts each webhook-id; fail, when set, answers instead.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	verify *standardwebhooks.Webhook
	// fail, if it returns true, has answered the request.
	fail     func(w http.ResponseWriter, r *http.Request) bool
	seen     map[string]int
	changes  []prefsync.Change
	attempts int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, seen: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.attempts++
	fail, verify := rc.fail, rc.verify
	rc.mu.Unlock()
	if fail != nil && fail(w, r) {
		return
	}
	// The injected clock runs days ahead of the real one, so the timestamp's freshness
	// is not checked here; TestSignature checks it against the real clock.
	if err := verify.VerifyIgnoringTimestamp(body, r.Header); err != nil {
		rc.t.Errorf("delivery does not verify: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ch prefsync.Change
	if err := json.Unmarshal(body, &ch); err != nil {
		rc.t.Errorf("delivery body: %v", err)
	}
	rc.mu.Lock()
	rc.seen[r.Header.Get("webhook-id")]++
	rc.changes = append(rc.changes, ch)
	rc.mu.Unlock()
}

func (rc *receiver) setFail(f func(w http.ResponseWriter, r *http.Request) bool) {
	rc.mu.Lock()
	rc.fail = f
	rc.mu.Unlock()
}

// status answers every request with code.
func status(code int) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(code)
		return true
	}
}

// received returns how many distinct changes arrived and how many arrived again.
func (rc *receiver) received() (distinct, duplicates int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, n := range rc.seen {
		distinct++
		duplicates += n - 1
	}
	return
}

type harness struct {
	t     *testing.T
	clock *clock
	store *sqlite.DB
	hub   *prefsync.Hub
	disp  *webhook.Dispatcher
}

func newHarness(t *testing.T, cfg webhook.Config) *harness {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	ctx, cancel := context.WithCancel(context.Background())
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "prefsync.db"), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	dict := prefsync.DefaultDictionary()
	hub := &prefsync.Hub{Store: store, Index: prefsync.NewIndex(dict), Dict: dict, Normalizer: identifier.Normalizer{},
		Now: c.Now, Random: rand.Reader}
	cfg.Now = c.Now
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 5 * time.Millisecond
	}
	h := &harness{t: t, clock: c, store: store, hub: hub, disp: webhook.New(store, cfg)}
	hub.Dispatcher = h.disp
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.disp.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		store.Close()
	})
	return h
}

// destination adds a destination that delivers to rc, and makes rc verify its secret.
func (h *harness) destination(name string, rc *receiver) {
	h.t.Helper()
	d, err := h.hub.CreateDestination(context.Background(), prefsync.DestinationInput{Name: name, URL: rc.srv.URL})
	if err != nil {
		h.t.Fatal(err)
	}
	v, err := standardwebhooks.NewWebhook(d.Secrets[0].Value)
	if err != nil {
		h.t.Fatal(err)
	}
	rc.mu.Lock()
	rc.verify = v
	rc.mu.Unlock()
}

// optOut records an opt-out of a topic by who, now on the injected clock.
func (h *harness) optOut(who, topic string) prefsync.EventResult {
	h.t.Helper()
	res, err := h.hub.Ingest(context.Background(), []prefsync.EventInput{{
		Subject: prefsync.Subject{Email: who}, Channel: "email", Topic: topic, State: prefsync.OptedOut,
		Source: prefsync.Source{System: "esp", Touchpoint: prefsync.API},
	}}, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	return res[0]
}

func (h *harness) deliveries(dest string, status prefsync.DeliveryStatus) []prefsync.Delivery {
	h.t.Helper()
	ds, err := h.store.Deliveries(context.Background(), prefsync.DeliveryFilter{Destination: dest, Status: status, Limit: 10000})
	if err != nil {
		h.t.Fatal(err)
	}
	return ds
}

func (h *harness) destinationStatus(name string) string {
	d, err := h.hub.Destination(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	return d.Status
}

// waitFor waits, in real time but bounded, for the dispatcher to do what cond checks.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSignature(t *testing.T) {
	old, next := prefsync.NewSecret(rand.Reader), prefsync.NewSecret(rand.Reader)
	body := []byte(`{"type":"preference.changed"}`)
	now := time.Now()
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
	h.Set("webhook-signature", webhook.Sign([]string{next, old}, "msg_1", now, body))
	// During a rotation a receiver that holds either secret verifies.
	for _, s := range []string{old, next} {
		v, _ := standardwebhooks.NewWebhook(s)
		if err := v.Verify(body, h); err != nil {
			t.Errorf("verify with a signing secret: %v", err)
		}
		if err := v.Verify([]byte(`{"type":"preference.changed "}`), h); err == nil {
			t.Error("a changed body verifies")
		}
	}
	other, _ := standardwebhooks.NewWebhook(prefsync.NewSecret(rand.Reader))
	if err := other.Verify(body, h); err == nil {
		t.Error("another secret verifies")
	}
}

func TestDeliver(t *testing.T) {
	h := newHarness(t, webhook.Config{})
	crm, esp := newReceiver(t), newReceiver(t)
	h.destination("crm", crm)
	h.destination("esp", esp)
	r1 := h.optOut("a@example.com", "newsletter")
	r2 := h.optOut("a@example.com", "*")
	waitFor(t, "crm has both changes", func() bool { n, _ := crm.received(); return n == 2 })

	crm.mu.Lock()
	got := crm.changes
	crm.mu.Unlock()
	versions := map[int64]bool{}
	for _, ch := range got {
		versions[ch.Data.Version] = true
		if ch.Data.Contact.ID != r1.ContactID || ch.Data.Contact.Emails[0] != "a@example.com" {
			t.Errorf("change about %+v", ch.Data.Contact)
		}
		if ch.Data.Version == r2.Version && len(ch.Data.State.Scopes) != 2 {
			t.Errorf("latest change carries state %+v, want both scopes", ch.Data.State)
		}
	}
	if !versions[r1.Version] || !versions[r2.Version] {
		t.Errorf("versions received %v, want %d and %d", versions, r1.Version, r2.Version)
	}
	// The events came from the esp: no echo back to it, not even queued.
	if ds := h.deliveries("esp", ""); len(ds) != 0 {
		t.Errorf("esp is to get its own changes back: %+v", ds)
	}
	waitFor(t, "deliveries recorded", func() bool { return len(h.deliveries("crm", prefsync.DeliveryDelivered)) == 2 })
	hist, err := h.store.History(context.Background(), r1.ContactID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range hist {
		if len(e.Deliveries) != 1 || e.Deliveries[0].Destination != "crm" || e.Deliveries[0].DeliveredAt == nil {
			t.Errorf("history entry %d receipts = %+v", e.Seq, e.Deliveries)
		}
	}
}

// TestFaultsIsolated: destinations that are slow, answer 500, answer garbage or close
// the connection are retried, and none of them holds back a healthy one.
func TestFaultsIsolated(t *testing.T) {
	h := newHarness(t, webhook.Config{Timeout: 200 * time.Millisecond})
	good := newReceiver(t)
	h.destination("good", good)
	faults := map[string]func(w http.ResponseWriter, r *http.Request) bool{
		"slow": func(w http.ResponseWriter, r *http.Request) bool {
			<-r.Context().Done() // answers only after the dispatcher gave up
			return true
		},
		"error": status(http.StatusInternalServerError),
		"garbage": func(w http.ResponseWriter, r *http.Request) bool {
			conn, buf, _ := w.(http.Hijacker).Hijack()
			buf.WriteString("this is not HTTP\r\n\r\n")
			buf.Flush()
			conn.Close()
			return true
		},
		"closer": func(w http.ResponseWriter, r *http.Request) bool {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return true
		},
	}
	receivers := map[string]*receiver{}
	for name, f := range faults {
		rc := newReceiver(t)
		rc.setFail(f)
		h.destination(name, rc)
		receivers[name] = rc
	}
	const n = 20
	for i := range n {
		h.optOut(fmt.Sprintf("p%d@example.com", i), "*")
	}
	waitFor(t, "the good destination has every change", func() bool { d, _ := good.received(); return d == n })
	for name := range faults {
		var d prefsync.Delivery
		waitFor(t, name+" attempted and scheduled for retry", func() bool {
			for _, d = range h.deliveries(name, prefsync.DeliveryPending) {
				if d.Attempts > 0 {
					return true
				}
			}
			return false
		})
		if d.NextAttemptAt.Before(h.clock.Now().Add(5*time.Second)) || (d.LastCode == 0) == (d.LastError == "") {
			t.Errorf("%s: %+v, want a retry in 5 s and a code or an error", name, d)
		}
	}
	// They recover: a probe finds each back, and everything is delivered.
	for _, rc := range receivers {
		rc.setFail(nil)
	}
	h.clock.Add(30 * time.Second)
	for name, rc := range receivers {
		waitFor(t, name+" has every change after its retry", func() bool { d, _ := rc.received(); return d == n })
	}
	if _, dup := good.received(); dup != 0 {
		t.Errorf("good destination got %d duplicates", dup)
	}
}

// TestOutage: a destination down for two days is probed at least every 30 seconds
// instead of each delivery being retried; within 30 s of its return its whole backlog
// drains, each change once, with versions that order each contact's changes.
func TestOutage(t *testing.T) {
	h := newHarness(t, webhook.Config{Batch: 64})
	rc := newReceiver(t)
	rc.setFail(status(http.StatusServiceUnavailable))
	h.destination("crm", rc)
	var results []prefsync.EventResult
	change := func() {
		i := len(results)
		results = append(results, h.optOut(fmt.Sprintf("p%d@example.com", i%7), []string{"newsletter", "events", "*"}[i%3]))
	}
	for range 10 {
		change()
	}
	waitFor(t, "the destination is failing", func() bool { return h.destinationStatus("crm") == prefsync.DestinationFailing })

	// Two days pass in steps of 30 s, with changes now and then.
	attemptsAtFailing := func() int { rc.mu.Lock(); defer rc.mu.Unlock(); return rc.attempts }()
	var probes int
	for step := range 2 * 24 * 120 {
		h.clock.Add(30 * time.Second)
		if step%500 == 0 {
			change()
		}
		// At first after every step, then every two hours: a probe came in each time.
		if step < 40 || step%240 == 0 {
			before := probes
			waitFor(t, fmt.Sprintf("a probe at step %d", step), func() bool {
				rc.mu.Lock()
				defer rc.mu.Unlock()
				probes = rc.attempts - attemptsAtFailing
				return probes > before
			})
		}
	}
	rc.mu.Lock()
	probes = rc.attempts - attemptsAtFailing
	rc.mu.Unlock()
	if probes > 2*24*120+1 {
		t.Errorf("%d attempts while failing over 5760 probe slots: deliveries were retried one by one", probes)
	}
	if st := h.destinationStatus("crm"); st != prefsync.DestinationFailing {
		t.Fatalf("after two days the destination is %s", st)
	}

	// It comes back. Within one probe interval (30 s) of clock time, all is delivered.
	rc.setFail(nil)
	h.clock.Add(30 * time.Second)
	waitFor(t, "the backlog is delivered", func() bool { d, _ := rc.received(); return d == len(results) })
	if st := h.destinationStatus("crm"); st != prefsync.DestinationActive {
		t.Errorf("after recovery the destination is %s", st)
	}
	if dead := h.deliveries("crm", prefsync.DeliveryDead); len(dead) != 0 {
		t.Errorf("%d dead deliveries after a two-day outage", len(dead))
	}
	// Every change arrived once, and its version orders it among its contact's.
	rc.mu.Lock()
	defer rc.mu.Unlock()
	want := map[[2]any]bool{}
	for _, r := range results {
		want[[2]any{r.ContactID, r.Version}] = true
	}
	for _, ch := range rc.changes {
		k := [2]any{ch.Data.Contact.ID, ch.Data.Version}
		if !want[k] {
			t.Errorf("unexpected or repeated change %v", k)
		}
		delete(want, k)
	}
	if len(want) != 0 {
		t.Errorf("changes never delivered: %v", want)
	}
}

// TestGone: a 410 disables the destination; what it missed waits, and is delivered
// once it is enabled again.
func TestGone(t *testing.T) {
	h := newHarness(t, webhook.Config{})
	rc := newReceiver(t)
	rc.setFail(status(http.StatusGone))
	h.destination("crm", rc)
	h.optOut("a@example.com", "*")
	waitFor(t, "the destination is disabled", func() bool { return h.destinationStatus("crm") == prefsync.DestinationDisabled })
	h.optOut("b@example.com", "*")
	h.clock.Add(time.Hour)
	if got := len(h.deliveries("crm", prefsync.DeliveryPending)); got != 2 {
		t.Fatalf("pending while disabled = %d, want 2", got)
	}
	rc.setFail(nil)
	if _, err := h.hub.EnableDestination(context.Background(), "crm"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both delivered", func() bool { d, _ := rc.received(); return d == 2 })
}

// TestRetryAfter: a 429 with Retry-After holds the destination back that long.
func TestRetryAfter(t *testing.T) {
	h := newHarness(t, webhook.Config{FailureThreshold: 1})
	rc := newReceiver(t)
	rc.setFail(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	})
	h.destination("crm", rc)
	h.optOut("a@example.com", "*")
	waitFor(t, "the destination is failing", func() bool { return h.destinationStatus("crm") == prefsync.DestinationFailing })
	var d prefsync.Delivery
	waitFor(t, "the attempt is recorded", func() bool { d = h.deliveries("crm", prefsync.DeliveryPending)[0]; return d.Attempts > 0 })
	if d.LastCode != 429 || d.NextAttemptAt.Before(h.clock.Now().Add(120*time.Second)) {
		t.Errorf("after a 429 with Retry-After 120: %+v", d)
	}
	rc.setFail(nil)
	h.clock.Add(119 * time.Second)
	time.Sleep(30 * time.Millisecond) // several poll intervals: a probe now would be too early
	if n, _ := rc.received(); n != 0 {
		t.Fatal("probed before Retry-After")
	}
	h.clock.Add(2 * time.Second)
	waitFor(t, "delivered after Retry-After", func() bool { n, _ := rc.received(); return n == 1 })
}

// TestDeadLetters: a destination failing for days is disabled, what it missed past the
// retry horizon is dead, and a replay delivers it once the destination is back.
func TestDeadLetters(t *testing.T) {
	h := newHarness(t, webhook.Config{})
	rc := newReceiver(t)
	rc.setFail(status(http.StatusBadGateway))
	h.destination("crm", rc)
	h.optOut("a@example.com", "*")
	h.optOut("b@example.com", "*")
	waitFor(t, "failing", func() bool { return h.destinationStatus("crm") == prefsync.DestinationFailing })
	for h.clock.Now().Before(time.Date(2026, 11, 6, 0, 0, 0, 0, time.UTC)) {
		h.clock.Add(time.Hour)
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "disabled", func() bool { return h.destinationStatus("crm") == prefsync.DestinationDisabled })
	waitFor(t, "both dead", func() bool { return len(h.deliveries("crm", prefsync.DeliveryDead)) == 2 })
	d, _ := h.hub.Destination(context.Background(), "crm")
	if d.StatusReason == "" {
		t.Error("disabled without a reason")
	}
	rc.setFail(nil)
	if _, err := h.hub.EnableDestination(context.Background(), "crm"); err != nil {
		t.Fatal(err)
	}
	dead := h.deliveries("crm", prefsync.DeliveryDead)
	if n, err := h.hub.ReplayDeliveries(context.Background(), prefsync.DeliveryFilter{Destination: "crm", ID: dead[0].ID}); err != nil || n != 1 {
		t.Fatalf("replay one: %d, %v", n, err)
	}
	waitFor(t, "the replayed one delivered", func() bool { n, _ := rc.received(); return n == 1 })
	if n, err := h.hub.ReplayDeliveries(context.Background(), prefsync.DeliveryFilter{Destination: "crm", Since: dead[0].CreatedAt}); err != nil || n != 1 {
		t.Fatalf("replay since: %d, %v", n, err)
	}
	waitFor(t, "both delivered", func() bool { n, _ := rc.received(); return n == 2 })
	if _, dup := rc.received(); dup != 0 {
		t.Errorf("%d duplicates", dup)
	}
}

// TestInterimAnswers: a 103 Early Hints before the real answer is not the answer, and the
// connection is reused correctly after it.
func TestInterimAnswers(t *testing.T) {
	h := newHarness(t, webhook.Config{})
	rc := newReceiver(t)
	rc.setFail(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		return false // then verified and answered 200 as usual
	})
	h.destination("crm", rc)
	for i := range 3 {
		h.optOut(fmt.Sprintf("p%d@example.com", i), "*")
		waitFor(t, "delivered", func() bool { n, _ := rc.received(); return n == i+1 })
	}
	waitFor(t, "recorded", func() bool { return len(h.deliveries("crm", prefsync.DeliveryDelivered)) == 3 })
}
