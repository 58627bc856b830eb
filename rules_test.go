package prefsync_test

import (
	"strings"
	"testing"
	"time"

	"prefsync"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func ev(scope string, state prefsync.State, at time.Time, method prefsync.Method, tp prefsync.Touchpoint) prefsync.Event {
	ch, top, _ := strings.Cut(scope, "/")
	return prefsync.Event{Scope: prefsync.Scope{Channel: ch, Topic: top}, State: state, OccurredAt: at,
		Source: prefsync.Source{System: "t", Touchpoint: tp}, Evidence: prefsync.Evidence{Method: method}}
}

func in(scope string, at time.Time) prefsync.Event {
	return ev(scope, prefsync.OptedIn, at, prefsync.Explicit, prefsync.API)
}
func out(scope string, at time.Time) prefsync.Event {
	return ev(scope, prefsync.OptedOut, at, prefsync.Explicit, prefsync.API)
}

// TestApplyRules covers rules 1 and 2: each case applies events in order to an empty
// state and checks the last event's status and the scope's resulting state.
func TestApplyRules(t *testing.T) {
	const w = time.Second
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		events []prefsync.Event
		status prefsync.Status
		reason string
		state  prefsync.State // of the last event's scope afterwards
	}{
		{"FirstEventApplies", []prefsync.Event{out("email/*", t0)}, prefsync.Applied, "", prefsync.OptedOut},
		{"LatestWins", []prefsync.Event{out("email/*", t0), in("email/*", t0.Add(2*w))}, prefsync.Applied, "", prefsync.OptedIn},
		{"LateEventSuperseded", []prefsync.Event{out("email/*", t0), in("email/*", t0.Add(-2*w))},
			prefsync.Superseded, prefsync.ReasonOlderThanCurrent, prefsync.OptedOut},
		{"LateOptOutSuperseded", []prefsync.Event{in("email/*", t0), out("email/*", t0.Add(-2*w))},
			prefsync.Superseded, prefsync.ReasonOlderThanCurrent, prefsync.OptedIn},
		{"TieOptInAfterOptOutLoses", []prefsync.Event{out("email/*", t0), in("email/*", t0.Add(500*ms))},
			prefsync.Superseded, prefsync.ReasonTieOptOutWins, prefsync.OptedOut},
		{"TieOptOutAfterOptInWins", []prefsync.Event{in("email/*", t0), out("email/*", t0.Add(500*ms))},
			prefsync.Applied, "", prefsync.OptedOut},
		{"TieLateOptOutStillWins", []prefsync.Event{in("email/*", t0), out("email/*", t0.Add(-500*ms))},
			prefsync.Applied, "", prefsync.OptedOut},
		{"TieAtWindowEdge", []prefsync.Event{out("email/*", t0), in("email/*", t0.Add(w))},
			prefsync.Superseded, prefsync.ReasonTieOptOutWins, prefsync.OptedOut},
		{"JustPastWindow", []prefsync.Event{out("email/*", t0), in("email/*", t0.Add(w+ms))},
			prefsync.Applied, "", prefsync.OptedIn},
		{"SameTimeOptOutWins", []prefsync.Event{out("email/*", t0), in("email/*", t0)},
			prefsync.Superseded, prefsync.ReasonTieOptOutWins, prefsync.OptedOut},
		{"ImplicitOptInAfterOptOutRejected", []prefsync.Event{out("email/*", t0),
			ev("email/*", prefsync.OptedIn, t0.Add(time.Hour), prefsync.Implicit, prefsync.API)},
			prefsync.Rejected, prefsync.ReasonNotExplicitAfterOut, prefsync.OptedOut},
		{"GrandfatheredOptInAfterOptOutRejected", []prefsync.Event{out("email/*", t0),
			ev("email/*", prefsync.OptedIn, t0.Add(time.Hour), prefsync.Grandfathered, prefsync.API)},
			prefsync.Rejected, prefsync.ReasonNotExplicitAfterOut, prefsync.OptedOut},
		{"ImportOptInAfterOptOutRejected", []prefsync.Event{out("email/*", t0),
			ev("email/*", prefsync.OptedIn, t0.Add(time.Hour), prefsync.Explicit, prefsync.Import)},
			prefsync.Rejected, prefsync.ReasonNotExplicitAfterOut, prefsync.OptedOut},
		{"CRMSyncOptInAfterOptOutRejected", []prefsync.Event{out("email/*", t0),
			ev("email/*", prefsync.OptedIn, t0.Add(time.Hour), prefsync.Explicit, prefsync.CRMSync)},
			prefsync.Rejected, prefsync.ReasonNotExplicitAfterOut, prefsync.OptedOut},
		{"ImplicitOptInUnderBroaderOptOutRejected", []prefsync.Event{out("email/*", t0),
			ev("email/newsletter", prefsync.OptedIn, t0.Add(time.Hour), prefsync.Implicit, prefsync.API)},
			prefsync.Rejected, prefsync.ReasonNotExplicitAfterOut, ""},
		{"ExplicitOptInReopens", []prefsync.Event{out("email/*", t0), in("email/*", t0.Add(time.Hour))},
			prefsync.Applied, "", prefsync.OptedIn},
		{"ImplicitOptInWithoutOptOutApplies", []prefsync.Event{
			ev("email/newsletter", prefsync.OptedIn, t0, prefsync.Implicit, prefsync.Import)},
			prefsync.Applied, "", prefsync.OptedIn},
		{"ImplicitOptInAfterOptInApplies", []prefsync.Event{in("email/newsletter", t0),
			ev("email/newsletter", prefsync.OptedIn, t0.Add(time.Hour), prefsync.Implicit, prefsync.CRMSync)},
			prefsync.Applied, "", prefsync.OptedIn},
		{"OtherScopesIndependent", []prefsync.Event{out("email/newsletter", t0), in("sms/promotions", t0.Add(-time.Hour))},
			prefsync.Applied, "", prefsync.OptedIn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st prefsync.ContactState
			var status prefsync.Status
			var reason string
			for i := range tc.events {
				status, reason = st.Apply(&tc.events[i], int64(i+1), w)
			}
			if status != tc.status || reason != tc.reason {
				t.Errorf("last event: %s %q, want %s %q", status, reason, tc.status, tc.reason)
			}
			last := tc.events[len(tc.events)-1]
			got := prefsync.NotSet
			if s := st.Find(last.Scope); s != nil {
				got = s.State
			}
			want := tc.state
			if want == "" {
				want = prefsync.NotSet
			}
			if got != want {
				t.Errorf("state of %s = %s, want %s", last.Scope, got, want)
			}
		})
	}
}

