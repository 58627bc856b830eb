package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"prefsync"
	"prefsync/postgres/pgtest"
)

// TestMain lets a test start this binary as a real "prefsync serve" process, so that it
// can be killed.
func TestMain(m *testing.M) {
	if os.Getenv("PREFSYNC_TEST_SERVE") == "1" {
		p := &Program{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
			Listening: func(addr string) { fmt.Println("LISTENING", addr) }}
		if err := p.Run(context.Background(), os.Args[len(os.Args)-1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startProcess(t *testing.T, db string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "serve")
	cmd.Env = append(os.Environ(), "PREFSYNC_TEST_SERVE=1", "PREFSYNC_DATABASE="+db,
		"PREFSYNC_ADDR=127.0.0.1:0", "PREFSYNC_BOOTSTRAP_ADMIN_KEY="+killKey, "PREFSYNC_LOG_LEVEL=warn")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("hub did not start")
	}
	return nil, ""
}

const killKey = "kill-test-admin-key-0123"

var killClient = &http.Client{Timeout: 5 * time.Second}

// post sends an authenticated JSON POST to the hub.
func post(url, body string) (*http.Response, error) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+killKey)
	return killClient.Do(req)
}

// optOuts sends opt-outs of new contacts from several clients until stopped or until
// the hub is gone, and keeps the addresses whose opt-out the hub acknowledged.
type optOuts struct {
	mu    sync.Mutex
	acked []string
	wg    sync.WaitGroup
	stop  chan struct{}
}

