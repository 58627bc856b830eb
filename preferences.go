package prefsync

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"
)

// Choice is what a contact has chosen for one scope, as the preference page shows it:
// whether it is on, and the scope state that decided it (nil when nothing did: the
// jurisdiction's default).
type Choice struct {
	Scope   Scope
	On      bool
	Fixed   bool // transactional: always sent, not switchable
	Decider *ScopeState
}

// ChoiceOf reads a contact's choice for a concrete scope at now from its state: an
// opt-out of any covering scope turns it off (rule 3); otherwise an opt-in of a covering
// scope that has not expired (implied consent lapses, rule 4), or the jurisdiction's
// default, turns it on. Pauses are not choices of topics, and are shown apart.
func (d *Dictionary) ChoiceOf(c *Contact, s Scope, now time.Time) Choice {
	ch := Choice{Scope: s}
	if d.TopicKind(s.Topic) == Transactional {
		ch.On, ch.Fixed = true, true
		return ch
	}
	var optIn *ScopeState
	for _, cs := range covering(s) {
		x := c.State.Find(cs)
		switch {
		case x == nil, d.expired(c, x, now):
		case x.State == OptedOut:
			ch.Decider = x
			return ch
		case optIn == nil || cs == s:
			optIn = x
		}
	}
	ch.Decider = optIn
	ch.On = optIn != nil || d.TopicKind(s.Topic) != Marketing || !d.OptInRequired(c.Jurisdiction)
	return ch
}

// expired reports whether x is an implied opt-in past its jurisdiction's expiry.
func (d *Dictionary) expired(c *Contact, x *ScopeState, now time.Time) bool {
	exp := d.policyOf(c.Jurisdiction).expiry
	return x.State == OptedIn && x.Method != Explicit && exp > 0 && !x.OccurredAt.Add(exp).After(now)
}

// PreferenceEvents turns the choices made on a preference page (want: on or off for
// each switchable scope shown) into the events that make them so, and nothing more:
// unchanged scopes get no event. Turning a topic on under a broader opt-out (after
// "unsubscribe from all") opts back in to that broader scope, explicitly, and keeps off
// every other shown scope under it that is not wanted.
func (d *Dictionary) PreferenceEvents(c *Contact, want map[Scope]bool, now time.Time) []EventInput {
	states := map[Scope]State{}
	for i, s := range c.State.Scopes {
		if !d.expired(c, &c.State.Scopes[i], now) { // a lapsed opt-in counts for nothing
			states[s.Scope()] = s.State
		}
	}
	var out []EventInput
	set := func(s Scope, st State) {
		if states[s] == st {
			return
		}
		states[s] = st
		out = append(out, EventInput{Channel: s.Channel, Topic: s.Topic, State: st})
	}
	// on says whether s is on in the state as changed so far, as ChoiceOf would.
	on := func(s Scope) bool {
		optedIn := false
		for _, cs := range covering(s) {
			switch states[cs] {
			case OptedOut:
				return false
			case OptedIn:
				optedIn = true
			}
		}
		return optedIn || d.TopicKind(s.Topic) != Marketing || !d.OptInRequired(c.Jurisdiction)
	}
	shown := slices.SortedFunc(maps.Keys(want), func(a, b Scope) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Topic, b.Topic))
	})
	shownChannel := map[string]bool{}
	for s := range want {
		shownChannel[s.Channel] = true
	}
	// Turning on first: clearing a broader opt-out may turn others on, which the second
	// pass turns off again where they are not wanted.
	for _, s := range shown {
		if !want[s] || on(s) {
			continue
		}
		broader := covering(s)
		for _, cs := range broader[:len(broader)-1] {
			if states[cs] != OptedOut {
				continue
			}
			// The opt-in that lifts a broader opt-out must not lift it where the page
			// did not ask: channels not shown stay off, scope by scope.
			set(cs, OptedIn)
			if cs.Channel == Any {
				for _, other := range d.channelsOf(cs.Topic) {
					if !shownChannel[other] {
						set(Scope{other, cs.Topic}, OptedOut)
					}
				}
			}
		}
		if !on(s) {
			set(s, OptedIn)
		}
	}
	for _, s := range shown {
		if !want[s] && on(s) {
			set(s, OptedOut)
		}
	}
	return out
}

// channelsOf lists the channels a topic is sent on; every channel for Any.
func (d *Dictionary) channelsOf(topic string) []string {
	var out []string
	for _, c := range d.Channels {
		if topic == Any || d.ValidateScope(Scope{c.Name, topic}) == nil {
			out = append(out, c.Name)
		}
	}
	return out
}

// PreferenceToken returns the token of a contact's preference page link, valid for ttl.
func (h *Hub) PreferenceToken(ctx context.Context, contactID string, ttl time.Duration) (string, time.Time, error) {
	c, err := h.Store.FindContact(ctx, ContactFilter{ID: &contactID})
	if err != nil {
		return "", time.Time{}, err
	}
	exp := h.Now().Add(ttl).UTC().Truncate(time.Second)
	return h.Links.Sign(Link{Purpose: LinkPreferences, ContactID: c.ID, Expires: exp}), exp, nil
}

// PreferenceContact returns the contact a preference token names, or ErrBadLink.
func (h *Hub) PreferenceContact(ctx context.Context, token string) (*Contact, error) {
	l, err := h.Links.Verify(token, h.Now())
	if err != nil || l.Purpose != LinkPreferences {
		return nil, ErrBadLink
	}
	c, err := h.Store.FindContact(ctx, ContactFilter{ID: &l.ContactID})
	if ErrorCode(err) == ENOTFOUND {
		return nil, ErrBadLink
	}
	return c, err
}
