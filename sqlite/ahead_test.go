package sqlite

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"prefsync"
	"prefsync/storetest"
)

var (
	t0        = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	news      = prefsync.Scope{Channel: "email", Topic: "newsletter"}
	promos    = prefsync.Scope{Channel: "email", Topic: "promotions"}
	aheadTest = prefsync.Source{System: "test", Touchpoint: prefsync.API}
)

func openAhead(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "p.db"), ConflictWindow: time.Second,
		Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustApply(t *testing.T, db *DB, a *ahead, evs ...prefsync.Event) []prefsync.EventResult {
	t.Helper()
	res, _, err := db.applyEvents(context.Background(), a, evs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustReadAhead(t *testing.T, db *DB, evs ...prefsync.Event) *ahead {
	t.Helper()
	a, err := db.readAhead(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The store's contract holds with every batch read ahead, however small.
func TestContractReadingAhead(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) prefsync.Store {
		db, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "p.db"), ConflictWindow: time.Second, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		db.aheadMin = 1
		return db
	})
}

// A read ahead that no write has overtaken is what the writer uses.
func TestAheadUsedWhileTrue(t *testing.T) {
	db := openAhead(t)
	c := mustApply(t, db, nil, storetest.Event("a@example.com", news, prefsync.OptedIn, t0))[0].ContactID
	ev := storetest.Event("a@example.com", promos, prefsync.OptedIn, t0.Add(time.Minute))
	a := mustReadAhead(t, db, ev, storetest.Event("new@example.com", news, prefsync.OptedIn, t0))
	email := prefsync.Identifier{Kind: prefsync.IdentifierEmail, Value: "a@example.com"}
	wt := &tx{db: db, last: map[int64]int64{}}
	if n, ok := a.find(wt, email); !ok || idOf(n) != c {
		t.Fatalf("find a@example.com = %d, %v; want contact %s, true", n, ok, c)
	}
	unknown := prefsync.Identifier{Kind: prefsync.IdentifierEmail, Value: "new@example.com"}
	if n, ok := a.find(wt, unknown); !ok || n != 0 {
		t.Fatalf("find new@example.com = %d, %v; want 0, true", n, ok)
	}
	cache := map[string]*prefsync.Contact{}
	a.fill(wt, cache)
	if cache[c] == nil || cache[c].Version != 1 {
		t.Fatalf("cache = %v; want contact %s at version 1", cache, c)
	}
	// Marked, the copy read ahead shows that the writer built on it.
	cache[c].Version = 10
	if res := mustApply(t, db, a, ev); res[0].ContactID != c || res[0].Version != 11 {
		t.Fatalf("result %+v; want contact %s at version 11, from the copy read ahead", res[0], c)
	}
	// Once the contact is written, the read is no longer true.
	if _, ok := a.find(wt, email); ok {
		t.Fatal("find still answers from the read ahead after the contact was written")
	}
}

// A contact written after the read ahead began is read again: the later event builds
// on the write, instead of overwriting it with what was read.
func TestAheadOvertakenByWrite(t *testing.T) {
	db := openAhead(t)
	c := mustApply(t, db, nil, storetest.Event("a@example.com", news, prefsync.OptedIn, t0))[0].ContactID
	ev := storetest.Event("a@example.com", promos, prefsync.OptedIn, t0.Add(2*time.Minute))
	a := mustReadAhead(t, db, ev)
	mustApply(t, db, nil, storetest.Event("a@example.com", news, prefsync.OptedOut, t0.Add(time.Minute)))
	res := mustApply(t, db, a, ev)
	if res[0].Version != 3 {
		t.Fatalf("version %d; want 3 (the write in between counted)", res[0].Version)
	}
	got, err := db.FindContact(context.Background(), prefsync.ContactFilter{ID: &c})
	if err != nil {
		t.Fatal(err)
	}
	want := map[prefsync.Scope]prefsync.State{news: prefsync.OptedOut, promos: prefsync.OptedIn}
	for _, s := range got.State.Scopes {
		if s.State != want[s.Scope()] {
			t.Errorf("%v is %s; want %s", s.Scope(), s.State, want[s.Scope()])
		}
		delete(want, s.Scope())
	}
	if len(want) > 0 {
		t.Errorf("scopes missing: %v", want)
	}
}

// An identifier found by no contact when read, and given to one since, finds it.
func TestAheadIdentifierAddedSince(t *testing.T) {
	db := openAhead(t)
	ev := storetest.Event("b@example.com", promos, prefsync.OptedIn, t0.Add(time.Minute))
	a := mustReadAhead(t, db, ev)
	c := mustApply(t, db, nil, storetest.Event("b@example.com", news, prefsync.OptedIn, t0))[0].ContactID
	if res := mustApply(t, db, a, ev); res[0].ContactID != c {
		t.Fatalf("event went to %s; want %s, the contact created since the read", res[0].ContactID, c)
	}
}

// An identifier whose contact was merged since the read finds the survivor.
func TestAheadMergedSince(t *testing.T) {
	db := openAhead(t)
	from := mustApply(t, db, nil, storetest.Event("c@example.com", news, prefsync.OptedIn, t0))[0].ContactID
	into := mustApply(t, db, nil, storetest.Event("d@example.com", news, prefsync.OptedIn, t0))[0].ContactID
	ev := storetest.Event("c@example.com", promos, prefsync.OptedIn, t0.Add(time.Minute))
	a := mustReadAhead(t, db, ev)
	if _, err := db.MergeContacts(context.Background(), into, from, aheadTest, t0); err != nil {
		t.Fatal(err)
	}
	if res := mustApply(t, db, a, ev); res[0].ContactID != into {
		t.Fatalf("event went to %s; want %s, the contact %s was merged into", res[0].ContactID, into, from)
	}
}

// A request whose transaction failed with another's is run again alone, and its result
// is as if the failed run never was: it does not build on the copies it changed.
func TestAheadRunAgain(t *testing.T) {
	db := openAhead(t)
	mustApply(t, db, nil, storetest.Event("e@example.com", news, prefsync.OptedIn, t0))
	mustApply(t, db, nil, prefsync.Event{Subject: prefsync.Subject{Phone: "+14155550100"}, Scope: news, State: prefsync.OptedIn,
		OccurredAt: t0, ReceivedAt: t0, Source: aheadTest, Evidence: prefsync.Evidence{Method: prefsync.Explicit}})
	ev := storetest.Event("e@example.com", news, prefsync.OptedOut, t0.Add(time.Minute))
	a := mustReadAhead(t, db, ev)
	// Hold the writer, queue both requests, and let it take them in one transaction.
	release := holdWriter(t, db)
	first := goApply(db, a, ev)
	waitQueued(t, db, 1)
	conflicting := storetest.Event("e@example.com", promos, prefsync.OptedIn, t0)
	conflicting.Subject.Phone = "+14155550100" // another contact's
	second := goApply(db, nil, conflicting)
	waitQueued(t, db, 2)
	release()
	if got := <-second; prefsync.ErrorCode(got.err) != prefsync.ECONFLICT {
		t.Fatalf("second request: %v; want ECONFLICT", got.err)
	}
	got := <-first
	if got.err != nil {
		t.Fatal(got.err)
	}
	if r := got.res[0]; r.Status != prefsync.Applied || r.Version != 2 {
		t.Fatalf("result %+v; want applied at version 2, as if the failed run never was", r)
	}
}

// A read ahead overtaken by a request before it in the same transaction is not used,
// even when the read began just as the transaction did.
func TestAheadOvertakenInTheSameTransaction(t *testing.T) {
	db := openAhead(t)
	c := mustApply(t, db, nil, storetest.Event("f@example.com", news, prefsync.OptedIn, t0))[0].ContactID
	ev := storetest.Event("f@example.com", promos, prefsync.OptedIn, t0.Add(2*time.Minute))
	release := holdWriter(t, db)
	// The transaction's first request reads ahead for its third: after every earlier
	// transaction ended, before the second request writes the contact.
	a := &ahead{}
	go db.do(context.Background(), func(*tx) error {
		read, err := db.readAhead(context.Background(), []prefsync.Event{ev})
		if err == nil {
			*a = *read
		}
		return err
	})
	waitQueued(t, db, 1)
	first := goApply(db, nil, storetest.Event("f@example.com", news, prefsync.OptedOut, t0.Add(time.Minute)))
	waitQueued(t, db, 2)
	second := goApply(db, a, ev)
	waitQueued(t, db, 3)
	release()
	if got := <-first; got.err != nil {
		t.Fatal(got.err)
	}
	got := <-second
	if got.err != nil {
		t.Fatal(got.err)
	}
	if r := got.res[0]; r.ContactID != c || r.Version != 3 {
		t.Fatalf("result %+v; want contact %s at version 3, after the first request's write", r, c)
	}
}

type answer struct {
	res []prefsync.EventResult
	err error
}

// goApply applies events in the writer, with what a read ahead, and answers on the
// channel it returns.
func goApply(db *DB, a *ahead, events ...prefsync.Event) chan answer {
	out := make(chan answer, 1)
	go func() {
		res, _, err := db.applyEvents(context.Background(), a, events)
		out <- answer{res, err}
	}()
	return out
}

// holdWriter keeps the writer busy until release is called, so that the requests queued
// meanwhile go into one transaction.
func holdWriter(t *testing.T, db *DB) (release func()) {
	started, done := make(chan struct{}), make(chan struct{})
	go db.do(context.Background(), func(*tx) error { close(started); <-done; return nil })
	<-started
	return func() { close(done) }
}

// waitQueued waits until n requests wait for the writer.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(db.reqs) < n; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued after 10 s; want %d", len(db.reqs), n)
		}
	}
}

// touches forgets old transactions in steps, and then answers "may have been touched"
// for what it forgot.
func TestTouchesForget(t *testing.T) {
	m := newTouches()
	k := touch{contact: 1}
	m.begin(1)
	m.cur[k] = 1
	for i := range touchesKept {
		m.cur[touch{contact: int64(100 + i)}] = 1
	}
	m.begin(2) // cur becomes prev
	for _, c := range []struct {
		since uint64
		want  bool
	}{{0, true}, {1, false}, {2, false}} {
		if got := m.after(k, c.since); got != c.want {
			t.Errorf("after one step: after(k, %d) = %v; want %v", c.since, got, c.want)
		}
	}
	if m.after(touch{contact: 2}, 0) {
		t.Error("an untouched contact counts as touched while nothing is forgotten")
	}
	for i := range touchesKept {
		m.cur[touch{contact: int64(100 + i)}] = 2
	}
	m.begin(3) // transaction 1's touches are forgotten
	for _, c := range []struct {
		since uint64
		want  bool
	}{{0, true}, {1, false}, {2, false}} {
		if got := m.after(k, c.since); got != c.want {
			t.Errorf("after two steps: after(k, %d) = %v; want %v", c.since, got, c.want)
		}
	}
}