// checkReason asks the hub at url whether email may be sent topic by email, and returns
// the reason of its one decision ("" unless there is exactly one).
func checkReason(t *testing.T, url, topic, email string) string {
	t.Helper()
	res, err := post(url+"/v1/check", `{"channel":"email","topic":"`+topic+`","recipients":[{"email":"`+email+`"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Results []prefsync.Decision }
	json.NewDecoder(res.Body).Decode(&body)
	if len(body.Results) != 1 {
		return ""
	}
	return body.Results[0].Reason
}

func startOptOuts(url string, clients, each int) *optOuts {
	o := &optOuts{stop: make(chan struct{})}
	for w := range clients {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			for i := 0; i < each; i++ {
				select {
				case <-o.stop:
					return
				default:
				}
				email := fmt.Sprintf("w%d-%d@example.com", w, i)
				res, err := post(url+"/v1/events", `{"subject":{"email":"`+email+`"},"channel":"email","topic":"*","state":"opted_out"}`)
				if err != nil {
					return // the hub is gone
				}
				res.Body.Close()
				if res.StatusCode == 200 {
					o.mu.Lock()
					o.acked = append(o.acked, email)
					o.mu.Unlock()
				}
			}
		}()
	}
	return o
}

// Count returns how many events were acknowledged so far.
func (o *optOuts) Count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.acked)
}

// Stop stops the clients and returns the acknowledged addresses.
func (o *optOuts) Stop() []string {
	close(o.stop)
	o.wg.Wait()
	return o.acked
}

// TestAcknowledgedSurvivesKill sends events from several clients, kills the hub with
// SIGKILL while they are in flight, and expects every event it acknowledged to be there
// after a restart: durable before the 200.
func TestAcknowledgedSurvivesKill(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kill.db")
	cmd, url := startProcess(t, db)
	writers := startOptOuts(url, 8, 2000)
	time.Sleep(300 * time.Millisecond) // let writes be in flight: the point of the test
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	acked := writers.Stop()
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged before the kill")
	}

	_, url = startProcess(t, db)
	for _, email := range acked {
		if reason := checkReason(t, url, "product_updates", email); reason != "opted_out:(email,*)" {
			t.Fatalf("acknowledged opt-out of %s lost after SIGKILL: %q", email, reason)
		}
	}
	var out strings.Builder
	p := &Program{Stdout: &out, Stderr: &out, Getenv: func(k string) string { return map[string]string{"PREFSYNC_DATABASE": db}[k] }}
	if err := p.Run(context.Background(), []string{"audit", "verify"}); err != nil || !strings.Contains(out.String(), "audit trail OK") {
		t.Errorf("audit chain after SIGKILL: %v %s", err, out.String())
	}
	t.Logf("%d acknowledged events all present after SIGKILL and restart; %s", len(acked), strings.TrimSpace(out.String()))
}

// TestDeliveriesSurviveKill kills the hub with SIGKILL while it is both accepting
// changes and delivering them to a webhook destination, restarts it, and expects every
// change it acknowledged to reach the destination: at least once, duplicates counted.
func TestDeliveriesSurviveKill(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{} // email → deliveries of its change
	var slow atomic.Bool     // the receiver slows down, so that changes wait for it
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ch prefsync.Change
		if err := json.NewDecoder(r.Body).Decode(&ch); err != nil || len(ch.Data.Contact.Emails) != 1 {
			t.Errorf("delivery body: %v %+v", err, ch)
			return
		}
		time.Sleep(time.Millisecond) // a receiver that takes a moment keeps deliveries in flight
		if slow.Load() {
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		seen[ch.Data.Contact.Emails[0]]++
		mu.Unlock()
	}))
	defer receiver.Close()

	db := filepath.Join(t.TempDir(), "kill.db")
	cmd, url := startProcess(t, db)
	res, err := post(url+"/v1/destinations", `{"name":"crm","url":"`+receiver.URL+`"}`)
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create destination: %v %v", err, res)
	}
	res.Body.Close()
	writers := startOptOuts(url, 4, 5000)

	// Wait until deliveries are flowing, slow the receiver down until acknowledged
	// changes wait for it, then kill the hub in the middle of them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 50 {
			slow.Store(true)
		}
		if n >= 50 && writers.Count() >= n+20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	slow.Store(false)
	acked := writers.Stop()
	mu.Lock()
	before := len(seen)
	mu.Unlock()
	if before == 0 || len(acked) <= before {
		t.Fatalf("killed with %d changes acknowledged and %d delivered: nothing was in flight", len(acked), before)
	}

	startProcess(t, db)
	deadline = time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for _, e := range acked {
			if seen[e] == 0 {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged changes never delivered after the restart", missing, len(acked))
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("%d changes acknowledged, %d delivered before SIGKILL, all delivered after restart; %d duplicates (at-least-once)",
		len(acked), before, dups)
}

// TestSeveralProcesses runs two real hubs on one PostgreSQL database: changes written
// through either are checked through the other, and a destination gets every change
// once however the two share the deliveries; then one is killed with SIGKILL mid-way,
// and the other delivers what it left.
func TestSeveralProcesses(t *testing.T) {
	dsn := pgtest.DSN(t)
	var mu sync.Mutex
	seen := map[string]int{} // email → deliveries
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ch prefsync.Change
		if err := json.NewDecoder(r.Body).Decode(&ch); err != nil || len(ch.Data.Contact.Emails) != 1 {
			t.Errorf("delivery body: %v %+v", err, ch)
			return
		}
		mu.Lock()
		seen[ch.Data.Contact.Emails[0]]++
		mu.Unlock()
	}))
	defer receiver.Close()

	// A short lease, so the deliveries the killed process held come back in seconds.
	t.Setenv("PREFSYNC_CLAIM_LEASE", "3s")
	t.Setenv("PREFSYNC_DELIVERY_TIMEOUT", "2s")
	p1, url1 := startProcess(t, dsn)
	_, url2 := startProcess(t, dsn)
	res, err := post(url1+"/v1/destinations", `{"name":"crm","url":"`+receiver.URL+`"}`)
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create destination: %v %v", err, res)
	}
	res.Body.Close()

	// Written through one, checked through the other.
	const n = 60
	for i := range n {
		via, other := url1, url2
		if i%2 == 1 {
			via, other = url2, url1
		}
		email := fmt.Sprintf("p%d@example.com", i)
		res, err := post(via+"/v1/events", `{"subject":{"email":"`+email+`"},"channel":"email","topic":"*","state":"opted_out"}`)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("event %d: %v %v", i, err, res)
		}
		res.Body.Close()
		deadline := time.Now().Add(time.Second)
		for {
			if checkReason(t, other, "newsletter", email) == "opted_out:(email,*)" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("change %d written through one process not seen through the other within 1 s", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// One process dies with SIGKILL while both take changes; the other carries on.
	writers := startOptOuts(url2, 2, 200)
	time.Sleep(100 * time.Millisecond) // changes in flight when the first process dies
	p1.Process.Signal(syscall.SIGKILL)
	p1.Wait()
	acked := writers.Stop()

	want := n + len(acked)
	deadline := time.Now().Add(30 * time.Second) // bounded: the dead process's leases end after 3 s
	for {
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		if got >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d changes delivered", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("%d changes through two processes, one SIGKILLed mid-way: all delivered, %d duplicates", want, dups)
}

// TestPostgresRestart restarts the PostgreSQL server while a hub takes writes: writes
// fail fast while it is gone (503, never a hang), succeed again once it is back, and
// every write acknowledged before, during or after is there. It restarts the machine's
// server, so it runs only when PREFSYNC_TEST_PG_RESTART=1 (.ci/run runs it on its own,
// after the other tests).
func TestPostgresRestart(t *testing.T) {
	if os.Getenv("PREFSYNC_TEST_PG_RESTART") != "1" {
		t.Skip("restarts the PostgreSQL server: set PREFSYNC_TEST_PG_RESTART=1 (.ci/run does, in a step of its own)")
	}
	dsn := pgtest.DSN(t)
	_, url := startProcess(t, dsn)
	writers := startOptOuts(url, 2, 100000)
	time.Sleep(200 * time.Millisecond) // writes under way when the server goes
	versions, _ := exec.Command("ls", "/etc/postgresql").Output()
	cluster := strings.TrimSpace(string(versions))
	if out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart").CombinedOutput(); err != nil {
		t.Fatalf("restart PostgreSQL: %v %s", err, out)
	}
	time.Sleep(500 * time.Millisecond) // writes after it is back
	acked := writers.Stop()
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	// A write now succeeds: the hub recovered without a restart of its own.
	res, err := post(url+"/v1/events", `{"subject":{"email":"after@example.com"},"channel":"email","topic":"*","state":"opted_out"}`)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("write after the restart: %v %v", err, res)
	}
	res.Body.Close()
	_, url2 := startProcess(t, dsn) // a fresh process loads from the database alone
	for _, email := range append(acked, "after@example.com") {
		if reason := checkReason(t, url2, "newsletter", email); reason != "opted_out:(email,*)" {
			t.Fatalf("acknowledged opt-out of %s lost across the PostgreSQL restart: %q", email, reason)
		}
	}
	t.Logf("%d writes acknowledged around a PostgreSQL restart, all there", len(acked))
}
