package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// change names one change: the contact and the version it left it at.
type change struct {
	contact string
	version int64
}

// endpoint is a webhook destination on loopback that notes when each change first
// reached it. While down it answers 503.
type endpoint struct {
	srv   *http.Server
	url   string
	down  atomic.Bool
	mu    sync.Mutex
	first map[change]time.Time
	dups  int
}

func newEndpoint() (*endpoint, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &endpoint{url: "http://" + ln.Addr().String(), first: map[change]time.Time{}}
	e.srv = &http.Server{Handler: e}
	go e.srv.Serve(ln)
	return e, nil
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(r.Body)
	if e.down.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	k, ok := changeOf(body)
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	if _, ok := e.first[k]; ok {
		e.dups++
	} else {
		e.first[k] = now
	}
	e.mu.Unlock()
}

// changeOf reads the contact and version of a delivery. It scans for the two fields
// instead of decoding the body: the endpoints share the machine with the hub they
// measure, and should take as little of it as they can.
func changeOf(body []byte) (change, bool) {
	field := func(name string) []byte {
		i := bytes.Index(body, []byte(`"`+name+`":`))
		if i < 0 {
			return nil
		}
		v := body[i+len(name)+3:]
		end := bytes.IndexAny(v, ",}")
		if end < 0 {
			return nil
		}
		return bytes.Trim(v[:end], `"`)
	}
	// The contact's id is the first "id" in the body (data.contact comes before the
	// event and state in prefsync.ChangeData); the version is data.version.
	v, err := strconv.ParseInt(string(field("version")), 10, 64)
	id := field("id")
	return change{string(id), v}, err == nil && len(id) > 0
}

func (e *endpoint) received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.first)
}

// destinations creates a destination per endpoint and returns a function that deletes
// them, so runs do not pile up destinations in the bench store.
func (l *loader) destinations(prefix string, eps []*endpoint) (func(), error) {
	var names []string
	cleanup := func() {
		for _, n := range names {
			req, _ := http.NewRequest("DELETE", l.url+"/v1/destinations/"+n, nil)
			req.Header.Set("Authorization", "Bearer "+l.key)
			if res, err := l.client.Do(req); err == nil {
				res.Body.Close()
			}
		}
	}
	for i, e := range eps {
		name := fmt.Sprintf("%s-%d", prefix, i)
		res, err := l.post("/v1/destinations", "application/json",
			bytes.NewReader(fmt.Appendf(nil, `{"name":%q,"url":%q}`, name, e.url)))
		if err != nil {
			cleanup()
			return nil, err
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			cleanup()
			return nil, fmt.Errorf("create destination: %d %s", res.StatusCode, data)
		}
		names = append(names, name)
	}
	return cleanup, nil
}

// acks records when the hub acknowledged each change.
type acks struct {
	mu sync.Mutex
	at map[change]time.Time
}

