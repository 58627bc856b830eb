// Command prefsync-load measures a running prefsync hub: durable ingest (single events and
// batches), single-recipient checks at a fixed rate, NDJSON streaming checks, and the
// propagation of changes to webhook endpoints it runs itself; and, without a hub, how late
// the machine wakes a sleeping thread. It talks to loopback addresses only, and every run
// is bounded in count and time.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	url, url2, key, mode, pg string
	clients                  int
	duration                 time.Duration
	rate                     int
	batch                    int
	contacts                 int
	count                    int
	endpoints                int
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8080", "hub base URL (loopback only)")
	flag.StringVar(&c.key, "key", os.Getenv("PREFSYNC_KEY"), "API key with events:write and check (PREFSYNC_KEY)")
	flag.StringVar(&c.mode, "mode", "", "seed | ingest | batch | check | stream | propagate | backlog | follow | antijoin | jitter")
	flag.IntVar(&c.clients, "clients", 32, "concurrent clients")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long to run (ingest, check, jitter); at most 2m")
	flag.IntVar(&c.rate, "rate", 20000, "check: requests per second")
	flag.IntVar(&c.batch, "batch", 500, "seed, batch: events per request")
	flag.IntVar(&c.contacts, "contacts", 1_000_000, "contacts user0000000@example.com … to address")
	flag.IntVar(&c.count, "count", 1_000_000, "batch: events to send; stream: recipients to check")
	flag.IntVar(&c.endpoints, "endpoints", 10, "propagate: webhook endpoints to fan out to")
	flag.StringVar(&c.url2, "url2", "", "follow: another hub on the same database (loopback only)")
	flag.StringVar(&c.pg, "pg", "", "antijoin: PostgreSQL URL for the SQL side of the comparison")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "prefsync-load:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if err := loopback(c.url); err != nil {
		return err
	}
	if c.url2 != "" {
		if err := loopback(c.url2); err != nil {
			return err
		}
	}
	c.duration = min(c.duration, 2*time.Minute)
	c.count = min(c.count, 20_000_000)
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		MaxIdleConnsPerHost: c.clients + 8, MaxConnsPerHost: c.clients + 8, DisableCompression: true}}
	l := &loader{config: c, client: client}
	switch c.mode {
	case "seed":
		return l.seed()
	case "ingest":
		return l.ingest()
	case "batch":
		return l.batchIngest()
	case "check":
		return l.check()
	case "stream":
		return l.stream()
	case "propagate":
		return l.propagate()
	case "backlog":
		return l.backlog()
	case "antijoin":
		return l.antijoin()
	case "follow":
		return l.follow()
	case "jitter":
		return l.jitter()
	}
	return fmt.Errorf("unknown -mode %q: want seed, ingest, batch, check, stream, propagate, backlog, follow, antijoin or jitter", c.mode)
}

// loopback refuses a URL that is not on this machine.
func loopback(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("refusing %s: load is only sent to loopback addresses", target)
	}
	return nil
}

type loader struct {
	config
	client *http.Client
}

func email(i int) string { return "user" + fmt.Sprintf("%07d", i) + "@example.com" }

func (l *loader) post(path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest("POST", l.url+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+l.key)
	req.Header.Set("Content-Type", contentType)
	return l.client.Do(req)
}

// send posts a JSON body and fails on any status but 200.
func (l *loader) send(path string, body []byte) error {
	res, err := l.post(path, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return fmt.Errorf("%s: %d %s", path, res.StatusCode, data)
	}
	return nil
}

// event renders one event; contact i gets scopes that depend on n so contacts differ.
func event(i, n int, at time.Time) []byte {
	scopes := [...][3]string{
		{"email", "newsletter", `"opted_in","evidence":{"method":"explicit","ip":"192.0.2.1"}`},
		{"sms", "*", `"opted_out"`},
		{"email", "promotions", `"opted_in","evidence":{"method":"implicit"}`},
		{"*", "promotions", `"opted_out"`},
	}
	s := scopes[n%len(scopes)]
	return fmt.Appendf(nil, `{"subject":{"email":%q},"channel":%q,"topic":%q,"state":%s,"occurred_at":%q,"source":{"system":"load","touchpoint":"import"}}`,
		email(i), s[0], s[1], s[2], at.UTC().Format(time.RFC3339Nano))
}