func TestPause(t *testing.T) {
	var st prefsync.ContactState
	p := prefsync.Event{Scope: prefsync.Scope{Channel: "email", Topic: "*"}, OccurredAt: t0, PausedUntil: t0.Add(14 * 24 * time.Hour)}
	if s, _ := st.Apply(&p, 1, time.Second); s != prefsync.Applied || len(st.Pauses) != 1 {
		t.Fatalf("pause: %s %+v", s, st.Pauses)
	}
	old := p
	old.OccurredAt, old.PausedUntil = t0.Add(-time.Hour), t0
	if s, _ := st.Apply(&old, 2, time.Second); s != prefsync.Superseded || !st.Pauses[0].Until.Equal(p.PausedUntil) {
		t.Errorf("late resume: %s %+v", s, st.Pauses)
	}
	within := p // older by less than the conflict window: still older
	within.OccurredAt, within.PausedUntil = t0.Add(-500*time.Millisecond), t0
	if s, _ := st.Apply(&within, 2, time.Second); s != prefsync.Superseded {
		t.Errorf("older resume within the window: %s", s)
	}
	resume := p
	resume.OccurredAt, resume.PausedUntil = t0.Add(time.Hour), t0.Add(time.Hour)
	if s, _ := st.Apply(&resume, 3, time.Second); s != prefsync.Applied || !st.Pauses[0].Until.Equal(resume.PausedUntil) {
		t.Errorf("resume: %s %+v", s, st.Pauses)
	}
}

