package prefsync

import (
	"testing"
	"time"
)

func TestPreferenceEvents(t *testing.T) {
	d := DefaultDictionary()
	at := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
	contact := func(jurisdiction string, states ...ScopeState) *Contact {
		c := &Contact{ID: "c_0000000000001", Jurisdiction: jurisdiction}
		for _, s := range states {
			c.State.put(s)
		}
		return c
	}
	out := func(ch, topic string, st State) ScopeState {
		return ScopeState{Channel: ch, Topic: topic, State: st, OccurredAt: at}
	}
	emailTopics := func(on ...string) map[Scope]bool {
		want := map[Scope]bool{}
		for _, t := range []string{"product_updates", "newsletter", "promotions", "events"} {
			want[Scope{"email", t}] = false
		}
		for _, t := range on {
			want[Scope{"email", t}] = true
		}
		return want
	}
	type ev struct {
		scope Scope
		state State
	}
	for _, tc := range []struct {
		name string
		c    *Contact
		want map[Scope]bool
		evs  []ev
	}{
		{"UnchangedWritesNothing", contact("US"), emailTopics("product_updates", "newsletter", "promotions", "events"), nil},
		{"TurnOffOne", contact("US"), emailTopics("product_updates", "promotions", "events"),
			[]ev{{Scope{"email", "newsletter"}, OptedOut}}},
		{"OptInWhereRequired", contact("DE"), emailTopics("product_updates", "newsletter"),
			[]ev{{Scope{"email", "newsletter"}, OptedIn}}},
		{"BackAfterUnsubscribeAll", contact("US", out("email", "*", OptedOut)), emailTopics("newsletter"),
			[]ev{{Scope{"email", "*"}, OptedIn}, {Scope{"email", "events"}, OptedOut}, {Scope{"email", "product_updates"}, OptedOut}, {Scope{"email", "promotions"}, OptedOut}}},
		{"StillOffUnderBroaderOptOut", contact("US", out("email", "*", OptedOut)), emailTopics(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := d.PreferenceEvents(tc.c, tc.want, at.Add(time.Hour))
			if len(got) != len(tc.evs) {
				t.Fatalf("events = %+v, want %+v", got, tc.evs)
			}
			for i, e := range got {
				if (Scope{e.Channel, e.Topic}) != tc.evs[i].scope || e.State != tc.evs[i].state {
					t.Errorf("event %d = %s:%s %s, want %+v", i, e.Channel, e.Topic, e.State, tc.evs[i])
				}
			}
			// The events make the page true: applying them gives what was wanted.
			c := *tc.c
			c.State = ContactState{Scopes: append([]ScopeState(nil), tc.c.State.Scopes...)}
			for _, e := range got {
				c.State.put(ScopeState{Channel: e.Channel, Topic: e.Topic, State: e.State, OccurredAt: at.Add(time.Hour)})
			}
			for s, want := range tc.want {
				if ch := d.ChoiceOf(&c, s, at.Add(time.Hour)); ch.On != want {
					t.Errorf("after the events %v is %v, want %v", s, ch.On, want)
				}
			}
		})
	}
}

// TestPreferenceEventsLeaveOthersOff: re-enabling a topic after an opt-out of
// everything lifts that opt-out only where the page asked: channels the page did not
// show stay off.
func TestPreferenceEventsLeaveOthersOff(t *testing.T) {
	d := DefaultDictionary()
	c := &Contact{ID: "c_0000000000001", Jurisdiction: "DE"}
	c.State.put(ScopeState{Channel: "*", Topic: "*", State: OptedOut})
	want := map[Scope]bool{{"email", "newsletter"}: true, {"email", "promotions"}: false, {"email", "events"}: false, {"email", "product_updates"}: false}
	evs := d.PreferenceEvents(c, want, time.Now())
	if len(evs) == 0 || evs[0].Channel != Any || evs[0].Topic != Any || evs[0].State != OptedIn {
		t.Fatalf("events = %+v", evs)
	}
	for _, e := range evs {
		c.State.put(ScopeState{Channel: e.Channel, Topic: e.Topic, State: e.State})
	}
	for _, q := range d.Queries() {
		got := d.ChoiceOf(c, q.Scope, time.Now())
		wantOn, shown := want[q.Scope]
		if got.Fixed {
			continue
		}
		if shown && got.On != wantOn || !shown && got.On {
			t.Errorf("%v is on=%v after re-enabling only the email newsletter", q.Scope, got.On)
		}
	}
}

func TestChoiceOf(t *testing.T) {
	d := DefaultDictionary()
	c := &Contact{Jurisdiction: "DE"}
	c.State.put(ScopeState{Channel: "email", Topic: "newsletter", State: OptedIn, Method: Explicit})
	if ch := d.ChoiceOf(c, Scope{"email", "newsletter"}, time.Now()); !ch.On || ch.Decider == nil {
		t.Errorf("opted in: %+v", ch)
	}
	if ch := d.ChoiceOf(c, Scope{"email", "promotions"}, time.Now()); ch.On || ch.Decider != nil {
		t.Errorf("no consent in DE: %+v", ch)
	}
	if ch := d.ChoiceOf(c, Scope{"email", "account"}, time.Now()); !ch.On || !ch.Fixed {
		t.Errorf("transactional: %+v", ch)
	}
	c.State.put(ScopeState{Channel: "*", Topic: "*", State: OptedOut})
	if ch := d.ChoiceOf(c, Scope{"email", "newsletter"}, time.Now()); ch.On || ch.Decider.Channel != "*" {
		t.Errorf("under an opt-out of everything: %+v", ch)
	}
}

// TestChoiceOfExpiry: implied consent lapses (CASL, 730 days in the built-in
// dictionary); explicit consent does not.
func TestChoiceOfExpiry(t *testing.T) {
	d := DefaultDictionary()
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Contact{Jurisdiction: "CA"}
	c.State.put(ScopeState{Channel: "email", Topic: "newsletter", State: OptedIn, Method: Implicit, OccurredAt: at})
	c.State.put(ScopeState{Channel: "email", Topic: "events", State: OptedIn, Method: Explicit, OccurredAt: at})
	now := at.Add(731 * 24 * time.Hour)
	if ch := d.ChoiceOf(c, Scope{"email", "newsletter"}, now); ch.On {
		t.Error("implied consent still on after 731 days in CA")
	}
	if ch := d.ChoiceOf(c, Scope{"email", "newsletter"}, at.Add(24*time.Hour)); !ch.On {
		t.Error("implied consent off after a day")
	}
	if ch := d.ChoiceOf(c, Scope{"email", "events"}, now); !ch.On {
		t.Error("explicit consent lapsed")
	}
	// A page that shows the lapsed topic off, saved unchanged, writes nothing.
	want := map[Scope]bool{{"email", "newsletter"}: false, {"email", "events"}: true, {"email", "promotions"}: false, {"email", "product_updates"}: true}
	if evs := d.PreferenceEvents(c, want, now); len(evs) != 0 {
		t.Errorf("unchanged page wrote %+v", evs)
	}
}