func batchBody(events [][]byte) []byte {
	b := []byte(`{"events":[`)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, "]}"...)
}

// seed gives every contact two or three scopes, in batches, and reports the rate.
func (l *loader) seed() error {
	at := time.Now().Add(-time.Hour)
	total := l.contacts*2 + l.contacts/3
	jobs := make(chan []byte, l.clients)
	var sent atomic.Int64
	start := time.Now()
	errc := make(chan error, l.clients)
	var wg sync.WaitGroup
	for range min(l.clients, 4) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range jobs {
				if err := l.send("/v1/events", body); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var pending [][]byte
	n := 0
	flush := func() bool {
		select {
		case jobs <- batchBody(pending):
		case err := <-errc:
			errc <- err
			return false
		}
		sent.Add(int64(len(pending)))
		pending = pending[:0]
		return true
	}
	for i := range l.contacts {
		for k := range 2 + boolInt(i%3 == 0) {
			pending = append(pending, event(i, k+boolInt(k == 2), at))
			n++
			if len(pending) == l.batch && !flush() {
				break
			}
		}
		if i%100000 == 0 && i > 0 {
			fmt.Fprintf(os.Stderr, "seeded %d contacts, %d events, %.0f events/s\n", i, sent.Load(), float64(sent.Load())/time.Since(start).Seconds())
		}
	}
	if len(pending) > 0 {
		flush()
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	el := time.Since(start)
	fmt.Printf("seed: %d contacts, %d events (of %d) in %.1fs: %.0f events/s in batches of %d\n", l.contacts, n, total, el.Seconds(), float64(n)/el.Seconds(), l.batch)
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ingest sends single-event requests from many clients for the duration.
func (l *loader) ingest() error {
	ctx, cancel := context.WithTimeout(context.Background(), l.duration)
	defer cancel()
	lat := newLatencies(l.clients)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for n := 0; ctx.Err() == nil; n++ {
				body := event(r.IntN(l.contacts), n, time.Now())
				t := time.Now()
				if err := l.send("/v1/events", body); err != nil {
					if errs.Add(1) < 5 {
						fmt.Fprintln(os.Stderr, err)
					}
					continue
				}
				lat.add(w, time.Since(t))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	n := lat.count()
	fmt.Printf("ingest: %d single-event requests from %d clients in %.1fs: %.0f requests/s; latency %s; errors %d\n",
		n, l.clients, el.Seconds(), float64(n)/el.Seconds(), lat.summary(), errs.Load())
	return nil
}

// batchIngest sends count events in batches from a few clients.
func (l *loader) batchIngest() error {
	l.clients = min(l.clients, 4)
	batches := (l.count + l.batch - 1) / l.batch
	var next atomic.Int64
	lat := newLatencies(l.clients)
	var wg sync.WaitGroup
	errc := make(chan error, l.clients)
	start := time.Now()
	deadline := start.Add(l.duration)
	for w := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			events := make([][]byte, l.batch)
			for b := next.Add(1) - 1; b < int64(batches) && time.Now().Before(deadline); b = next.Add(1) - 1 {
				for i := range events {
					events[i] = event(r.IntN(l.contacts), i+int(b), time.Now())
				}
				t := time.Now()
				if err := l.send("/v1/events", batchBody(events)); err != nil {
					errc <- err
					return
				}
				lat.add(w, time.Since(t))
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	el := time.Since(start)
	n := lat.count() * l.batch
	fmt.Printf("batch: %d events in %d requests of %d from %d clients in %.1fs: %.0f events/s; request latency %s\n",
		n, lat.count(), l.batch, l.clients, el.Seconds(), float64(n)/el.Seconds(), lat.summary())
	return nil
}

// check sends single-recipient checks at a fixed rate over keep-alive connections. A
// worker whose answer came back before its next request was due sleeps until then, and
// that request counts from when the worker woke, but no later than timerSlop after it
// was due: Go's timers can wake an idle process a millisecond late, and that lateness is
// the loader's, not the server's; a later wake means something held the loader up (the
// machine, or the server's work on the same cores), and it counts. A worker whose answer
// came back after the next request was due sends it at once, and it counts from lateFrom.
// It speaks HTTP/1.1 on raw connections: net/http's client costs more CPU per request
// than the server does, and on a two-core machine it would measure itself.
func (l *loader) check() error {
	u, _ := url.Parse(l.url)
	perWorker := time.Duration(float64(time.Second) * float64(l.clients) / float64(l.rate))
	lat := newLatencies(l.clients)
	before, err := l.hubChecks()
	if err != nil {
		return err
	}
	var errs, overslept atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(20 * time.Millisecond)
	end := start.Add(l.duration)
	for w := range l.clients {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			return err
		}
		defer conn.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 3))
			rd := bufio.NewReaderSize(conn, 4096)
			due := start.Add(perWorker * time.Duration(w) / time.Duration(l.clients))
			var req []byte
			var from time.Time // when the request counts from
			for ; due.Before(end); due = due.Add(perWorker) {
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
					woke := time.Now()
					if from = sleptFrom(due, woke); from.Before(woke) {
						overslept.Add(1)
					}
				} else {
					from = lateFrom(from, due, time.Now(), perWorker)
				}
				body := `{"channel":"email","topic":"promotions","recipients":[{"email":"` + email(r.IntN(l.contacts)) + `"}]}`
				req = fmt.Appendf(req[:0], "POST /v1/check HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
					u.Host, l.key, len(body), body)
				if _, err := conn.Write(req); err != nil {
					errs.Add(1)
					return
				}
				status, err := readResponse(rd)
				if err != nil || status != 200 {
					if errs.Add(1) < 5 {
						fmt.Fprintln(os.Stderr, "check:", status, err)
					}
					if err != nil {
						return
					}
					continue
				}
				lat.add(w, time.Since(from))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	n := lat.count()
	fmt.Printf("check: %d single-recipient checks, target %d/s, achieved %.0f/s over %d keep-alive connections; latency %s; errors %d; woken more than %s late %d times\n",
		n, l.rate, float64(n)/el.Seconds(), l.clients, lat.summary(), errs.Load(), timerSlop, overslept.Load())
	after, err := l.hubChecks()
	if err != nil {
		return err
	}
	if handled := after.count - before.count; handled > 0 {
		fmt.Printf("check: the hub's own view: %.0f of %.0f handled in under 100µs, %.0f in under 1ms\n",
			after.under100us-before.under100us, handled, after.under1ms-before.under1ms)
	}
	return nil
}

// timerSlop is how late a worker's timer may wake it before the lateness counts against
// the server: Go's poller sleeps in whole milliseconds.
const timerSlop = 1100 * time.Microsecond

// sleptFrom is when a request counts from whose worker slept until it was due and woke
// at woke: from then, but no later than timerSlop after it was due.
func sleptFrom(due, woke time.Time) time.Time {
	if limit := due.Add(timerSlop); woke.After(limit) {
		return limit
	}
	return woke
}

// lateFrom is when a request counts from that is sent at once, at now, because the answer
// to the one before (which counted from prev) came after this one was due: from when it
// was due, so a stalled server is not hidden, but no earlier than one interval after
// prev, so what the loader was late by in sending that one (at most timerSlop) is not
// carried over and blamed on the server; and never later than now.
func lateFrom(prev, due, now time.Time, interval time.Duration) time.Time {
	from := prev.Add(interval)
	if from.Before(due) {
		from = due
	}
	if now.Before(from) {
		from = now
	}
	return from
}

// hubCheckCounts are the hub's cumulative counts of single checks by how long its
// handler took, from the request-duration histogram on its /metrics page. Set beside
// the loader's latencies, they tell time spent in the hub's handler from time spent
// getting the request to it and the answer back (the network stack, the schedulers of
// the two processes and of the machine).
type hubCheckCounts struct{ under100us, under1ms, count float64 }

func (l *loader) hubChecks() (hubCheckCounts, error) {
	var c hubCheckCounts
	res, err := l.client.Get(l.url + "/metrics")
	if err != nil {
		return c, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return c, fmt.Errorf("metrics: %s", res.Status)
	}
	const series = `prefsync_http_request_duration_seconds_`
	const route = `route="POST /v1/check"`
	seen := 0
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		sp := strings.LastIndexByte(line, ' ') // the route holds a space too
		if sp < 0 || !strings.HasPrefix(line, series) || !strings.Contains(line, route) {
			continue
		}
		name, value := line[:sp], line[sp+1:]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return c, fmt.Errorf("metrics: %q: %w", line, err)
		}
		switch strings.TrimPrefix(name, series) {
		case "bucket{" + route + `,le="0.0001"}`:
			c.under100us = v
			seen++
		case "bucket{" + route + `,le="0.001"}`:
			c.under1ms = v
			seen++
		case "count{" + route + "}":
			c.count = v
			seen++
		}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	if seen != 3 {
		return c, fmt.Errorf("metrics: the hub's page lacks the 100µs and 1ms buckets or the count of %s", route)
	}
	return c, nil
}

// readResponse reads one HTTP/1.1 response with a Content-Length body and returns its
// status code.
func readResponse(rd *bufio.Reader) (int, error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, _ := strconv.Atoi(string(line[9:12]))
	length := -1
	for {
		h, err := rd.ReadSlice('\n')
		if err != nil {
			return status, err
		}
		if len(h) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(h, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(value)))
		}
	}
	if length < 0 {
		return status, fmt.Errorf("response without Content-Length")
	}
	_, err = rd.Discard(length)
	return status, err
}