// TestDecide covers rules 3, 4 and 5: the most restrictive covering scope, pauses,
// suppressions, transactional topics, jurisdictions, consent expiry, unknown recipients.
func TestDecide(t *testing.T) {
	d := prefsync.DefaultDictionary()
	now := t0.Add(24 * time.Hour)
	day := 24 * time.Hour
	type state struct {
		scopes       []prefsync.ScopeState
		pauses       []prefsync.Pause
		jurisdiction string
	}
	sc := func(scope string, st prefsync.State, m prefsync.Method, at time.Time) prefsync.ScopeState {
		ch, top, _ := strings.Cut(scope, "/")
		return prefsync.ScopeState{Channel: ch, Topic: top, State: st, Method: m, OccurredAt: at}
	}
	for _, tc := range []struct {
		name       string
		st         state
		suppressed string // "email" or "phone": the contact's address is suppressed
		query      string
		allowed    bool
		reason     string
	}{
		{"UnknownUSRelationship", state{jurisdiction: "US"}, "", "email/product_updates", true, "not_opted_out"},
		{"USMarketingWithoutConsent", state{jurisdiction: "US"}, "", "email/promotions", true, "not_opted_out"},
		{"USSubdivisionFollowsCountry", state{jurisdiction: "US-CA"}, "", "email/promotions", true, "not_opted_out"},
		{"EUMarketingNeedsConsent", state{jurisdiction: "DE"}, "", "email/promotions", false, "no_consent"},
		{"GBMarketingNeedsConsent", state{jurisdiction: "GB"}, "", "email/newsletter", false, "no_consent"},
		{"EEAMarketingNeedsConsent", state{jurisdiction: "NO"}, "", "email/newsletter", false, "no_consent"},
		{"UnknownJurisdictionLeastPrivilege", state{}, "", "email/promotions", false, "no_consent"},
		{"EUWithConsent", state{jurisdiction: "FR", scopes: []prefsync.ScopeState{sc("email/promotions", prefsync.OptedIn, prefsync.Explicit, t0)}},
			"", "email/promotions", true, "opted_in:(email,promotions)"},
		{"EUConsentOnBroaderScope", state{jurisdiction: "FR", scopes: []prefsync.ScopeState{sc("email/*", prefsync.OptedIn, prefsync.Explicit, t0)}},
			"", "email/promotions", true, "opted_in:(email,*)"},
		{"EUConsentOnOtherChannelDoesNotCount", state{jurisdiction: "FR", scopes: []prefsync.ScopeState{sc("sms/promotions", prefsync.OptedIn, prefsync.Explicit, t0)}},
			"", "email/promotions", false, "no_consent"},
		{"OptOutAllWins", state{jurisdiction: "US", scopes: []prefsync.ScopeState{sc("*/*", prefsync.OptedOut, prefsync.Explicit, t0)}},
			"", "email/product_updates", false, "opted_out:(*,*)"},
		{"OptOutChannelWins", state{jurisdiction: "US", scopes: []prefsync.ScopeState{sc("email/*", prefsync.OptedOut, prefsync.Explicit, t0)}},
			"", "email/newsletter", false, "opted_out:(email,*)"},
		{"OptOutTopicAcrossChannels", state{jurisdiction: "US", scopes: []prefsync.ScopeState{sc("*/promotions", prefsync.OptedOut, prefsync.Explicit, t0)}},
			"", "sms/promotions", false, "opted_out:(*,promotions)"},
		{"OptOutExactScope", state{jurisdiction: "US", scopes: []prefsync.ScopeState{sc("email/newsletter", prefsync.OptedOut, prefsync.Explicit, t0)}},
			"", "email/newsletter", false, "opted_out:(email,newsletter)"},
		{"OptOutOtherTopicDoesNotApply", state{jurisdiction: "US", scopes: []prefsync.ScopeState{sc("email/newsletter", prefsync.OptedOut, prefsync.Explicit, t0)}},
			"", "email/events", true, "not_opted_out"},
		{"BroadOptOutBeatsNarrowOptIn", state{jurisdiction: "FR", scopes: []prefsync.ScopeState{
			sc("email/*", prefsync.OptedOut, prefsync.Explicit, t0), sc("email/newsletter", prefsync.OptedIn, prefsync.Explicit, t0.Add(time.Hour))}},
			"", "email/newsletter", false, "opted_out:(email,*)"},
		{"NarrowOptOutBeatsBroadOptIn", state{jurisdiction: "FR", scopes: []prefsync.ScopeState{
			sc("*/*", prefsync.OptedIn, prefsync.Explicit, t0.Add(time.Hour)), sc("email/newsletter", prefsync.OptedOut, prefsync.Explicit, t0)}},
			"", "email/newsletter", false, "opted_out:(email,newsletter)"},
		{"TransactionalIgnoresOptOut", state{scopes: []prefsync.ScopeState{sc("*/*", prefsync.OptedOut, prefsync.Explicit, t0)}},
			"", "email/account", true, "transactional"},
		{"TransactionalIgnoresPause", state{pauses: []prefsync.Pause{{Channel: "*", Until: now.Add(day)}}},
			"", "sms/account", true, "transactional"},
		{"TransactionalNotSuppression", state{}, "email", "email/account", false, "suppressed:hard_bounce"},
		{"SuppressionBlocksItsChannel", state{jurisdiction: "US"}, "email", "email/product_updates", false, "suppressed:hard_bounce"},
		{"EmailSuppressionLeavesSMS", state{jurisdiction: "US"}, "email", "sms/promotions", true, "not_opted_out"},
		{"PhoneSuppressionBlocksSMS", state{jurisdiction: "US"}, "phone", "sms/promotions", false, "suppressed:hard_bounce"},
		{"PausedChannel", state{jurisdiction: "US", pauses: []prefsync.Pause{{Channel: "email", Until: now.Add(day)}}},
			"", "email/product_updates", false, "paused_until:" + now.Add(day).Format(time.RFC3339)},
		{"PausedEverywhere", state{jurisdiction: "US", pauses: []prefsync.Pause{{Channel: "*", Until: now.Add(day)}}},
			"", "push/product_updates", false, "paused_until:" + now.Add(day).Format(time.RFC3339)},
		{"PauseOtherChannel", state{jurisdiction: "US", pauses: []prefsync.Pause{{Channel: "sms", Until: now.Add(day)}}},
			"", "email/product_updates", true, "not_opted_out"},
		{"PauseOver", state{jurisdiction: "US", pauses: []prefsync.Pause{{Channel: "email", Until: now.Add(-time.Second)}}},
			"", "email/product_updates", true, "not_opted_out"},
		{"CAImpliedConsentValid", state{jurisdiction: "CA", scopes: []prefsync.ScopeState{sc("email/*", prefsync.OptedIn, prefsync.Implicit, now.Add(-700*day))}},
			"", "email/promotions", true, "opted_in:(email,*)"},
		{"CAImpliedConsentExpired", state{jurisdiction: "CA", scopes: []prefsync.ScopeState{sc("email/*", prefsync.OptedIn, prefsync.Implicit, now.Add(-731*day))}},
			"", "email/promotions", false, "consent_expired:(email,*)"},
		{"CAExplicitConsentDoesNotExpire", state{jurisdiction: "CA", scopes: []prefsync.ScopeState{sc("email/*", prefsync.OptedIn, prefsync.Explicit, now.Add(-3000*day))}},
			"", "email/promotions", true, "opted_in:(email,*)"},
		{"CAExpiredBroadButValidNarrow", state{jurisdiction: "CA-QC", scopes: []prefsync.ScopeState{
			sc("email/*", prefsync.OptedIn, prefsync.Implicit, now.Add(-800*day)), sc("email/promotions", prefsync.OptedIn, prefsync.Explicit, t0)}},
			"", "email/promotions", true, "opted_in:(email,promotions)"},
		{"RelationshipIgnoresMissingConsent", state{jurisdiction: "DE"}, "", "email/product_updates", true, "not_opted_out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, top, _ := strings.Cut(tc.query, "/")
			q, err := d.Query(ch, top)
			if err != nil {
				t.Fatal(err)
			}
			c := &prefsync.Contact{ID: prefsync.ContactIDFromNumber(1), Emails: []string{"a@example.com"}, Phones: []string{"+14155552671"},
				Jurisdiction: tc.st.jurisdiction, Version: 7, State: prefsync.ContactState{Scopes: tc.st.scopes, Pauses: tc.st.pauses}}
			// Scopes must be sorted as the store keeps them.
			var st prefsync.ContactState
			for _, s := range tc.st.scopes {
				e := prefsync.Event{Scope: s.Scope(), State: s.State, OccurredAt: s.OccurredAt, Evidence: prefsync.Evidence{Method: s.Method}, Source: prefsync.Source{Touchpoint: prefsync.API}}
				st.Apply(&e, 1, 0)
			}
			st.Pauses = tc.st.pauses
			c.State = st
			x := prefsync.NewIndex(d)
			x.Put(c)
			if tc.suppressed == "email" {
				x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "a@example.com", Reason: prefsync.SuppressedHardBounce})
			}
			if tc.suppressed == "phone" {
				x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierPhone, Address: "+14155552671", Reason: prefsync.SuppressedHardBounce})
			}
			// The same answer whichever identifier names the contact.
			for _, subj := range []prefsync.Subject{{Email: "a@example.com"}, {Phone: "+14155552671"}, {ContactID: c.ID}} {
				got := x.Check(&q, &subj, now.Unix())
				if got.Allowed != tc.allowed || got.Reason != tc.reason || got.Version != 7 {
					t.Errorf("by %+v: %+v, want allowed=%v reason=%q version 7", subj, got, tc.allowed, tc.reason)
				}
			}
		})
	}
}