// optOut sends one opt-out for a new contact and records its acknowledgement.
func (l *loader) optOut(a *acks, who string) error {
	body := fmt.Appendf(nil, `{"subject":{"email":%q},"channel":"email","topic":"*","state":"opted_out"}`, who)
	res, err := l.post("/v1/events", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var out struct {
		Results []struct {
			ContactID string `json:"contact_id"`
			Version   int64  `json:"version"`
		} `json:"results"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 || len(out.Results) != 1 {
		return fmt.Errorf("event: %d %v", res.StatusCode, err)
	}
	now := time.Now()
	a.mu.Lock()
	a.at[change{out.Results[0].ContactID, out.Results[0].Version}] = now
	a.mu.Unlock()
	return nil
}

// paced sends opt-outs of new contacts at rate per second until ctx ends.
func (l *loader) paced(ctx context.Context, a *acks, prefix string, rate int) (sent int64) {
	var n atomic.Int64
	var wg sync.WaitGroup
	workers := max(1, min(l.clients, rate/10))
	every := time.Duration(float64(time.Second) * float64(workers) / float64(rate))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now().Add(time.Duration(w) * every / time.Duration(workers))
			for ctx.Err() == nil {
				time.Sleep(time.Until(next))
				next = next.Add(every)
				i := n.Add(1)
				if err := l.optOut(a, prefix+strconv.FormatInt(i, 10)+"@example.com"); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return n.Load()
}

// latenciesTo returns, for every acknowledged change, how long it took to first reach
// each endpoint, and how many never did.
func latenciesTo(a *acks, eps []*endpoint) (lat []time.Duration, missing int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range eps {
		e.mu.Lock()
		for k, acked := range a.at {
			got, ok := e.first[k]
			if !ok {
				missing++
				continue
			}
			lat = append(lat, max(0, got.Sub(acked)))
		}
		e.mu.Unlock()
	}
	slices.Sort(lat)
	return lat, missing
}

func percentiles(lat []time.Duration) string {
	if len(lat) == 0 {
		return "n/a"
	}
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return fmt.Sprintf("p50 %s p90 %s p99 %s max %s", p(.5).Round(time.Microsecond), p(.9).Round(time.Microsecond),
		p(.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
}

// waitReceived waits, at most limit, until every endpoint has want changes.
func waitReceived(eps []*endpoint, want int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		done := true
		for _, e := range eps {
			done = done && e.received() >= want
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// propagate measures the time from a change's acknowledgement to its first arrival at
// each of several endpoints, at a fixed rate of changes.
func (l *loader) propagate() error {
	eps := make([]*endpoint, l.endpoints)
	for i := range eps {
		var err error
		if eps[i], err = newEndpoint(); err != nil {
			return err
		}
		defer eps[i].srv.Close()
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	cleanup, err := l.destinations("prop-"+run, eps)
	if err != nil {
		return err
	}
	defer cleanup()
	a := &acks{at: map[change]time.Time{}}
	ctx, cancel := context.WithTimeout(context.Background(), l.duration)
	defer cancel()
	start := time.Now()
	sent := l.paced(ctx, a, "prop-"+run+"-", l.rate)
	el := time.Since(start)
	waitReceived(eps, int(sent), 30*time.Second)
	lat, missing := latenciesTo(a, eps)
	dups := 0
	for _, e := range eps {
		dups += e.dups
	}
	fmt.Printf("propagate: %d changes in %.1fs (%.0f/s) to %d endpoints: %d deliveries, acknowledgement to first arrival %s; missing %d, duplicates %d\n",
		sent, el.Seconds(), float64(sent)/el.Seconds(), len(eps), len(lat), percentiles(lat), missing, dups)
	return nil
}

// backlog builds a backlog of count deliveries while the endpoint is down, brings it
// back, and measures how fast the backlog drains, and how long fresh changes sent
// meanwhile take to arrive.
func (l *loader) backlog() error {
	e, err := newEndpoint()
	if err != nil {
		return err
	}
	defer e.srv.Close()
	e.down.Store(true)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	cleanup, err := l.destinations("backlog-"+run, []*endpoint{e})
	if err != nil {
		return err
	}
	defer cleanup()
	// The backlog: count opt-outs of new contacts, in batches, while the endpoint is
	// down. Each applies, so each is one delivery.
	start := time.Now()
	events := make([][]byte, 0, l.batch)
	for i := 0; i < l.count; i++ {
		events = append(events, fmt.Appendf(nil, `{"subject":{"email":"backlog-%s-%d@example.com"},"channel":"email","topic":"*","state":"opted_out"}`, run, i))
		if len(events) == l.batch || i == l.count-1 {
			if err := l.send("/v1/events", batchBody(events)); err != nil {
				return err
			}
			events = events[:0]
		}
	}
	el := time.Since(start)
	fmt.Printf("backlog: %d changes queued for a down endpoint in %.1fs (%.0f events/s in batches of %d)\n",
		l.count, el.Seconds(), float64(l.count)/el.Seconds(), l.batch)

	// Back up. Once the hub notices (its next probe) and the backlog drains, fresh
	// changes keep coming at 100/s.
	e.down.Store(false)
	back := time.Now()
	deadline := back.Add(10 * time.Minute)
	for e.received() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	first := time.Now()
	a := &acks{at: map[change]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	freshDone := make(chan int64)
	go func() { freshDone <- l.paced(ctx, a, "fresh-"+run+"-", 100) }()
	for e.received() < l.count && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	fresh := <-freshDone
	waitReceived([]*endpoint{e}, l.count+int(fresh), 30*time.Second)
	end := time.Now()
	got := e.received()
	lat, missing := latenciesTo(a, []*endpoint{e})
	fmt.Printf("backlog: endpoint back; first delivery after %.1fs; %d deliveries in %.1fs after it: %.0f deliveries/s; duplicates %d\n",
		first.Sub(back).Seconds(), got, end.Sub(first).Seconds(), float64(got)/end.Sub(first).Seconds(), e.dups)
	fmt.Printf("backlog: %d fresh changes sent during the drain, acknowledgement to arrival %s; missing %d\n",
		fresh, percentiles(lat), missing)
	return nil
}

// follow measures how long a change written through one hub (-url) takes to show in
// the checks of another sharing its database (-url2): each worker writes an opt-out of a
// new contact, then asks the other hub until it answers opted out.
func (l *loader) follow() error {
	if l.url2 == "" {
		return fmt.Errorf("-mode follow needs -url2, the other hub")
	}
	other := &loader{config: l.config, client: l.client}
	other.url = l.url2
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	lat := newLatencies(l.clients)
	var wg sync.WaitGroup
	var errs atomic.Int64
	deadline := time.Now().Add(l.duration)
	for w := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				email := fmt.Sprintf("follow-%s-%d-%d@example.com", run, w, i)
				if err := l.send("/v1/events", fmt.Appendf(nil, `{"subject":{"email":%q},"channel":"email","topic":"*","state":"opted_out"}`, email)); err != nil {
					errs.Add(1)
					continue
				}
				acked := time.Now()
				for time.Since(acked) < 10*time.Second {
					res, err := other.post("/v1/check", "application/json", strings.NewReader(`{"channel":"email","topic":"newsletter","recipients":[{"email":"`+email+`"}]}`))
					if err != nil {
						errs.Add(1)
						break
					}
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if bytes.Contains(body, []byte(`opted_out:(email,*)`)) {
						lat.add(w, time.Since(acked))
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("follow: %d changes written through one hub and seen through the other: acknowledgement to visible %s; errors %d\n",
		lat.count(), lat.summary(), errs.Load())
	return nil
}
