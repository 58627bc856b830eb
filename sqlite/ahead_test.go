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

func mustApply(t *testing.T, db *DB, evs ...prefsync.Event) []prefsync.EventResult {
	t.Helper()
	res, _, err := db.ApplyEvents(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// What a batch reads ahead: each identifier it names with its contact or none, and the
// live contacts into its cache, with their latest audit entries; a merged contact is
// left out.
func TestReadAhead(t *testing.T) {
	db := openAhead(t)
	ctx := context.Background()
	res := mustApply(t, db,
		storetest.Event("a@example.com", news, prefsync.OptedIn, t0),
		storetest.Event("b@example.com", news, prefsync.OptedIn, t0),
		storetest.Event("a@example.com", promos, prefsync.OptedIn, t0))
	a, b := res[0].ContactID, res[1].ContactID
	if _, err := db.MergeContacts(ctx, a, b, aheadTest, t0); err != nil {
		t.Fatal(err)
	}
	email := func(s string) prefsync.Identifier {
		return prefsync.Identifier{Kind: prefsync.IdentifierEmail, Value: s}
	}
	err := db.do(ctx, func(t2 *tx) error {
		cache := map[string]*prefsync.Contact{}
		read, err := t2.readAhead([]prefsync.Event{
			storetest.Event("a@example.com", news, prefsync.OptedOut, t0),
			storetest.Event("new@example.com", news, prefsync.OptedOut, t0),
			{Subject: prefsync.Subject{ContactID: b}},
		}, cache)
		if err != nil {
			return err
		}
		if n, ok := read[email("a@example.com")]; !ok || idOf(n) != a {
			t.Errorf("a@example.com: %d, %v; want contact %s", n, ok, a)
		}
		if n, ok := read[email("b@example.com")]; ok {
			t.Errorf("b@example.com, which the batch does not name: %d, %v; want not read", n, ok)
		}
		if n, ok := read[email("new@example.com")]; !ok || n != 0 {
			t.Errorf("new@example.com: %d, %v; want no contact", n, ok)
		}
		c := cache[a]
		if c == nil || c.ID != a || c.Version != 3 || !c.HasIdentifier(email("b@example.com")) {
			t.Errorf("contact read ahead: %+v; want %s at version 3 with b's address", c, a)
		}
		if _, ok := cache[b]; ok || len(cache) != 1 {
			t.Errorf("contacts read ahead: %v; want only %s, the merged contact left to LoadContact", cache, a)
		}
		if t2.last[num(a)] != 5 {
			t.Errorf("latest entry of %s: %d; want 5 (the merge entry on it)", a, t2.last[num(a)])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// An address the batch gives a new contact finds that contact later in the batch,
// though it was read ahead as finding none.
func TestAheadIdentifierAddedInBatch(t *testing.T) {
	db := openAhead(t)
	res := mustApply(t, db,
		storetest.Event("n@example.com", news, prefsync.OptedIn, t0),
		storetest.Event("n@example.com", promos, prefsync.OptedIn, t0))
	if res[0].ContactID != res[1].ContactID || res[1].Version != 2 {
		t.Fatalf("results %+v; want one contact, at version 2", res)
	}
}

// A batch read ahead after an earlier request of the same transaction wrote its contact
// builds on that write, and links its entries after the earlier one's, even an entry
// that did not change the contact (so its row was not saved).
func TestAheadAfterEarlierRequest(t *testing.T) {
	db := openAhead(t)
	c := mustApply(t, db, storetest.Event("f@example.com", news, prefsync.OptedOut, t0))[0].ContactID
	release := holdWriter(t, db)
	implicit := storetest.Event("f@example.com", news, prefsync.OptedIn, t0.Add(time.Minute))
	implicit.Evidence.Method = prefsync.Implicit // rejected after an opt-out: audited, not saved
	first := goApply(db, implicit)
	waitQueued(t, db, 1)
	second := goApply(db, storetest.Event("f@example.com", promos, prefsync.OptedIn, t0.Add(2*time.Minute)))
	waitQueued(t, db, 2)
	release()
	if got := <-first; got.err != nil || got.res[0].Status != prefsync.Rejected {
		t.Fatalf("first request: %+v, %v; want rejected", got.res, got.err)
	}
	got := <-second
	if got.err != nil {
		t.Fatal(got.err)
	}
	if r := got.res[0]; r.ContactID != c || r.Version != 2 {
		t.Fatalf("result %+v; want contact %s at version 2", r, c)
	}
	h, err := db.History(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 {
		t.Errorf("history has %d entries; want 3", len(h))
	}
	if rep, err := db.VerifyAudit(context.Background()); err != nil || !rep.OK {
		t.Errorf("verify: %+v, %v", rep, err)
	}
}

// A request whose transaction failed with another's is run again alone, and its result
// is as if the failed run never was.
func TestAheadRunAgain(t *testing.T) {
	db := openAhead(t)
	mustApply(t, db, storetest.Event("e@example.com", news, prefsync.OptedIn, t0))
	mustApply(t, db, prefsync.Event{Subject: prefsync.Subject{Phone: "+14155550100"}, Scope: news, State: prefsync.OptedIn,
		OccurredAt: t0, ReceivedAt: t0, Source: aheadTest, Evidence: prefsync.Evidence{Method: prefsync.Explicit}})
	// Hold the writer, queue both requests, and let it take them in one transaction.
	release := holdWriter(t, db)
	first := goApply(db, storetest.Event("e@example.com", news, prefsync.OptedOut, t0.Add(time.Minute)))
	waitQueued(t, db, 1)
	conflicting := storetest.Event("e@example.com", promos, prefsync.OptedIn, t0)
	conflicting.Subject.Phone = "+14155550100" // another contact's
	second := goApply(db, conflicting)
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

type answer struct {
	res []prefsync.EventResult
	err error
}

// goApply applies events and answers on the channel it returns.
func goApply(db *DB, events ...prefsync.Event) chan answer {
	out := make(chan answer, 1)
	go func() {
		res, _, err := db.ApplyEvents(context.Background(), events)
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

// An address given to a new contact by an earlier request of the same transaction finds
// that contact: no second one is made.
func TestAheadAddressFromEarlierRequest(t *testing.T) {
	db := openAhead(t)
	release := holdWriter(t, db)
	first := goApply(db, storetest.Event("g@example.com", news, prefsync.OptedIn, t0))
	waitQueued(t, db, 1)
	second := goApply(db, storetest.Event("g@example.com", promos, prefsync.OptedIn, t0))
	waitQueued(t, db, 2)
	release()
	a, b := <-first, <-second
	if a.err != nil || b.err != nil {
		t.Fatal(a.err, b.err)
	}
	if a.res[0].ContactID != b.res[0].ContactID || b.res[0].Version != 2 {
		t.Fatalf("results %+v and %+v; want one contact, at version 2 after both", a.res[0], b.res[0])
	}
}

// A batch read ahead after an earlier request of the same transaction merged two
// contacts finds the surviving one, through the merged contact's address and through
// its id, and links its entries after the merge's.
func TestAheadMergeInEarlierRequest(t *testing.T) {
	db := openAhead(t)
	res := mustApply(t, db,
		storetest.Event("keep@example.com", news, prefsync.OptedIn, t0),
		storetest.Event("gone@example.com", promos, prefsync.OptedIn, t0))
	keep, gone := res[0].ContactID, res[1].ContactID
	release := holdWriter(t, db)
	merged := make(chan error, 1)
	go func() {
		_, err := db.MergeContacts(context.Background(), keep, gone, aheadTest, t0.Add(time.Minute))
		merged <- err
	}()
	waitQueued(t, db, 1)
	byID := storetest.Event("", promos, prefsync.OptedOut, t0.Add(3*time.Minute))
	byID.Subject = prefsync.Subject{ContactID: gone}
	later := goApply(db, storetest.Event("gone@example.com", news, prefsync.OptedOut, t0.Add(2*time.Minute)), byID)
	waitQueued(t, db, 2)
	release()
	if err := <-merged; err != nil {
		t.Fatal(err)
	}
	got := <-later
	if got.err != nil {
		t.Fatal(got.err)
	}
	for i, r := range got.res {
		if r.ContactID != keep || r.Status != prefsync.Applied {
			t.Errorf("event %d: %+v; want applied to %s, the surviving contact", i, r, keep)
		}
	}
	c, err := db.FindContact(context.Background(), prefsync.ContactFilter{ID: &keep})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []prefsync.Scope{news, promos} {
		if st := c.State.Find(sc); st == nil || st.State != prefsync.OptedOut {
			t.Errorf("surviving contact's %v: %+v; want opted out", sc, st)
		}
	}
	h, err := db.History(context.Background(), keep)
	if err != nil {
		t.Fatal(err)
	}
	// Both contacts' first events, the merge (one entry on each contact), then the
	// batch's two on the surviving contact.
	if len(h) != 6 || h[2].Kind != prefsync.KindMerge || h[3].Kind != prefsync.KindMerge || h[4].ContactID != keep || h[5].ContactID != keep {
		for _, e := range h {
			t.Logf("%d %s %s %s", e.Seq, e.Kind, e.ContactID, e.Status)
		}
		t.Errorf("history has %d entries; want 6: two events, the merge's two entries, the batch's two on %s", len(h), keep)
	}
	if rep, err := db.VerifyAudit(context.Background()); err != nil || !rep.OK {
		t.Errorf("verify: %+v, %v", rep, err)
	}
}

// An event whose idempotency key an earlier request of the same transaction used is a
// duplicate of that request's event, and changes nothing.
func TestAheadDuplicateKeyInEarlierRequest(t *testing.T) {
	db := openAhead(t)
	ev := storetest.Event("d@example.com", news, prefsync.OptedOut, t0)
	ev.IdempotencyKey = "esp-42"
	release := holdWriter(t, db)
	first := goApply(db, ev)
	waitQueued(t, db, 1)
	second := goApply(db, ev)
	waitQueued(t, db, 2)
	release()
	a, b := <-first, <-second
	if a.err != nil || b.err != nil {
		t.Fatal(a.err, b.err)
	}
	if a.res[0].Status != prefsync.Applied || b.res[0].Status != prefsync.Duplicate {
		t.Fatalf("statuses %s and %s; want applied, then duplicate", a.res[0].Status, b.res[0].Status)
	}
	if b.res[0].ContactID != a.res[0].ContactID || b.res[0].Version != 1 {
		t.Errorf("duplicate's result %+v; want %s at version 1, unchanged", b.res[0], a.res[0].ContactID)
	}
	h, err := db.History(context.Background(), a.res[0].ContactID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[1].Status != prefsync.Duplicate {
		t.Errorf("history %+v; want the event, then its duplicate", h)
	}
	if rep, err := db.VerifyAudit(context.Background()); err != nil || !rep.OK {
		t.Errorf("verify: %+v, %v", rep, err)
	}
}
