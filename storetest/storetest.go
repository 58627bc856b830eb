// Package storetest is the contract every prefsync.Store must honour. Each store's tests
// call Run with a function that opens a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"prefsync"
)

// Opener opens a fresh, empty store whose clock is now.
type Opener func(t *testing.T, now func() time.Time) prefsync.Store

// Run runs the contract suite.
func Run(t *testing.T, open Opener) {
	t.Run("EventsCreateContactsAndResolve", func(t *testing.T) { testEvents(t, open) })
	t.Run("BatchIsAllOrNothing", func(t *testing.T) { testBatchAtomic(t, open) })
	t.Run("IdempotencyKey", func(t *testing.T) { testIdempotency(t, open) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrent(t, open) })
	t.Run("FailureIsolated", func(t *testing.T) { testFailureIsolated(t, open) })
	t.Run("Contacts", func(t *testing.T) { testContacts(t, open) })
	t.Run("Merge", func(t *testing.T) { testMerge(t, open) })
	t.Run("HistoryAndAuditChain", func(t *testing.T) { testHistory(t, open) })
	t.Run("EachContact", func(t *testing.T) { testEachContact(t, open) })
	t.Run("Suppressions", func(t *testing.T) { testSuppressions(t, open) })
	t.Run("APIKeys", func(t *testing.T) { testKeys(t, open) })
	t.Run("Destinations", func(t *testing.T) { testDestinations(t, open) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open) })
	t.Run("OutboxAtomic", func(t *testing.T) { testOutboxAtomic(t, open) })
	t.Run("MergeFansOut", func(t *testing.T) { testMergeFansOut(t, open) })
	t.Run("LinkKeys", func(t *testing.T) { testLinkKeys(t, open) })
	t.Run("Inbounds", func(t *testing.T) { testInbounds(t, open) })
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func fixed() time.Time { return t0 }

// Event builds a valid event for tests.
func Event(email string, scope prefsync.Scope, state prefsync.State, at time.Time) prefsync.Event {
	return prefsync.Event{
		Subject: prefsync.Subject{Email: email}, Scope: scope, State: state,
		OccurredAt: at, ReceivedAt: at, Source: prefsync.Source{System: "test", Touchpoint: prefsync.API},
		Evidence: prefsync.Evidence{Method: prefsync.Explicit, IP: "192.0.2.1", UserAgent: "agent"},
	}
}

var emailAll = prefsync.Scope{Channel: "email", Topic: "*"}
var emailNews = prefsync.Scope{Channel: "email", Topic: "newsletter"}

func apply(t *testing.T, s prefsync.Store, evs ...prefsync.Event) []prefsync.EventResult {
	t.Helper()
	res, _, err := s.ApplyEvents(context.Background(), evs)
	if err != nil {
		t.Fatalf("ApplyEvents: %v", err)
	}
	return res
}

