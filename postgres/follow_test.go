package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"prefsync"
	"prefsync/identifier"
	"prefsync/postgres"
	"prefsync/postgres/pgtest"
)

// process is one hub on a shared database, as a prefsync serve process has.
func process(t *testing.T, dsn string, reloadAfter int64) (*prefsync.Hub, *postgres.DB) {
	t.Helper()
	db, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, ConflictWindow: time.Second, ReloadAfter: reloadAfter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dict := prefsync.DefaultDictionary()
	hub := &prefsync.Hub{Store: db, Index: prefsync.NewIndex(dict), Dict: dict, Normalizer: identifier.Normalizer{}, Now: time.Now}
	from, err := db.Position(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.Follow(ctx, from, func(ch postgres.Changes) {
			if ch.Reload {
				hub.Load(ctx)
			}
			hub.Follow(ch.Contacts, ch.Merged, ch.Suppressions)
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return hub, db
}

func reason(t *testing.T, hub *prefsync.Hub, email, topic string) string {
	t.Helper()
	q, _ := hub.Dict.Query("email", topic)
	d, err := hub.Check(&q, &prefsync.Subject{Email: email}, time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	return d.Reason
}

// within waits, in real time but bounded, until cond holds, and says how long it took.
func within(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// TestIndexFollowsOtherProcesses: what one process commits, another's checks see
// within a second: events, merges, suppressions and their lifting.
func TestIndexFollowsOtherProcesses(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, _ := process(t, dsn, 0)
	b, _ := process(t, dsn, 0)
	// c is always "far behind": it reloads its whole index on every change.
	c, _ := process(t, dsn, 1)
	ctx := context.Background()

	if _, err := a.Ingest(ctx, []prefsync.EventInput{{Subject: prefsync.Subject{Email: "ana@example.com"}, Channel: "email", Topic: "*",
		State: prefsync.OptedOut, Source: prefsync.Source{System: "a", Touchpoint: prefsync.API}}}, "a"); err != nil {
		t.Fatal(err)
	}
	took := within(t, time.Second, "b sees a's opt-out", func() bool { return reason(t, b, "ana@example.com", "newsletter") == "opted_out:(email,*)" })
	t.Logf("another process's index saw the opt-out after %s", took)
	within(t, time.Second, "c sees it by reloading", func() bool { return reason(t, c, "ana@example.com", "newsletter") == "opted_out:(email,*)" })

	if _, err := b.Suppress(ctx, prefsync.Suppression{Address: "bo@example.com", Reason: prefsync.SuppressedHardBounce, Source: "b"}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "a sees b's suppression", func() bool { return reason(t, a, "bo@example.com", "account") == "suppressed:hard_bounce" })
	if _, err := b.LiftSuppression(ctx, "bo@example.com", "support"); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "a sees b's lift", func() bool { return reason(t, a, "bo@example.com", "account") == "transactional" })
	within(t, time.Second, "c sees it by reloading", func() bool { return reason(t, c, "bo@example.com", "account") == "transactional" })

	// A merge on a: b finds the merged address's contact through the survivor.
	res, err := a.Ingest(ctx, []prefsync.EventInput{
		{Subject: prefsync.Subject{Email: "cy@example.com"}, Channel: "email", Topic: "newsletter", State: prefsync.OptedOut, Source: prefsync.Source{System: "a", Touchpoint: prefsync.API}},
		{Subject: prefsync.Subject{Email: "cy.work@example.com"}, Channel: "email", Topic: "events", State: prefsync.OptedOut, Source: prefsync.Source{System: "a", Touchpoint: prefsync.API}},
	}, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Merge(ctx, res[0].ContactID, res[1].ContactID, prefsync.Source{System: "a", Touchpoint: prefsync.Support}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "b sees the merge", func() bool {
		return reason(t, b, "cy.work@example.com", "newsletter") == "opted_out:(email,newsletter)" &&
			reason(t, b, "cy@example.com", "events") == "opted_out:(email,events)"
	})

	// The merged contact has two addresses suppressed; b lifts one, and a still finds
	// the contact suppressed by the other, whichever address it checks.
	for _, s := range []prefsync.Suppression{{Address: "cy@example.com", Reason: prefsync.SuppressedManual}, {Address: "cy.work@example.com", Reason: prefsync.SuppressedHardBounce}} {
		if _, err := b.Suppress(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	within(t, time.Second, "a sees both suppressions", func() bool { return reason(t, a, "cy.work@example.com", "account") == "suppressed:hard_bounce" })
	if _, err := b.LiftSuppression(ctx, "cy.work@example.com", "support"); err != nil {
		t.Fatal(err)
	}
	within(t, time.Second, "a sees the lift and the other suppression", func() bool {
		return reason(t, a, "cy.work@example.com", "account") == "suppressed:manual" && reason(t, a, "cy@example.com", "account") == "suppressed:manual"
	})
	if got := reason(t, b, "cy.work@example.com", "account"); got != "suppressed:manual" {
		t.Errorf("b, after its own lift: %s", got)
	}
}

// TestConcurrentProcessesSameContact: two processes write changes of one contact at
// once, each change sent through both (a client retrying on the other process with the
// same idempotency key). Every change is applied exactly once, versions have no gap or
// repeat, and the audit chain holds.
func TestConcurrentProcessesSameContact(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, dba := process(t, dsn, 0)
	b, _ := process(t, dsn, 0)
	ctx := context.Background()
	const n = 40
	base := time.Now().Add(-time.Hour)
	errs := make(chan error, 2*n)
	done := make(chan struct{})
	for _, hub := range []*prefsync.Hub{a, b} {
		go func() {
			for i := range n {
				topic := []string{"newsletter", "events", "promotions", "product_updates"}[i%4]
				state := []prefsync.State{prefsync.OptedOut, prefsync.OptedIn}[i/4%2]
				_, err := hub.Ingest(ctx, []prefsync.EventInput{{Subject: prefsync.Subject{Email: "ana@example.com"}, Channel: "email", Topic: topic,
					State: state, OccurredAt: base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339),
					Source: prefsync.Source{System: "crm", Touchpoint: prefsync.API}, Evidence: prefsync.Evidence{Method: prefsync.Explicit},
					IdempotencyKey: fmt.Sprintf("change-%d", i)}}, "crm")
				errs <- err
			}
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c, err := dba.FindContact(ctx, prefsync.ContactFilter{Email: ptr("ana@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	hist, _ := dba.History(ctx, c.ID)
	applied, dups := 0, 0
	for _, e := range hist {
		switch e.Status {
		case prefsync.Applied:
			applied++
			if e.Version != int64(applied) {
				t.Errorf("entry %d has version %d, want %d", e.Seq, e.Version, applied)
			}
		case prefsync.Duplicate:
			dups++
		}
	}
	if applied != n || dups != n || c.Version != n {
		t.Errorf("applied %d, duplicates %d, version %d; want %d, %d, %d", applied, dups, c.Version, n, n, n)
	}
	if rep, err := dba.VerifyAudit(ctx); err != nil || !rep.OK {
		t.Errorf("audit chain: %+v %v", rep, err)
	}
}

func ptr[T any](v T) *T { return &v }