// stream filters count recipients through one NDJSON check per client.
func (l *loader) stream() error {
	streams := min(l.clients, 4)
	var wg sync.WaitGroup
	var got atomic.Int64
	errc := make(chan error, streams)
	start := time.Now()
	for s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := l.count / streams
			pr, pw := io.Pipe()
			go func() {
				w := bufio.NewWriterSize(pw, 64<<10)
				line := make([]byte, 0, 64)
				for i := range n {
					line = append(line[:0], `{"email":"user`...)
					id := (i*7919 + s) % l.contacts
					line = append(line, zeroPad(id)...)
					line = append(line, "@example.com\"}\n"...)
					w.Write(line)
				}
				w.Flush()
				pw.Close()
			}()
			res, err := l.post("/v1/check?channel=email&topic=promotions", "application/x-ndjson", pr)
			if err != nil {
				errc <- err
				return
			}
			defer res.Body.Close()
			if res.StatusCode != 200 {
				errc <- fmt.Errorf("stream: %d", res.StatusCode)
				return
			}
			sc := bufio.NewScanner(res.Body)
			lines := 0
			for sc.Scan() {
				lines++
			}
			got.Add(int64(lines))
			if lines != n {
				errc <- fmt.Errorf("stream %d: %d results for %d recipients", s, lines, n)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	el := time.Since(start)
	fmt.Printf("stream: %d recipients over %d NDJSON streams in %.2fs: %.0f recipients/s\n", got.Load(), streams, el.Seconds(), float64(got.Load())/el.Seconds())
	return nil
}

func zeroPad(i int) []byte {
	b := strconv.AppendInt(nil, int64(i), 10)
	for len(b) < 7 {
		b = append([]byte{'0'}, b...)
	}
	return b
}

// latencies collects samples per worker without contention.
type latencies struct {
	mu      sync.Mutex
	samples [][]time.Duration
}

func newLatencies(workers int) *latencies {
	return &latencies{samples: make([][]time.Duration, workers)}
}

func (l *latencies) add(w int, d time.Duration) {
	if len(l.samples[w]) < 5_000_000 {
		l.samples[w] = append(l.samples[w], d)
	}
}

func (l *latencies) count() int {
	n := 0
	for _, s := range l.samples {
		n += len(s)
	}
	return n
}

func (l *latencies) summary() string {
	var all []time.Duration
	for _, s := range l.samples {
		all = append(all, s...)
	}
	if len(all) == 0 {
		return "n/a"
	}
	slices.Sort(all)
	p := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	return fmt.Sprintf("p50 %s p90 %s p99 %s max %s", p(.5).Round(time.Microsecond), p(.9).Round(time.Microsecond),
		p(.99).Round(time.Microsecond), all[len(all)-1].Round(time.Microsecond))
}