func testEvents(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	res, changed, err := s.ApplyEvents(ctx, []prefsync.Event{
		Event("a@example.com", emailAll, prefsync.OptedOut, t0),
		Event("a@example.com", emailNews, prefsync.OptedIn, t0.Add(-time.Hour)),
		Event("b@example.com", emailNews, prefsync.OptedIn, t0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != prefsync.Applied || res[0].Version != 1 {
		t.Errorf("first event: %+v", res[0])
	}
	if res[1].Status != prefsync.Applied || res[1].Version != 2 || res[1].ContactID != res[0].ContactID {
		t.Errorf("second event (other scope, same contact): %+v", res[1])
	}
	if res[2].ContactID == res[0].ContactID {
		t.Errorf("b@ got a's contact")
	}
	if len(changed) != 2 {
		t.Fatalf("changed contacts = %d, want 2", len(changed))
	}
	a := changed[0]
	if a.Version != 2 || a.State.Find(emailAll).State != prefsync.OptedOut || len(a.Emails) != 1 {
		t.Errorf("changed contact: %+v", a)
	}

	// A late event changes nothing; the result says so.
	res = apply(t, s, Event("a@example.com", emailAll, prefsync.OptedIn, t0.Add(-time.Hour)))
	if res[0].Status != prefsync.Superseded || res[0].Version != 2 {
		t.Errorf("late event: %+v", res[0])
	}
	got, err := s.FindContact(ctx, prefsync.ContactFilter{ID: &res[0].ContactID})
	if err != nil {
		t.Fatal(err)
	}
	if st := got.State.Find(emailAll); st == nil || st.State != prefsync.OptedOut || !st.OccurredAt.Equal(t0) {
		t.Errorf("state after late event: %+v", st)
	}
	// Rule 2 holds in the store too.
	imp := Event("a@example.com", emailAll, prefsync.OptedIn, t0.Add(time.Hour))
	imp.Evidence.Method = prefsync.Implicit
	if res := apply(t, s, imp); res[0].Status != prefsync.Rejected {
		t.Errorf("implicit opt-in after opt-out: %+v", res[0])
	}
	// Unknown contact id is not found, and nothing is written.
	_, _, err = s.ApplyEvents(ctx, []prefsync.Event{{Subject: prefsync.Subject{ContactID: prefsync.ContactIDFromNumber(42)},
		Scope: emailAll, State: prefsync.OptedOut, OccurredAt: t0, ReceivedAt: t0, Source: prefsync.Source{System: "x", Touchpoint: prefsync.API}}})
	if prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("unknown contact id: %v", err)
	}
}

func testBatchAtomic(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	apply(t, s, Event("a@example.com", emailAll, prefsync.OptedOut, t0))
	apply(t, s, Event("b@example.com", emailAll, prefsync.OptedOut, t0))
	before, _ := s.VerifyAudit(ctx)
	// The third event names two contacts at once: the batch fails whole.
	bad := Event("a@example.com", emailNews, prefsync.OptedOut, t0)
	bad.Subject.Phone = "+14155552671"
	conflict := Event("a@example.com", emailNews, prefsync.OptedOut, t0)
	conflict.Subject.ContactID = prefsync.ContactIDFromNumber(7)
	_, _, err := s.ApplyEvents(ctx, []prefsync.Event{
		Event("c@example.com", emailAll, prefsync.OptedOut, t0),
		bad,
		conflict,
	})
	if prefsync.ErrorCode(err) == "" {
		t.Fatal("batch with a bad event succeeded")
	}
	if f := prefsync.ErrorField(err); f == "" || f[:9] != "events[2]" {
		t.Errorf("error field = %q, want events[2]…", f)
	}
	for _, e := range []string{"c@example.com"} {
		if _, err := s.FindContact(ctx, prefsync.ContactFilter{Email: &e}); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
			t.Errorf("%s exists after a refused batch: %v", e, err)
		}
	}
	phone := "+14155552671"
	if _, err := s.FindContact(ctx, prefsync.ContactFilter{Phone: &phone}); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("phone attached by a refused batch: %v", err)
	}
	after, _ := s.VerifyAudit(ctx)
	if after.Entries != before.Entries || !after.OK {
		t.Errorf("audit after refused batch: %+v, before %+v", after, before)
	}
	// The writer carries on: the next write chains correctly.
	apply(t, s, Event("d@example.com", emailAll, prefsync.OptedOut, t0))
	if rep, _ := s.VerifyAudit(ctx); !rep.OK || rep.Entries != before.Entries+1 {
		t.Errorf("audit after next write: %+v", rep)
	}
}

func testIdempotency(t *testing.T, open Opener) {
	s := open(t, fixed)
	ev := Event("a@example.com", emailAll, prefsync.OptedOut, t0)
	ev.IdempotencyKey = "k1"
	first := apply(t, s, ev)[0]
	again := apply(t, s, ev, ev)
	for i, r := range again {
		if r.Status != prefsync.Duplicate || r.ContactID != first.ContactID || r.Version != first.Version {
			t.Errorf("repeat %d: %+v (first %+v)", i, r, first)
		}
	}
	// A retry naming someone else changes nothing, and creates nobody.
	stray := ev
	stray.Subject = prefsync.Subject{Email: "stray@example.com"}
	if r := apply(t, s, stray)[0]; r.Status != prefsync.Duplicate || r.ContactID != first.ContactID {
		t.Errorf("retry with another subject: %+v", r)
	}
	if _, err := s.FindContact(context.Background(), prefsync.ContactFilter{Email: ptr("stray@example.com")}); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("a duplicate created its subject: %v", err)
	}
	// The same key from another system is another event.
	other := ev
	other.Source.System = "other"
	if r := apply(t, s, other)[0]; r.Status == prefsync.Duplicate {
		t.Errorf("key from another system: %+v", r)
	}
	hist, err := s.History(context.Background(), first.ContactID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 5 || hist[1].Status != prefsync.Duplicate || hist[2].Status != prefsync.Duplicate || hist[3].Status != prefsync.Duplicate {
		t.Errorf("history records duplicates: %d entries %+v", len(hist), hist)
	}
}

