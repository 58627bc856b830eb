package prefsync

import (
	"encoding/json"
	"strings"
	"time"
)

// Status says what an event did.
type Status string

// The event statuses.
const (
	Applied    Status = "applied"
	Superseded Status = "superseded"
	Rejected   Status = "rejected"
	Duplicate  Status = "duplicate"
)

// Source says which system reported a change, where, and who made it.
type Source struct {
	System     string     `json:"system"`
	Touchpoint Touchpoint `json:"touchpoint"`
	Actor      string     `json:"actor,omitempty"`
}

// Evidence is the proof of consent an event carries. IP and UserAgent are personal data:
// stores keep them apart from the audit chain so erasure can remove them.
type Evidence struct {
	Method    Method          `json:"method,omitempty"`
	IP        string          `json:"ip,omitempty"`
	UserAgent string          `json:"user_agent,omitempty"`
	Proof     json.RawMessage `json:"proof,omitempty"`
}

// EventInput is an event as a client sends it.
type EventInput struct {
	Subject        Subject  `json:"subject"`
	Channel        string   `json:"channel"`
	Topic          string   `json:"topic"`
	State          State    `json:"state,omitempty"`
	PausedUntil    string   `json:"paused_until,omitempty"`
	OccurredAt     string   `json:"occurred_at,omitempty"`
	Source         Source   `json:"source"`
	Reason         string   `json:"reason,omitempty"`
	Evidence       Evidence `json:"evidence"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
}

// Event is a validated change: an opt-in or opt-out of a scope, or a pause of a channel.
type Event struct {
	Subject Subject
	Scope   Scope
	// State is OptedIn or OptedOut; it is empty for a pause.
	State State
	// PausedUntil is set for a pause; a time in the past ends the pause.
	PausedUntil    time.Time
	OccurredAt     time.Time
	ReceivedAt     time.Time
	Source         Source
	Reason         string
	Evidence       Evidence
	IdempotencyKey string
}

// IsPause reports whether the event pauses (or resumes) a channel.
func (e *Event) IsPause() bool { return e.State == "" }

// MaxClockSkew is how far in the future an occurred_at may lie: an event dated later
// would win every conflict until then.
const MaxClockSkew = 5 * time.Minute

// The range of times prefsync stores: from the Unix epoch to the end of 2105, which the
// stored state and the check index both represent exactly.
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Date(2106, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Validate checks an event input against the dictionary and returns the event it
// describes, with identifiers normalised. now is the time prefsync received it.
func (in EventInput) Validate(d *Dictionary, n Normalizer, now time.Time) (Event, error) {
	ev := Event{
		Scope:          Scope{Channel: in.Channel, Topic: in.Topic},
		State:          in.State,
		ReceivedAt:     now,
		OccurredAt:     now,
		Source:         in.Source,
		Reason:         in.Reason,
		Evidence:       in.Evidence,
		IdempotencyKey: in.IdempotencyKey,
	}
	var err error
	if ev.Subject, err = NormalizeSubject(n, in.Subject); err != nil {
		return ev, WithFieldPrefix(err, "subject")
	}
	if ev.Scope.Channel == "" {
		return ev, FieldErrorf("channel", "channel is required (use \"*\" for every channel)")
	}
	if ev.Scope.Topic == "" {
		return ev, FieldErrorf("topic", "topic is required (use \"*\" for every topic)")
	}
	if err := d.ValidateScope(ev.Scope); err != nil {
		return ev, err
	}
	if in.OccurredAt != "" {
		t, err := time.Parse(time.RFC3339Nano, in.OccurredAt)
		if err != nil {
			return ev, FieldErrorf("occurred_at", "%q is not an RFC 3339 time such as 2026-03-01T10:00:00Z", in.OccurredAt)
		}
		if t.After(now.Add(MaxClockSkew)) {
			return ev, FieldErrorf("occurred_at", "%s is in the future", in.OccurredAt)
		}
		if t.Before(minTime) {
			return ev, FieldErrorf("occurred_at", "%s is before 1970", in.OccurredAt)
		}
		ev.OccurredAt = t
	}
	ev.OccurredAt = ev.OccurredAt.UTC()
	switch {
	case in.State == "" && in.PausedUntil != "":
		t, err := time.Parse(time.RFC3339Nano, in.PausedUntil)
		if err != nil {
			return ev, FieldErrorf("paused_until", "%q is not an RFC 3339 time", in.PausedUntil)
		}
		if ev.Scope.Topic != Any {
			return ev, FieldErrorf("topic", "a pause covers a whole channel: topic must be \"*\"")
		}
		if t.Before(minTime) || !t.Before(maxTime) {
			return ev, FieldErrorf("paused_until", "%s is outside 1970 to 2105; to stop messages for good, opt out instead", in.PausedUntil)
		}
		ev.PausedUntil = t.UTC()
	case in.PausedUntil != "":
		return ev, FieldErrorf("paused_until", "an event either sets state or pauses, not both")
	case in.State == OptedIn || in.State == OptedOut:
	case in.State == "":
		return ev, FieldErrorf("state", "state is required: opted_in or opted_out (or paused_until)")
	default:
		return ev, FieldErrorf("state", "state %q is not opted_in or opted_out", in.State)
	}
	if ev.Source.System = strings.TrimSpace(ev.Source.System); ev.Source.System == "" {
		return ev, FieldErrorf("source.system", "source.system is required")
	}
	if ev.Source.Touchpoint == "" {
		ev.Source.Touchpoint = API
	}
	if !touchpoints[ev.Source.Touchpoint] {
		return ev, FieldErrorf("source.touchpoint", "unknown touchpoint %q", ev.Source.Touchpoint)
	}
	switch {
	case ev.Evidence.Method == "" && ev.State == OptedIn:
		// Guessing "explicit" here could re-open a closed door (rule 2).
		return ev, FieldErrorf("evidence.method", "an opt-in must say its consent method: explicit, implicit or grandfathered")
	case ev.Evidence.Method == "":
		ev.Evidence.Method = Explicit
	case !methods[ev.Evidence.Method]:
		return ev, FieldErrorf("evidence.method", "unknown method %q", ev.Evidence.Method)
	}
	if len(ev.Evidence.Proof) > 0 && !json.Valid(ev.Evidence.Proof) {
		return ev, FieldErrorf("evidence.proof", "proof is not JSON")
	}
	for field, v := range map[string]string{"reason": ev.Reason, "idempotency_key": ev.IdempotencyKey,
		"evidence.ip": ev.Evidence.IP, "evidence.user_agent": ev.Evidence.UserAgent, "source.actor": ev.Source.Actor} {
		if len(v) > 1024 {
			return ev, FieldErrorf(field, "longer than 1024 bytes")
		}
	}
	return ev, nil
}

// EventResult is what one event did.
type EventResult struct {
	Status    Status `json:"status"`
	Reason    string `json:"reason,omitempty"`
	ContactID string `json:"contact_id"`
	Version   int64  `json:"version"`
	// Seq is the event's place in the audit trail.
	Seq int64 `json:"seq"`
}

// AuditEntry is one entry of a contact's audit trail: an event as received, with what it
// did. Personal data (subject, IP, user agent) is absent once erased.
type AuditEntry struct {
	Seq       int64  `json:"seq"`
	Kind      string `json:"kind"`
	ContactID string `json:"contact_id"`
	Status    Status `json:"status"`
	// StatusReason says why the event was superseded, rejected or a duplicate.
	StatusReason string `json:"status_reason,omitempty"`
	// Reason is the reason the event itself gave, such as "too many emails".
	Reason         string     `json:"reason,omitempty"`
	Channel        string     `json:"channel,omitempty"`
	Topic          string     `json:"topic,omitempty"`
	State          State      `json:"state,omitempty"`
	PausedUntil    *time.Time `json:"paused_until,omitempty"`
	OccurredAt     time.Time  `json:"occurred_at"`
	ReceivedAt     time.Time  `json:"received_at"`
	Source         Source     `json:"source"`
	Evidence       Evidence   `json:"evidence"`
	IdempotencyKey string     `json:"idempotency_key,omitempty"`
	Version        int64      `json:"version"`
	Subject        *Subject   `json:"subject,omitempty"`
	// Deliveries say what each destination made of an applied change.
	Deliveries []Receipt `json:"deliveries,omitempty"`
}
