package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"prefsync"
)

func destination(name string, channels ...string) *prefsync.Destination {
	return &prefsync.Destination{Name: name, Kind: prefsync.DestinationWebhook, URL: "http://127.0.0.1:9/" + name,
		Secrets: []prefsync.Secret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
		Filter:  prefsync.DestinationFilter{Channels: channels}, Status: prefsync.DestinationActive,
		StatusSince: t0, CreatedAt: t0}
}

func testDestinations(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	for _, d := range []*prefsync.Destination{destination("crm", "email"), destination("esp")} {
		if err := s.CreateDestination(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateDestination(ctx, destination("crm")); prefsync.ErrorCode(err) != prefsync.ECONFLICT {
		t.Errorf("second crm: %v, want conflict", err)
	}
	// A status change and a rotation do not undo each other.
	later := t0.Add(time.Hour)
	secrets := []prefsync.Secret{{Value: "whsec_new"}, {Value: "whsec_old", ExpiresAt: &later}}
	if err := s.UpdateDestination(ctx, "crm", prefsync.DestinationUpdate{Secrets: &secrets}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateDestination(ctx, "crm", prefsync.StatusUpdate(prefsync.DestinationFailing, "answered 503", later)); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateDestination(ctx, "nope", prefsync.StatusUpdate(prefsync.DestinationFailing, "", later)); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("update of a missing destination: %v", err)
	}
	ds, err := s.Destinations(ctx)
	if err != nil || len(ds) != 2 {
		t.Fatalf("Destinations = %v, %v", ds, err)
	}
	crm := ds[0]
	if crm.Name != "crm" || crm.Status != prefsync.DestinationFailing || crm.StatusReason != "answered 503" ||
		!crm.StatusSince.Equal(later) || len(crm.Secrets) != 2 || crm.Secrets[1].ExpiresAt == nil ||
		len(crm.Filter.Channels) != 1 || crm.URL != "http://127.0.0.1:9/crm" {
		t.Errorf("crm = %+v", crm)
	}
	// Deleting a destination cancels what it had pending.
	apply(t, s, Event("a@example.com", emailAll, prefsync.OptedOut, t0))
	if err := s.DeleteDestination(ctx, "crm"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDestination(ctx, "crm"); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("second delete: %v", err)
	}
	dl, err := s.Deliveries(ctx, prefsync.DeliveryFilter{Destination: "crm"})
	if err != nil || len(dl) != 1 || dl[0].Status != prefsync.DeliveryCancelled {
		t.Errorf("crm's deliveries after delete = %+v, %v", dl, err)
	}
	// A destination created later gets later changes only.
	if err := s.CreateDestination(ctx, destination("late")); err != nil {
		t.Fatal(err)
	}
	apply(t, s, Event("b@example.com", emailAll, prefsync.OptedOut, t0))
	if dl, _ := s.Deliveries(ctx, prefsync.DeliveryFilter{Destination: "late"}); len(dl) != 1 {
		t.Errorf("late got %d deliveries, want 1", len(dl))
	}
}

func testOutbox(t *testing.T, open Opener) {
	now := t0
	s := open(t, func() time.Time { return now })
	ctx := context.Background()
	for _, d := range []*prefsync.Destination{destination("crm", "email"), destination("sms", "sms")} {
		if err := s.CreateDestination(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	fromCRM := Event("a@example.com", emailNews, prefsync.OptedIn, t0)
	fromCRM.Source.System = "crm"
	superseded := Event("a@example.com", emailNews, prefsync.OptedOut, t0.Add(-time.Hour))
	res := apply(t, s,
		fromCRM, // no echo: not to crm; not sms either
		Event("a@example.com", emailAll, prefsync.OptedOut, t0), // crm
		superseded, // changes nothing: no delivery
		Event("a@example.com", prefsync.Scope{Channel: "*", Topic: "*"}, prefsync.OptedOut, t0), // both
	)
	due := func(dest string) []prefsync.Delivery {
		t.Helper()
		ds, err := s.DueDeliveries(ctx, dest, now, 100)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	crm, sms := due("crm"), due("sms")
	if len(crm) != 2 || crm[0].Seq != res[1].Seq || crm[1].Seq != res[3].Seq || len(sms) != 1 || sms[0].Seq != res[3].Seq {
		t.Fatalf("due to crm = %+v, to sms = %+v; results %+v", crm, sms, res)
	}
	// The body is the change as it left the contact: its version and full state then.
	var ch prefsync.Change
	if err := json.Unmarshal(crm[0].Payload, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Type != prefsync.ChangePreference || ch.Data.Version != 2 || ch.Data.Seq != res[1].Seq ||
		ch.Data.Contact.ID != res[1].ContactID || len(ch.Data.Contact.Emails) != 1 ||
		len(ch.Data.State.Scopes) != 2 || ch.Data.Event.Topic != "*" || ch.Data.Event.State != prefsync.OptedOut {
		t.Errorf("payload = %s", crm[0].Payload)
	}
	if crm[0].Version != 2 || crm[1].Version != 3 || crm[0].MessageID == "" || crm[0].MessageID == crm[1].MessageID ||
		crm[0].Attempts != 0 || !crm[0].CreatedAt.Equal(t0) {
		t.Errorf("deliveries = %+v", crm)
	}
	if st, _ := s.DeliveryStats(ctx); len(st) != 2 || st[0].Pending+st[1].Pending != 3 || !st[0].OldestPending.Equal(t0) {
		t.Errorf("stats = %+v", st)
	}

	// One delivered, one failed and retried later.
	now = t0.Add(time.Second)
	retry := now.Add(5 * time.Second)
	if err := s.RecordAttempts(ctx, []prefsync.Attempt{
		{DeliveryID: crm[0].ID, At: now, Code: 200, Latency: 3 * time.Millisecond, Status: prefsync.DeliveryDelivered},
		{DeliveryID: crm[1].ID, At: now, Code: 503, Status: prefsync.DeliveryPending, NextAttemptAt: retry},
	}); err != nil {
		t.Fatal(err)
	}
	if d := due("crm"); len(d) != 0 {
		t.Errorf("due after attempts = %+v", d)
	}
	p, err := s.ProbeDelivery(ctx, "crm")
	if err != nil || p.ID != crm[1].ID || p.Attempts != 1 || p.LastCode != 503 || len(p.Payload) == 0 || !p.NextAttemptAt.Equal(retry) {
		t.Errorf("probe = %+v, %v", p, err)
	}
	if _, err := s.ProbeDelivery(ctx, "nobody"); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("probe of nothing: %v", err)
	}
	if n, err := s.ReleaseDeliveries(ctx, "crm", now); err != nil || n != 1 || len(due("crm")) != 1 {
		t.Errorf("release: %d, %v", n, err)
	}
	// A delivered delivery is not brought back by a late attempt record.
	s.RecordAttempts(ctx, []prefsync.Attempt{{DeliveryID: crm[0].ID, At: now, Code: 500, Status: prefsync.DeliveryPending, NextAttemptAt: now}})
	all, _ := s.Deliveries(ctx, prefsync.DeliveryFilter{Destination: "crm"})
	if len(all) != 2 || all[0].Status != prefsync.DeliveryDelivered || all[0].Attempts != 1 || all[0].LatencyMS != 3 ||
		all[0].DeliveredAt == nil || all[1].Status != prefsync.DeliveryPending {
		t.Errorf("crm deliveries = %+v", all)
	}

	// The history says which destination acknowledged which change.
	h, err := s.History(ctx, res[1].ContactID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h[0].Deliveries) != 0 || len(h[1].Deliveries) != 1 || h[1].Deliveries[0].Destination != "crm" ||
		h[1].Deliveries[0].Status != prefsync.DeliveryDelivered || h[1].Deliveries[0].DeliveredAt == nil ||
		len(h[2].Deliveries) != 0 || len(h[3].Deliveries) != 2 {
		t.Errorf("history receipts = %+v / %+v / %+v / %+v", h[0].Deliveries, h[1].Deliveries, h[2].Deliveries, h[3].Deliveries)
	}

	// Past the horizon, what waits is dead; replay brings it back, due now.
	now = t0.Add(prefsync.RetryHorizon + time.Hour)
	if n, err := s.ExpireDeliveries(ctx, "crm", now.Add(-prefsync.RetryHorizon)); err != nil || n != 1 {
		t.Errorf("expire = %d, %v", n, err)
	}
	dead, _ := s.Deliveries(ctx, prefsync.DeliveryFilter{Destination: "crm", Status: prefsync.DeliveryDead})
	if len(dead) != 1 || dead[0].ID != crm[1].ID {
		t.Fatalf("dead = %+v", dead)
	}
	if n, err := s.ReplayDeliveries(ctx, prefsync.DeliveryFilter{Destination: "crm", Since: now}, now); err != nil || n != 0 {
		t.Errorf("replay since now = %d, %v", n, err)
	}
	if n, err := s.ReplayDeliveries(ctx, prefsync.DeliveryFilter{Destination: "crm", ID: dead[0].ID}, now); err != nil || n != 1 {
		t.Errorf("replay one = %d, %v", n, err)
	}
	if d := due("crm"); len(d) != 1 || d[0].ID != crm[1].ID || d[0].Attempts != 1 {
		t.Errorf("due after replay = %+v", d)
	}
}

// testOutboxAtomic: a refused batch records no deliveries.
func testOutboxAtomic(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	if err := s.CreateDestination(ctx, destination("crm")); err != nil {
		t.Fatal(err)
	}
	apply(t, s, Event("a@example.com", emailAll, prefsync.OptedOut, t0))
	conflict := Event("b@example.com", emailNews, prefsync.OptedOut, t0)
	conflict.Subject.Email, conflict.Subject.ContactID = "a@example.com", prefsync.ContactIDFromNumber(7)
	if _, _, err := s.ApplyEvents(ctx, []prefsync.Event{Event("c@example.com", emailAll, prefsync.OptedOut, t0), conflict}); err == nil {
		t.Fatal("batch with a bad event succeeded")
	}
	if ds, _ := s.Deliveries(ctx, prefsync.DeliveryFilter{Destination: "crm"}); len(ds) != 1 {
		t.Errorf("deliveries after a refused batch = %d, want 1", len(ds))
	}
}

// testMergeFansOut: a merge is a change every destination learns of (but the system
// that asked for it), with the survivor's state.
func testMergeFansOut(t *testing.T, open Opener) {
	s := open(t, fixed)
	ctx := context.Background()
	for _, d := range []*prefsync.Destination{destination("crm", "email"), destination("sms", "sms")} {
		if err := s.CreateDestination(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	a := apply(t, s, Event("a@example.com", emailNews, prefsync.OptedIn, t0))[0]
	b := apply(t, s, Event("b@example.com", emailAll, prefsync.OptedOut, t0))[0]
	c, err := s.MergeContacts(ctx, a.ContactID, b.ContactID, prefsync.Source{System: "sms", Touchpoint: prefsync.API}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.Deliveries(ctx, prefsync.DeliveryFilter{Destination: "sms"}); len(ds) != 0 {
		t.Errorf("the merge went back to the system that asked for it: %+v", ds)
	}
	ds, err := s.DueDeliveries(ctx, "crm", t0, 10)
	if err != nil || len(ds) != 3 {
		t.Fatalf("crm deliveries = %+v, %v", ds, err)
	}
	var ch prefsync.Change
	if err := json.Unmarshal(ds[2].Payload, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Type != prefsync.ChangeMerged || ch.Data.MergedID != b.ContactID || ch.Data.Contact.ID != c.ID ||
		ch.Data.Version != c.Version || ch.Data.Event != nil || len(ch.Data.Contact.Emails) != 2 || len(ch.Data.State.Scopes) != 2 {
		t.Errorf("merge change = %s", ds[2].Payload)
	}
	h, _ := s.History(ctx, c.ID)
	last := h[len(h)-1]
	if last.Kind != prefsync.KindMerge || len(last.Deliveries) != 1 || last.Deliveries[0].Destination != "crm" {
		t.Errorf("history's last entry = %+v", last)
	}
}