func testConcurrent(t *testing.T, open Opener) {
	s := open(t, fixed)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := Event("shared@example.com", emailNews, prefsync.OptedOut, t0.Add(time.Duration(w*each+i)*time.Minute))
				if _, _, err := s.ApplyEvents(context.Background(), []prefsync.Event{ev}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e := "shared@example.com"
	c, err := s.FindContact(context.Background(), prefsync.ContactFilter{Email: &e})
	if err != nil {
		t.Fatal(err)
	}
	hist, _ := s.History(context.Background(), c.ID)
	applied := 0
	for _, h := range hist {
		if h.Status == prefsync.Applied {
			applied++
		}
	}
	if len(hist) != writers*each || int64(applied) != c.Version {
		t.Errorf("%d entries, %d applied, version %d; want %d entries and version = applied", len(hist), applied, c.Version, writers*each)
	}
	if rep, _ := s.VerifyAudit(context.Background()); !rep.OK {
		t.Errorf("audit: %+v", rep)
	}
}

// testFailureIsolated sends failing and succeeding writes at once: stores that commit
// concurrent requests together must not let one request's failure undo another's write.
func testFailureIsolated(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := Event(fmt.Sprintf("w%02d@example.com", i), emailAll, prefsync.OptedOut, t0)
			if i%2 == 1 {
				ev.Subject = prefsync.Subject{ContactID: prefsync.ContactIDFromNumber(uint64(1000 + i))}
			}
			_, _, errs[i] = s.ApplyEvents(ctx, []prefsync.Event{ev})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 && prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
			t.Errorf("request %d: %v, want ENOTFOUND", i, err)
		}
		if i%2 == 0 {
			if err != nil {
				t.Errorf("request %d failed: %v", i, err)
				continue
			}
			e := fmt.Sprintf("w%02d@example.com", i)
			if _, err := s.FindContact(ctx, prefsync.ContactFilter{Email: &e}); err != nil {
				t.Errorf("request %d's write is lost: %v", i, err)
			}
		}
	}
	if rep, err := s.VerifyAudit(ctx); err != nil || !rep.OK || rep.Entries != n/2 {
		t.Errorf("audit: %+v %v, want %d entries", rep, err, n/2)
	}
}

