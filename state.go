package prefsync

import (
	"sort"
	"time"
)

// ScopeState is the current state of one scope of a contact, and the event that set it.
type ScopeState struct {
	Channel    string    `json:"channel"`
	Topic      string    `json:"topic"`
	State      State     `json:"state"`
	Method     Method    `json:"method"`
	Source     Source    `json:"source"`
	OccurredAt time.Time `json:"occurred_at"`
	Seq        int64     `json:"seq"`
}

// Scope returns the scope the state is about.
func (s ScopeState) Scope() Scope { return Scope{Channel: s.Channel, Topic: s.Topic} }

// Pause holds a channel (or Any) paused until a time.
type Pause struct {
	Channel    string    `json:"channel"`
	Until      time.Time `json:"until"`
	OccurredAt time.Time `json:"occurred_at"`
	Seq        int64     `json:"seq"`
}

// ContactState is the projection of a contact's applied events: the state of every scope
// it has, and its pauses. Scopes are kept sorted by channel, then topic.
type ContactState struct {
	Scopes []ScopeState `json:"scopes,omitempty"`
	Pauses []Pause      `json:"pauses,omitempty"`
}

// The reasons an event does not apply.
const (
	ReasonOlderThanCurrent     = "older_than_current"
	ReasonTieOptOutWins        = "tie_opt_out_wins"
	ReasonNotExplicitAfterOut  = "opt_in_not_explicit_after_opt_out"
	ReasonDuplicateIdempotency = "idempotency_key_seen"
)

// Resolve applies rules 1 and 2 of the specification: it decides what an event does to
// a scope whose current state is cur (nil when not set). covered reports whether the
// scope or a broader one covering it is opted out.
func Resolve(cur *ScopeState, ev *Event, covered bool, window time.Duration) (Status, string) {
	if cur != nil {
		d := ev.OccurredAt.Sub(cur.OccurredAt)
		switch {
		case d < -window:
			return Superseded, ReasonOlderThanCurrent
		case d <= window && cur.State == OptedOut && ev.State == OptedIn:
			return Superseded, ReasonTieOptOutWins
		case d <= window && d < 0 && !(ev.State == OptedOut && cur.State == OptedIn):
			// A tie between equal states: the later one still wins.
			return Superseded, ReasonOlderThanCurrent
		}
	}
	if ev.State == OptedIn && covered && !ev.reopens() {
		return Rejected, ReasonNotExplicitAfterOut
	}
	return Applied, ""
}

// reopens reports whether an opt-in carries consent strong enough to override an
// opt-out (rule 2): explicit, and not from a bulk import or a CRM sync.
func (e *Event) reopens() bool {
	return e.Evidence.Method == Explicit && e.Source.Touchpoint != Import && e.Source.Touchpoint != CRMSync
}

// Find returns the state of scope s, or nil.
func (st *ContactState) Find(s Scope) *ScopeState {
	i, ok := st.search(s)
	if !ok {
		return nil
	}
	return &st.Scopes[i]
}

func (st *ContactState) search(s Scope) (int, bool) {
	i := sort.Search(len(st.Scopes), func(i int) bool {
		x := st.Scopes[i]
		return x.Channel > s.Channel || (x.Channel == s.Channel && x.Topic >= s.Topic)
	})
	return i, i < len(st.Scopes) && st.Scopes[i].Channel == s.Channel && st.Scopes[i].Topic == s.Topic
}

// OptedOutCovering reports whether s or any scope covering it is opted out.
func (st *ContactState) OptedOutCovering(s Scope) bool {
	for _, c := range covering(s) {
		if x := st.Find(c); x != nil && x.State == OptedOut {
			return true
		}
	}
	return false
}

// covering lists s and every broader scope that covers it.
func covering(s Scope) []Scope {
	out := []Scope{{Any, Any}}
	if s.Channel != Any {
		out = append(out, Scope{s.Channel, Any})
	}
	if s.Topic != Any {
		out = append(out, Scope{Any, s.Topic})
	}
	if s.Channel != Any && s.Topic != Any {
		out = append(out, s)
	}
	return out
}

// Apply resolves ev against the state and, when it applies, records it as the scope's
// (or the channel pause's) new state, set by audit entry seq.
func (st *ContactState) Apply(ev *Event, seq int64, window time.Duration) (Status, string) {
	if ev.IsPause() {
		return st.applyPause(ev, seq)
	}
	cur := st.Find(ev.Scope)
	status, reason := Resolve(cur, ev, st.OptedOutCovering(ev.Scope), window)
	if status != Applied {
		return status, reason
	}
	next := ScopeState{Channel: ev.Scope.Channel, Topic: ev.Scope.Topic, State: ev.State,
		Method: ev.Evidence.Method, Source: ev.Source, OccurredAt: ev.OccurredAt, Seq: seq}
	st.put(next)
	return Applied, ""
}

func (st *ContactState) put(next ScopeState) {
	i, ok := st.search(next.Scope())
	if ok {
		st.Scopes[i] = next
		return
	}
	st.Scopes = append(st.Scopes, ScopeState{})
	copy(st.Scopes[i+1:], st.Scopes[i:])
	st.Scopes[i] = next
}

func (st *ContactState) applyPause(ev *Event, seq int64) (Status, string) {
	for i, p := range st.Pauses {
		if p.Channel != ev.Scope.Channel {
			continue
		}
		if ev.OccurredAt.Before(p.OccurredAt) { // pauses have no opt-out to favour: latest wins
			return Superseded, ReasonOlderThanCurrent
		}
		st.Pauses[i] = Pause{Channel: p.Channel, Until: ev.PausedUntil, OccurredAt: ev.OccurredAt, Seq: seq}
		return Applied, ""
	}
	st.Pauses = append(st.Pauses, Pause{Channel: ev.Scope.Channel, Until: ev.PausedUntil, OccurredAt: ev.OccurredAt, Seq: seq})
	sort.Slice(st.Pauses, func(i, j int) bool { return st.Pauses[i].Channel < st.Pauses[j].Channel })
	return Applied, ""
}

// Merge returns the most restrictive combination of two contacts' states: an opt-out in
// either wins; otherwise the later opt-in; the later of two pauses.
func Merge(a, b ContactState) ContactState {
	out := ContactState{Scopes: append([]ScopeState(nil), a.Scopes...), Pauses: append([]Pause(nil), a.Pauses...)}
	for _, s := range b.Scopes {
		cur := out.Find(s.Scope())
		switch {
		case cur == nil,
			s.State == OptedOut && cur.State != OptedOut,
			s.State == cur.State && s.OccurredAt.After(cur.OccurredAt):
			out.put(s)
		}
	}
	for _, p := range b.Pauses {
		found := false
		for i, q := range out.Pauses {
			if q.Channel == p.Channel {
				found = true
				if p.Until.After(q.Until) {
					out.Pauses[i] = p
				}
			}
		}
		if !found {
			out.Pauses = append(out.Pauses, p)
		}
	}
	sort.Slice(out.Pauses, func(i, j int) bool { return out.Pauses[i].Channel < out.Pauses[j].Channel })
	return out
}