func TestDecideUnknownRecipient(t *testing.T) {
	d := prefsync.DefaultDictionary()
	x := prefsync.NewIndex(d)
	promo, _ := d.Query("email", "promotions")
	news, _ := d.Query("email", "product_updates")
	unknown := prefsync.Subject{Email: "nobody@example.com"}
	// An unknown recipient is treated as a contact with no events and no jurisdiction.
	if got := x.Check(&promo, &unknown, t0.Unix()); got.Allowed || got.Reason != "no_consent" || got.Version != 0 {
		t.Errorf("unknown, marketing: %+v", got)
	}
	if got := x.Check(&news, &unknown, t0.Unix()); !got.Allowed || got.Reason != "not_opted_out" {
		t.Errorf("unknown, relationship: %+v", got)
	}
	x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "nobody@example.com", Reason: prefsync.SuppressedSpamComplaint})
	if got := x.Check(&news, &unknown, t0.Unix()); got.Allowed || got.Reason != "suppressed:spam_complaint" {
		t.Errorf("unknown but suppressed: %+v", got)
	}
	// A suppressed number given beside the email of a known contact still counts.
	x.Put(&prefsync.Contact{ID: prefsync.ContactIDFromNumber(3), Emails: []string{"known@example.com"}, Jurisdiction: "US", Version: 2})
	x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierPhone, Address: "+14155552671", Reason: prefsync.SuppressedManual})
	account, _ := d.Query("sms", "account")
	both := prefsync.Subject{Email: "known@example.com", Phone: "+14155552671"}
	if got := x.Check(&account, &both, t0.Unix()); got.Allowed || got.Reason != "suppressed:manual" || got.Version != 2 {
		t.Errorf("known contact, suppressed number: %+v", got)
	}
	// Suppressing again with another reason replaces the reason.
	x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "known@example.com", Reason: prefsync.SuppressedManual})
	x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "known@example.com", Reason: prefsync.SuppressedHardBounce})
	if got := x.Check(&news, &prefsync.Subject{Email: "known@example.com"}, t0.Unix()); got.Reason != "suppressed:hard_bounce" {
		t.Errorf("re-suppressed: %+v", got)
	}

	// Lifting a suppression ends it, for the contact found by any identifier and for an
	// unknown recipient; a contact's other suppressed address of the kind still counts.
	lifted := t0
	x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "known@example.com", Reason: prefsync.SuppressedHardBounce, LiftedAt: &lifted})
	x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierPhone, Address: "+14155552671", Reason: prefsync.SuppressedManual, LiftedAt: &lifted})
	byID := prefsync.Subject{ContactID: prefsync.ContactIDFromNumber(3)}
	if got := x.Check(&news, &byID, t0.Unix()); !got.Allowed || got.Reason != "not_opted_out" {
		t.Errorf("lifted, by id: %+v", got)
	}
	if got := x.Check(&account, &both, t0.Unix()); !got.Allowed {
		t.Errorf("lifted number: %+v", got)
	}
	x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "nobody@example.com", Reason: prefsync.SuppressedSpamComplaint, LiftedAt: &lifted})
	if got := x.Check(&news, &unknown, t0.Unix()); !got.Allowed || got.Reason != "not_opted_out" {
		t.Errorf("unknown, lifted: %+v", got)
	}
	// Lift marks the contact again by its other suppressed address, even when the index
	// holds a newer version of the contact than the one given.
	two := &prefsync.Contact{ID: prefsync.ContactIDFromNumber(4), Emails: []string{"one@example.com", "two@example.com"}, Jurisdiction: "US", Version: 1}
	x.Put(two)
	x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "one@example.com", Reason: prefsync.SuppressedHardBounce})
	x.Suppress(prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "two@example.com", Reason: prefsync.SuppressedSpamComplaint})
	newer := *two
	newer.Version = 2
	x.Put(&newer)
	x.Lift(prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "two@example.com", Reason: prefsync.SuppressedSpamComplaint, LiftedAt: &lifted}, two)
	for _, s := range []prefsync.Subject{{ContactID: two.ID}, {Email: "two@example.com"}} {
		if got := x.Check(&news, &s, t0.Unix()); got.Allowed || got.Reason != "suppressed:hard_bounce" {
			t.Errorf("one of two suppressed addresses lifted, by %+v: %+v", s, got)
		}
	}
}