func testContacts(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	us, fr := "US", "fr"
	c, err := s.UpsertContact(ctx, prefsync.ContactInput{Email: "a@example.com", Jurisdiction: &us,
		ExternalIDs: []prefsync.ExternalID{{System: "salesforce", ID: "003xx"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !prefsync.ValidContactID(c.ID) || c.Jurisdiction != "US" {
		t.Fatalf("created %+v", c)
	}
	// The external id finds it; the phone is added; the locale set.
	c2, err := s.UpsertContact(ctx, prefsync.ContactInput{Phone: "+14155552671", Locale: &fr,
		ExternalIDs: []prefsync.ExternalID{{System: "salesforce", ID: "003xx"}}})
	if err != nil {
		t.Fatal(err)
	}
	if c2.ID != c.ID || len(c2.Phones) != 1 || c2.Locale != "fr" || c2.Jurisdiction != "US" || c2.Version != c.Version+1 {
		t.Errorf("updated %+v", c2)
	}
	for name, f := range map[string]prefsync.ContactFilter{
		"id":    {ID: &c.ID},
		"email": {Email: ptr("a@example.com")},
		"phone": {Phone: ptr("+14155552671")},
		"ext":   {ExternalID: &prefsync.ExternalID{System: "salesforce", ID: "003xx"}},
	} {
		got, err := s.FindContact(ctx, f)
		if err != nil || got.ID != c.ID || len(got.Emails) != 1 || len(got.ExternalIDs) != 1 {
			t.Errorf("find by %s: %+v, %v", name, got, err)
		}
	}
	if _, err := s.FindContact(ctx, prefsync.ContactFilter{Email: ptr("nobody@example.com")}); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("unknown email: %v", err)
	}
	other, _ := s.UpsertContact(ctx, prefsync.ContactInput{Email: "b@example.com"})
	_, err = s.UpsertContact(ctx, prefsync.ContactInput{Email: "b@example.com", Phone: "+14155552671"})
	if prefsync.ErrorCode(err) != prefsync.ECONFLICT {
		t.Errorf("identifiers of two contacts: %v", err)
	}
	if got, _ := s.FindContact(ctx, prefsync.ContactFilter{ID: &other.ID}); len(got.Phones) != 0 {
		t.Errorf("conflicting upsert wrote a phone: %+v", got)
	}
	// Nothing changed: the version stays, and the audit trail has nothing new.
	same, _ := s.UpsertContact(ctx, prefsync.ContactInput{Email: "a@example.com"})
	if same.Version != c2.Version {
		t.Errorf("no-op upsert moved version %d -> %d", c2.Version, same.Version)
	}
	hist, err := s.History(ctx, c.ID)
	if err != nil || len(hist) != 2 || hist[0].Kind != prefsync.KindContact || hist[1].StatusReason != "set identifiers, locale fr" ||
		hist[1].Subject == nil || hist[1].Subject.Phone != "+14155552671" {
		t.Errorf("contact changes in the audit trail: %+v %v", hist, err)
	}
}

func ptr[T any](v T) *T { return &v }

func testMerge(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	a := apply(t, s, Event("a@example.com", emailNews, prefsync.OptedIn, t0))[0]
	b := apply(t, s, Event("b@example.com", emailAll, prefsync.OptedOut, t0))[0]
	m, err := s.MergeContacts(ctx, a.ContactID, b.ContactID, prefsync.Source{System: "support", Touchpoint: prefsync.Support}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != a.ContactID || len(m.Emails) != 2 || m.State.Find(emailAll) == nil || m.State.Find(emailNews) == nil {
		t.Errorf("merged contact %+v", m)
	}
	if m.Version <= a.Version || m.Version <= b.Version {
		t.Errorf("merged version %d not above %d and %d", m.Version, a.Version, b.Version)
	}
	// Read back, the survivor has both contacts' identifiers, and each finds it.
	for _, e := range []string{"a@example.com", "b@example.com"} {
		got, err := s.FindContact(ctx, prefsync.ContactFilter{Email: &e})
		if err != nil || got.ID != a.ContactID || !slices.Equal(got.Emails, []string{"a@example.com", "b@example.com"}) {
			t.Errorf("%s finds %+v, %v; want %s with both addresses", e, got, err, a.ContactID)
		}
	}
	if got, err := s.FindContact(ctx, prefsync.ContactFilter{ID: &b.ContactID}); err != nil || got.ID != a.ContactID {
		t.Errorf("old id finds %v, %v", got, err)
	}
	hist, _ := s.History(ctx, a.ContactID)
	merges := 0
	for _, h := range hist {
		if h.Kind == prefsync.KindMerge {
			merges++
		}
	}
	if merges != 2 || len(hist) != 4 {
		t.Errorf("history after merge: %d entries, %d merges", len(hist), merges)
	}
	if merged, err := s.MergedContacts(ctx); err != nil || merged[b.ContactID] != a.ContactID || len(merged) != 1 {
		t.Errorf("MergedContacts: %v %v", merged, err)
	}
	// A batch naming the merged contact by its old id and by an address changes one contact.
	old := Event("", prefsync.Scope{Channel: "sms", Topic: "*"}, prefsync.OptedOut, t0)
	old.Subject = prefsync.Subject{ContactID: b.ContactID}
	res, _, err := s.ApplyEvents(ctx, []prefsync.Event{Event("a@example.com", prefsync.Scope{Channel: "push", Topic: "*"}, prefsync.OptedOut, t0), old})
	if err != nil || res[0].ContactID != a.ContactID || res[1].ContactID != a.ContactID || res[1].Version != res[0].Version+1 {
		t.Fatalf("batch after merge: %+v %v", res, err)
	}
	// The old id together with an address of the surviving contact names one contact.
	both := Event("b@example.com", prefsync.Scope{Channel: "email", Topic: "promotions"}, prefsync.OptedOut, t0)
	both.Subject.ContactID = b.ContactID
	if res, _, err := s.ApplyEvents(ctx, []prefsync.Event{both}); err != nil || res[0].ContactID != a.ContactID {
		t.Fatalf("old id with an address of the survivor: %+v %v; want contact %s", res, err, a.ContactID)
	}
	got, _ := s.FindContact(ctx, prefsync.ContactFilter{ID: &a.ContactID})
	if got.State.Find(prefsync.Scope{Channel: "sms", Topic: "*"}) == nil || got.State.Find(prefsync.Scope{Channel: "push", Topic: "*"}) == nil {
		t.Errorf("a change made through the merged id was lost: %+v", got.State)
	}
	n := 0
	s.EachContact(ctx, func(*prefsync.Contact) error { n++; return nil })
	if count, err := s.CountContacts(ctx); n != 1 || count != 1 || err != nil {
		t.Errorf("after merge EachContact sees %d contacts, CountContacts %d (%v); want 1", n, count, err)
	}
	// Merges chain: c folded into a keeps everything of b's too.
	c := apply(t, s, Event("c@example.com", emailNews, prefsync.OptedOut, t0))[0]
	if _, err := s.MergeContacts(ctx, c.ContactID, a.ContactID, prefsync.Source{System: "support", Touchpoint: prefsync.Support}, t0); err != nil {
		t.Fatal(err)
	}
	if hist, _ := s.History(ctx, c.ContactID); len(hist) != 10 {
		t.Errorf("history after a chain of merges has %d entries, want 10", len(hist))
	}
	var all []string
	err = s.EachContact(ctx, func(got *prefsync.Contact) error { all = append(all, got.Emails...); return nil })
	slices.Sort(all)
	if want := []string{"a@example.com", "b@example.com", "c@example.com"}; err != nil || !slices.Equal(all, want) {
		t.Errorf("after a chain of merges EachContact gives addresses %v, %v; want %v, on the one contact", all, err, want)
	}
}

func testHistory(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	ev := Event("a@example.com", emailAll, prefsync.OptedOut, t0)
	ev.Reason = "too many emails"
	ev.Evidence.Proof = []byte(`{"form":"v3"}`)
	r := apply(t, s, ev, Event("a@example.com", emailAll, prefsync.OptedIn, t0.Add(-time.Minute)))
	hist, err := s.History(ctx, r[0].ContactID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 {
		t.Fatalf("history has %d entries", len(hist))
	}
	h := hist[0]
	if h.Status != prefsync.Applied || h.Reason != "too many emails" || h.Evidence.IP != "192.0.2.1" ||
		h.Evidence.UserAgent != "agent" || string(h.Evidence.Proof) != `{"form":"v3"}` || !h.OccurredAt.Equal(t0) ||
		h.Subject == nil || h.Subject.Email != "a@example.com" || h.Source.System != "test" {
		t.Errorf("entry 0: %+v", h)
	}
	if hist[1].Status != prefsync.Superseded || hist[1].StatusReason != prefsync.ReasonOlderThanCurrent {
		t.Errorf("entry 1: %+v", hist[1])
	}
	rep, err := s.VerifyAudit(ctx)
	if err != nil || !rep.OK || rep.Entries != 2 || len(rep.Head) != 64 {
		t.Errorf("verify: %+v, %v", rep, err)
	}
	if _, err := s.History(ctx, prefsync.ContactIDFromNumber(99)); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("history of unknown contact: %v", err)
	}
}

func testEachContact(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	want := map[string]string{}
	for i := range 50 {
		e := fmt.Sprintf("u%02d@example.com", i)
		r := apply(t, s, Event(e, emailAll, prefsync.OptedOut, t0))
		want[r[0].ContactID] = e
	}
	s.UpsertContact(ctx, prefsync.ContactInput{Email: "u07@example.com", Phone: "+14155552671"})
	got := map[string]*prefsync.Contact{}
	if err := s.EachContact(ctx, func(c *prefsync.Contact) error { got[c.ID] = c; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("EachContact: %d contacts, want %d", len(got), len(want))
	}
	for id, e := range want {
		c := got[id]
		if len(c.Emails) != 1 || c.Emails[0] != e || c.State.Find(emailAll) == nil || !c.CreatedAt.Equal(t0) {
			t.Errorf("contact %s: %+v", id, c)
		}
		if e == "u07@example.com" && (len(c.Phones) != 1 || c.Version != 2) {
			t.Errorf("u07 lost its phone: %+v", c)
		}
	}
	stop := errors.New("stop")
	if err := s.EachContact(ctx, func(*prefsync.Contact) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("EachContact error: %v", err)
	}
}

func testSuppressions(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	a := apply(t, s, Event("a@example.com", emailNews, prefsync.OptedIn, t0))[0]
	in := prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "a@example.com", Reason: prefsync.SuppressedHardBounce,
		Source: "sendgrid", CreatedAt: t0, Touchpoint: prefsync.ESPWebhook}
	if got, c, err := s.AddSuppression(ctx, in); err != nil || got.Reason != in.Reason || !got.CreatedAt.Equal(t0) || c == nil || c.ID != a.ContactID {
		t.Fatalf("add: %+v, %+v, %v; want it recorded on %s", got, c, err, a.ContactID)
	}
	in.Reason, in.CreatedAt = prefsync.SuppressedSpamComplaint, t0.Add(time.Minute)
	if got, _, err := s.AddSuppression(ctx, in); err != nil || got.Reason != in.Reason || !got.CreatedAt.Equal(t0) {
		t.Fatalf("add again, another reason: %+v, %v", got, err)
	}
	got, err := s.Suppressions(ctx)
	if err != nil || len(got) != 1 || got[0].Reason != prefsync.SuppressedSpamComplaint || !got[0].CreatedAt.Equal(t0) {
		t.Errorf("suppressions: %+v, %v", got, err)
	}

	// Lifting keeps the record, says who lifted it and when, and takes the address off
	// the list of suppressions in force.
	at := t0.Add(time.Hour)
	lifted, c, err := s.LiftSuppression(ctx, prefsync.IdentifierEmail, "a@example.com", "support", at)
	if err != nil || lifted.Reason != prefsync.SuppressedSpamComplaint || lifted.Source != "sendgrid" || !lifted.CreatedAt.Equal(t0) ||
		lifted.LiftedAt == nil || !lifted.LiftedAt.Equal(at) || lifted.LiftedBy != "support" || c == nil || c.ID != a.ContactID {
		t.Errorf("lift: %+v, %+v, %v", lifted, c, err)
	}
	if got, err := s.Suppressions(ctx); err != nil || len(got) != 0 {
		t.Errorf("suppressions after the lift: %+v, %v", got, err)
	}
	for _, address := range []string{"a@example.com", "nobody@example.com"} {
		if _, _, err := s.LiftSuppression(ctx, prefsync.IdentifierEmail, address, "support", at); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
			t.Errorf("lift %s, not suppressed: %v", address, err)
		}
	}
	// Suppressed again, it is a new suppression; the same report twice changes nothing.
	in.Reason, in.CreatedAt = prefsync.SuppressedHardBounce, t0.Add(2*time.Hour)
	for range 2 {
		if _, _, err := s.AddSuppression(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	got, err = s.Suppressions(ctx)
	if err != nil || len(got) != 1 || got[0].Reason != prefsync.SuppressedHardBounce || !got[0].CreatedAt.Equal(in.CreatedAt) || got[0].LiftedAt != nil {
		t.Errorf("suppressed again: %+v, %v", got, err)
	}
	// Every report and the lift are in the contact's audit trail, the address with the
	// entry's personal data.
	hist, err := s.History(ctx, a.ContactID)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		status              prefsync.Status
		statusReason, given string
		source              prefsync.Source
		occurred            time.Time
	}
	esp, api := prefsync.Source{System: "sendgrid", Touchpoint: prefsync.ESPWebhook}, prefsync.Source{System: "support", Touchpoint: prefsync.API}
	want := []entry{
		{prefsync.Applied, "suppressed: hard_bounce", "hard_bounce", esp, t0},
		{prefsync.Applied, "suppressed: spam_complaint, was hard_bounce", "spam_complaint", esp, t0.Add(time.Minute)},
		{prefsync.Applied, "suppression lifted: spam_complaint since " + t0.Format(time.RFC3339), "", api, at},
		{prefsync.Applied, "suppressed: hard_bounce", "hard_bounce", esp, t0.Add(2 * time.Hour)},
		{prefsync.Duplicate, "already suppressed: hard_bounce", "hard_bounce", esp, t0.Add(2 * time.Hour)},
	}
	if len(hist) != 1+len(want) {
		t.Fatalf("history: %d entries, want the event and %d about the suppression: %+v", len(hist), len(want), hist)
	}
	for i, w := range want {
		h := hist[1+i]
		if h.Kind != prefsync.KindSuppression || h.Status != w.status || h.StatusReason != w.statusReason || h.Reason != w.given ||
			h.Source != w.source || !h.OccurredAt.Equal(w.occurred) || h.Version != hist[0].Version || h.Subject == nil || h.Subject.Email != "a@example.com" {
			t.Errorf("history entry %d: %+v; want %+v about a@example.com at version %d", 1+i, h, w, hist[0].Version)
		}
	}
	// An address no contact has gets no contact: the suppression stands alone.
	bounced := prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "new@example.com", Reason: prefsync.SuppressedHardBounce, Source: "ses", CreatedAt: t0}
	if _, c, err := s.AddSuppression(ctx, bounced); err != nil || c != nil {
		t.Errorf("report of an address no contact has: %+v, %v; want no contact", c, err)
	}
	if _, err := s.FindContact(ctx, prefsync.ContactFilter{Email: &bounced.Address}); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("the address reported finds a contact: %v", err)
	}
	// A repeat from another source changes nothing: not even the source.
	bounced.Source = "sendgrid"
	if got, _, err := s.AddSuppression(ctx, bounced); err != nil || got.Source != "ses" {
		t.Errorf("a repeat from another source: %+v, %v; want the source kept", got, err)
	}

	// An erased contact's address stays suppressed as such: a later bounce or complaint
	// does not change its reason, and it cannot be lifted.
	erased := prefsync.Suppression{Kind: prefsync.IdentifierPhone, Address: "+14155552671", Reason: prefsync.SuppressedErased, Source: "erasure", CreatedAt: t0}
	if _, c, err := s.AddSuppression(ctx, erased); err != nil || c != nil {
		t.Fatalf("erased address: %+v, %v; want no contact", c, err)
	}
	bounce := erased
	bounce.Reason, bounce.Source = prefsync.SuppressedHardBounce, "twilio"
	if got, c, err := s.AddSuppression(ctx, bounce); err != nil || got.Reason != prefsync.SuppressedErased || got.Source != "erasure" || c != nil {
		t.Errorf("a bounce of an erased contact's address: %+v, %+v, %v", got, c, err)
	}
	if _, err := s.FindContact(ctx, prefsync.ContactFilter{Phone: &erased.Address}); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("an erased contact's address finds a contact: %v", err)
	}
	if _, _, err := s.LiftSuppression(ctx, prefsync.IdentifierPhone, erased.Address, "support", at); prefsync.ErrorCode(err) != prefsync.ECONFLICT {
		t.Errorf("lift an erased contact's address: %v", err)
	}
	if got, err := s.Suppressions(ctx); err != nil || len(got) != 3 {
		t.Errorf("suppressions after a refused lift: %+v, %v", got, err)
	}
	// Lifting the suppression of an address no contact has audits nothing.
	if _, c, err := s.LiftSuppression(ctx, prefsync.IdentifierEmail, "new@example.com", "support", at); err != nil || c != nil {
		t.Errorf("lift of an address no contact has: %+v, %v; want no contact", c, err)
	}
	// Where a contact still has the address, the erasure's suppression is audited on it.
	kept, err := s.UpsertContact(ctx, prefsync.ContactInput{Phone: "+14155552672", Source: prefsync.Source{System: "crm", Touchpoint: prefsync.CRMSync}})
	if err != nil {
		t.Fatal(err)
	}
	erased.Address, bounce.Address = kept.Phones[0], kept.Phones[0]
	for _, in := range []prefsync.Suppression{erased, bounce} {
		if _, c, err := s.AddSuppression(ctx, in); err != nil || c == nil || c.ID != kept.ID {
			t.Errorf("%s of a contact's phone: %+v, %v; want it on %s", in.Reason, c, err, kept.ID)
		}
	}
	if hist, err := s.History(ctx, kept.ID); err != nil || len(hist) != 3 ||
		hist[1].Status != prefsync.Applied || hist[1].StatusReason != "suppressed: erased" ||
		hist[2].Status != prefsync.Duplicate || hist[2].StatusReason != "already suppressed: erased" || hist[2].Reason != prefsync.SuppressedHardBounce {
		t.Errorf("history of an erased contact's phone: %+v, %v; want the erasure applied, then the bounce a duplicate", hist, err)
	}
	if rep, err := s.VerifyAudit(ctx); err != nil || !rep.OK {
		t.Errorf("verify after suppressions: %+v, %v", rep, err)
	}
}

func testKeys(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	k, secret, err := prefsync.NewAPIKey("crm", []string{prefsync.ScopeEventsWrite, prefsync.ScopeCheck}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CreateAPIKey(ctx, k, false); !ok || err != nil {
		t.Fatalf("create: %v %v", ok, err)
	}
	got, err := s.FindAPIKey(ctx, prefsync.HashAPIKey(secret))
	if err != nil || got.Name != "crm" || !got.Allows(prefsync.ScopeCheck) || got.Allows(prefsync.ScopeContactsRead) {
		t.Errorf("find: %+v, %v", got, err)
	}
	boot, _ := prefsync.APIKeyFromSecret("bootstrap", []string{prefsync.ScopeAdmin}, "bootstrap-secret-123", t0)
	if ok, err := s.CreateAPIKey(ctx, boot, true); !ok || err != nil {
		t.Errorf("first bootstrap: %v %v", ok, err)
	}
	boot2, _ := prefsync.APIKeyFromSecret("bootstrap", []string{prefsync.ScopeAdmin}, "another-secret-4567", t0)
	if ok, err := s.CreateAPIKey(ctx, boot2, true); ok || err != nil {
		t.Errorf("second bootstrap created a key: %v %v", ok, err)
	}
	if err := s.RevokeAPIKey(ctx, k.ID, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindAPIKey(ctx, prefsync.HashAPIKey(secret)); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("revoked key still found: %v", err)
	}
	keys, _ := s.APIKeys(ctx)
	revoked := map[string]bool{}
	for _, x := range keys {
		revoked[x.ID] = x.RevokedAt != nil
	}
	if len(keys) != 2 || !revoked[k.ID] || revoked[boot.ID] {
		t.Errorf("keys: %d, revoked %v", len(keys), revoked)
	}
	if err := s.RevokeAPIKey(ctx, k.ID, t0); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("revoke twice: %v", err)
	}
}

func testLinkKeys(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	first := prefsync.LinkKey{ID: 1, Secret: []byte("0123456789abcdef0123456789abcdef")}
	keys, err := s.LinkKeys(ctx, first)
	if err != nil || len(keys) != 1 || string(keys[0].Secret) != string(first.Secret) {
		t.Fatalf("first LinkKeys = %+v, %v", keys, err)
	}
	// Later calls (another start, another process) get the stored key, not theirs.
	keys, err = s.LinkKeys(ctx, prefsync.LinkKey{ID: 1, Secret: []byte("another secret, another secret!!")})
	if err != nil || len(keys) != 1 || string(keys[0].Secret) != string(first.Secret) {
		t.Errorf("second LinkKeys = %+v, %v", keys, err)
	}
}

func testInbounds(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	in := &prefsync.Inbound{Name: "sms", Kind: "twilio", Config: []byte(`{"auth_token":"x"}`), Secret: "s3cret", CreatedAt: t0}
	if err := s.CreateInbound(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateInbound(ctx, in); prefsync.ErrorCode(err) != prefsync.ECONFLICT {
		t.Errorf("second create: %v", err)
	}
	got, err := s.Inbounds(ctx)
	if err != nil || len(got) != 1 || got[0].Secret != "s3cret" || string(got[0].Config) != `{"auth_token":"x"}` || !got[0].CreatedAt.Equal(t0) {
		t.Fatalf("Inbounds = %+v, %v", got, err)
	}
	if err := s.DeleteInbound(ctx, "sms"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteInbound(ctx, "sms"); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("second delete: %v", err)
	}
}
