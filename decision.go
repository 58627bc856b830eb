package prefsync

import (
	"math"
	"time"
)

// Decision is the answer to "may I send this to this person?", with the reason that
// decided it and the version of the contact's state it was decided on (rule 5).
type Decision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
	Version int64  `json:"version"`
}

// Decision reasons that name no scope.
const (
	ReasonTransactional = "transactional"
	ReasonNotOptedOut   = "not_opted_out"
	ReasonNoConsent     = "no_consent"
	ReasonSuppressed    = "suppressed:"
	ReasonPausedUntil   = "paused_until:"
)

// Fact kinds.
const (
	FactOptedIn uint8 = iota + 1
	FactOptedOut
	FactPaused
	FactSuppressed
)

// Fact is one scope state or pause in compact form, 8 bytes, so that the check index can
// hold millions of contacts. At is the Unix second of consent (opt-ins) or of the end of
// a pause, or the reason code of a suppression.
type Fact struct {
	Scope   ScopeID
	Kind    uint8
	Implied bool
	At      uint32
}

// Facts are what a decision needs to know of one contact.
type Facts struct {
	Version int64
	Facts   []Fact
	Policy  uint8
}

// Facts compiles a contact's state into its compact form.
func (d *Dictionary) Facts(st *ContactState, version int64, jurisdiction string) Facts {
	return Facts{Version: version, Policy: d.PolicyID(jurisdiction), Facts: d.appendFacts(nil, st)}
}

func (d *Dictionary) appendFacts(fs []Fact, st *ContactState) []Fact {
	for _, s := range st.Scopes {
		x := Fact{Scope: d.ScopeID(s.Scope()), Kind: FactOptedOut}
		if s.State == OptedIn {
			x.Kind, x.Implied, x.At = FactOptedIn, s.Method != Explicit, unixSeconds(s.OccurredAt)
		}
		fs = append(fs, x)
	}
	for _, p := range st.Pauses {
		fs = append(fs, Fact{Scope: d.ScopeID(Scope{p.Channel, Any}), Kind: FactPaused, At: unixSeconds(p.Until)})
	}
	return fs
}

func unixSeconds(t time.Time) uint32 {
	s := t.Unix()
	switch {
	case s < 0:
		return 0
	case s > math.MaxUint32:
		return math.MaxUint32
	}
	if t.Nanosecond() > 0 && s < math.MaxUint32 {
		s++ // round up: a pause lasts at least until its end
	}
	return uint32(s)
}

// Query is a (channel, topic) compiled against the dictionary, ready to decide on many
// contacts.
type Query struct {
	Scope       Scope
	kind        TopicKind
	cover       [4]ScopeID // (*,*), (c,*), (*,t), (c,t): broadest first
	channelWide ScopeID
}

// Query compiles a concrete (channel, topic) to check.
func (d *Dictionary) Query(channel, topic string) (Query, error) {
	s := Scope{Channel: channel, Topic: topic}
	if channel == "" || channel == Any {
		return Query{}, FieldErrorf("channel", "a check needs a concrete channel")
	}
	if topic == "" || topic == Any {
		return Query{}, FieldErrorf("topic", "a check needs a concrete topic")
	}
	if err := d.ValidateScope(s); err != nil {
		return Query{}, err
	}
	return d.query(s), nil
}

func (d *Dictionary) query(s Scope) Query {
	c, t := d.channelIDs[s.Channel], d.topicIDs[s.Topic]
	return Query{
		Scope:       s,
		kind:        d.kinds[t],
		cover:       [4]ScopeID{d.scopeID(0, 0), d.scopeID(c, 0), d.scopeID(0, t), d.scopeID(c, t)},
		channelWide: d.scopeID(c, 0),
	}
}

// Queries returns a query for every (channel, topic) the dictionary lists, topic by topic.
func (d *Dictionary) Queries() []Query {
	var qs []Query
	for _, t := range d.Topics {
		for _, c := range t.Channels {
			qs = append(qs, d.query(Scope{Channel: c, Topic: t.Name}))
		}
	}
	return qs
}

// Decide applies rules 3 and 4 of the specification to one contact's facts. now is a
// Unix second.
func (d *Dictionary) Decide(f *Facts, q *Query, now int64) Decision {
	for _, x := range f.Facts {
		if x.Kind == FactSuppressed && x.Scope == q.channelWide {
			return Decision{Reason: suppressedReasons[x.At], Version: f.Version}
		}
	}
	if q.kind == Transactional {
		return Decision{Allowed: true, Reason: ReasonTransactional, Version: f.Version}
	}
	for _, c := range q.cover {
		for _, x := range f.Facts {
			if x.Scope == c && x.Kind == FactOptedOut {
				return Decision{Reason: d.outReasons[c], Version: f.Version}
			}
		}
	}
	for _, x := range f.Facts {
		if x.Kind == FactPaused && (x.Scope == q.channelWide || x.Scope == q.cover[0]) && int64(x.At) > now {
			return Decision{Reason: ReasonPausedUntil + time.Unix(int64(x.At), 0).UTC().Format(time.RFC3339), Version: f.Version}
		}
	}
	pol := d.policies[f.Policy]
	consent, expired := -1, -1
	for i := 3; i >= 0 && consent < 0; i-- { // narrowest scope first: it explains best
		for _, x := range f.Facts {
			if x.Scope != q.cover[i] || x.Kind != FactOptedIn {
				continue
			}
			if x.Implied && pol.expiry > 0 && int64(x.At)+int64(pol.expiry/time.Second) <= now {
				if expired < 0 {
					expired = i
				}
				continue
			}
			consent = i
			break
		}
	}
	switch {
	case consent >= 0:
		return Decision{Allowed: true, Reason: d.inReasons[q.cover[consent]], Version: f.Version}
	case q.kind == Relationship || !pol.optIn:
		return Decision{Allowed: true, Reason: ReasonNotOptedOut, Version: f.Version}
	case expired >= 0:
		return Decision{Reason: d.expReasons[q.cover[expired]], Version: f.Version}
	}
	return Decision{Reason: ReasonNoConsent, Version: f.Version}
}

// addressChannels are the channels an address of each kind reaches; a suppressed
// address blocks them.
var addressChannels = map[string][]string{
	IdentifierEmail: {"email"},
	IdentifierPhone: {"sms", "whatsapp", "voice"},
}

// addressReaches reports whether an address of the kind reaches the channel-wide scope.
func (d *Dictionary) addressReaches(kind string, scope ScopeID) bool {
	for _, c := range addressChannels[kind] {
		if id, ok := d.channelIDs[c]; ok && d.scopeID(id, 0) == scope {
			return true
		}
	}
	return false
}

func (d *Dictionary) appendSuppressionFacts(fs []Fact, kind string, code uint8) []Fact {
	for _, c := range addressChannels[kind] {
		if id, ok := d.channelIDs[c]; ok {
			fs = append(fs, Fact{Scope: d.scopeID(id, 0), Kind: FactSuppressed, At: uint32(code)})
		}
	}
	return fs
}