func TestIndexKeepsNewestVersion(t *testing.T) {
	d := prefsync.DefaultDictionary()
	x := prefsync.NewIndex(d)
	q, _ := d.Query("email", "product_updates")
	id := prefsync.ContactIDFromNumber(5)
	newer := &prefsync.Contact{ID: id, Emails: []string{"a@example.com"}, Version: 3,
		State: prefsync.ContactState{Scopes: []prefsync.ScopeState{{Channel: "email", Topic: "*", State: prefsync.OptedOut}}}}
	older := &prefsync.Contact{ID: id, Emails: []string{"a@example.com"}, Version: 2}
	x.Put(newer)
	x.Put(older)
	if got := x.Check(&q, &prefsync.Subject{Email: "a@example.com"}, t0.Unix()); got.Allowed || got.Version != 3 {
		t.Errorf("older version overwrote newer: %+v", got)
	}
	// Merging it into another contact: its address and id find the other, and a late
	// write of the merged contact does not bring it back.
	winner := &prefsync.Contact{ID: prefsync.ContactIDFromNumber(9), Emails: []string{"a@example.com", "b@example.com"}, Version: 4}
	x.Merge(newer, winner)
	x.Put(&prefsync.Contact{ID: id, Emails: []string{"a@example.com"}, Version: 9})
	for _, subj := range []prefsync.Subject{{Email: "a@example.com"}, {ContactID: id}, {ContactID: winner.ID}} {
		if got := x.Check(&q, &subj, t0.Unix()); !got.Allowed || got.Version != 4 {
			t.Errorf("after merge, %+v: %+v", subj, got)
		}
	}
	if x.Len() != 1 {
		t.Errorf("index holds %d contacts after a merge", x.Len())
	}
}

func TestMerge(t *testing.T) {
	a := prefsync.ContactState{Scopes: []prefsync.ScopeState{
		{Channel: "email", Topic: "*", State: prefsync.OptedIn, OccurredAt: t0.Add(time.Hour)},
		{Channel: "sms", Topic: "*", State: prefsync.OptedIn, OccurredAt: t0},
	}}
	b := prefsync.ContactState{Scopes: []prefsync.ScopeState{
		{Channel: "email", Topic: "*", State: prefsync.OptedOut, OccurredAt: t0},
		{Channel: "sms", Topic: "*", State: prefsync.OptedIn, OccurredAt: t0.Add(time.Hour)},
		{Channel: "push", Topic: "*", State: prefsync.OptedIn, OccurredAt: t0},
	}, Pauses: []prefsync.Pause{{Channel: "*", Until: t0.Add(time.Hour)}}}
	m := prefsync.Merge(a, b)
	if s := m.Find(prefsync.Scope{Channel: "email", Topic: "*"}); s.State != prefsync.OptedOut {
		t.Errorf("opt-out of either must win, got %+v", s)
	}
	if s := m.Find(prefsync.Scope{Channel: "sms", Topic: "*"}); !s.OccurredAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("later opt-in kept: %+v", s)
	}
	if m.Find(prefsync.Scope{Channel: "push", Topic: "*"}) == nil || len(m.Pauses) != 1 {
		t.Errorf("merged: %+v", m)
	}
	if len(a.Scopes) != 2 {
		t.Errorf("merge changed its input")
	}
}
