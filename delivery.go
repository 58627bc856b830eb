package prefsync

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"time"
)

// DeliveryStatus says where a delivery stands.
type DeliveryStatus string

// Delivery statuses. A dead delivery exhausted its retries; it stays visible and can be
// replayed. A cancelled one belonged to a destination that was deleted.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryDead      DeliveryStatus = "dead"
	DeliveryCancelled DeliveryStatus = "cancelled"
)

// Known reports whether s is one of the delivery statuses.
func (s DeliveryStatus) Known() bool {
	switch s {
	case DeliveryPending, DeliveryDelivered, DeliveryDead, DeliveryCancelled:
		return true
	}
	return false
}

// Delivery is one change to be sent to one destination: the transactional outbox's row.
type Delivery struct {
	ID          int64          `json:"id"`
	MessageID   string         `json:"message_id"`
	Destination string         `json:"destination"`
	Seq         int64          `json:"seq"`
	ContactID   string         `json:"contact_id"`
	Version     int64          `json:"version"`
	Status      DeliveryStatus `json:"status"`
	Attempts    int            `json:"attempts"`
	// LastCode is the HTTP status of the last attempt, 0 when it got none (LastError
	// says why); LatencyMS is how long it took.
	LastCode  int       `json:"last_code,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	LatencyMS int64     `json:"latency_ms,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// RetryFrom is when the retry schedule started: at CreatedAt, or at the last replay.
	RetryFrom     time.Time  `json:"-"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
	// Payload is the body sent, the same on every attempt.
	Payload []byte `json:"-"`
}

// Attempt is the outcome of one try of a delivery.
type Attempt struct {
	DeliveryID int64
	At         time.Time
	Code       int
	Error      string
	Latency    time.Duration
	// Status is the delivery's status after the attempt; NextAttemptAt matters while it
	// is pending.
	Status        DeliveryStatus
	NextAttemptAt time.Time
}

// DeliveryFilter selects deliveries to list or replay.
type DeliveryFilter struct {
	Destination string
	Status      DeliveryStatus
	// ID selects one delivery; Since, deliveries created at or after it.
	ID    int64
	Since time.Time
	// After pages: deliveries with a greater id. Limit caps how many are listed.
	After int64
	Limit int
}

// DeliveryStats is the backlog of one destination.
type DeliveryStats struct {
	Destination string
	Pending     int
	// OldestPending is when the oldest undelivered change was accepted.
	OldestPending time.Time
}

// Receipt is what a destination made of a change, for the contact's history.
type Receipt struct {
	Destination string         `json:"destination"`
	Status      DeliveryStatus `json:"status"`
	Attempts    int            `json:"attempts"`
	DeliveredAt *time.Time     `json:"delivered_at,omitempty"`
}

// RetrySchedule is when a delivery that keeps failing is tried again, counted from when
// its change was accepted (or it was replayed): the Standard Webhooks schedule (5 s, 5 min, 30 min, 2 h, 5 h,
// 10 h, 10 h) stretched to about three days. Past its last point, a delivery is dead.
var RetrySchedule = func() []time.Duration {
	gaps := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
		10 * time.Hour, 10 * time.Hour, 14 * time.Hour, 14 * time.Hour, 16 * time.Hour}
	out := make([]time.Duration, len(gaps))
	var at time.Duration
	for i, g := range gaps {
		at += g
		out[i] = at
	}
	return out
}()

// RetryHorizon is how long a delivery is retried before it is dead.
var RetryHorizon = RetrySchedule[len(RetrySchedule)-1]

// NextAttempt returns when a delivery whose retry schedule started at from, and which
// failed at now, is next tried: the next point of the schedule, delayed by up to a tenth of the
// gap before it so that deliveries failing together do not all return together. It
// reports false when the schedule is over.
func NextAttempt(from, now time.Time, jitter *rand.Rand) (time.Time, bool) {
	age := now.Sub(from)
	prev := time.Duration(0)
	for _, at := range RetrySchedule {
		if at > age {
			return from.Add(at + time.Duration(jitter.Int64N(int64((at-prev)/10)+1))), true
		}
		prev = at
	}
	return time.Time{}, false
}

// The types of change, a webhook body's "type": an applied event, or two contacts
// merged into one (the survivor's state is the most restrictive of both).
const (
	ChangePreference = "preference.changed"
	ChangeMerged     = "contact.merged"
)

// Change is the body of a webhook: what changed, who it is about, and the contact's
// whole resulting state with its version, so a receiver can apply it without asking
// and drop a stale or repeated one (a version not above the one it holds).
type Change struct {
	Type      string     `json:"type"`
	Timestamp time.Time  `json:"timestamp"`
	Data      ChangeData `json:"data"`
}

// ChangeData is a change's content: Event for a preference change, MergedID (the id
// that now finds Contact) for a merge.
type ChangeData struct {
	Seq      int64         `json:"seq"`
	Version  int64         `json:"version"`
	Contact  ChangeContact `json:"contact"`
	Event    *ChangeEvent  `json:"event,omitempty"`
	MergedID string        `json:"merged_id,omitempty"`
	State    ContactState  `json:"state"`
}

// ChangeContact is the contact as a change carries it: its identifiers, no evidence.
type ChangeContact struct {
	ID           string       `json:"id"`
	Emails       []string     `json:"emails"`
	Phones       []string     `json:"phones"`
	ExternalIDs  []ExternalID `json:"external_ids"`
	Jurisdiction string       `json:"jurisdiction,omitempty"`
	Locale       string       `json:"locale,omitempty"`
}

// ChangeEvent is the event that made a change. Evidence that is personal data (IP, user
// agent) stays in the hub.
type ChangeEvent struct {
	Channel     string     `json:"channel"`
	Topic       string     `json:"topic"`
	State       State      `json:"state,omitempty"`
	PausedUntil *time.Time `json:"paused_until,omitempty"`
	OccurredAt  time.Time  `json:"occurred_at"`
	ReceivedAt  time.Time  `json:"received_at"`
	Source      Source     `json:"source"`
	Method      Method     `json:"method,omitempty"`
	Reason      string     `json:"reason,omitempty"`
}

// NewChange is the webhook body of applied event ev, recorded as audit entry seq, which
// left contact c as it is.
func NewChange(ev *Event, c *Contact, seq int64) ([]byte, error) {
	e := &ChangeEvent{Channel: ev.Scope.Channel, Topic: ev.Scope.Topic, State: ev.State,
		OccurredAt: ev.OccurredAt.UTC(), ReceivedAt: ev.ReceivedAt.UTC(),
		Source: Source{System: ev.Source.System, Touchpoint: ev.Source.Touchpoint},
		Method: ev.Evidence.Method, Reason: ev.Reason}
	if ev.IsPause() {
		t := ev.PausedUntil.UTC()
		e.PausedUntil = &t
	}
	ch := newChange(ChangePreference, e.ReceivedAt, c, seq)
	ch.Data.Event = e
	return json.Marshal(ch)
}

// NewMergeChange is the webhook body of merging contact merged into c, recorded as audit
// entry seq at time at.
func NewMergeChange(c *Contact, merged string, seq int64, at time.Time) ([]byte, error) {
	ch := newChange(ChangeMerged, at.UTC(), c, seq)
	ch.Data.MergedID = merged
	return json.Marshal(ch)
}

func newChange(typ string, at time.Time, c *Contact, seq int64) Change {
	// Who made each change (an agent's name) is personal data the hub keeps to itself.
	state := ContactState{Scopes: slices.Clone(c.State.Scopes), Pauses: c.State.Pauses}
	for i := range state.Scopes {
		state.Scopes[i].Source.Actor = ""
	}
	return Change{Type: typ, Timestamp: at, Data: ChangeData{Seq: seq, Version: c.Version, State: state,
		Contact: ChangeContact{ID: c.ID, Emails: nonNil(c.Emails), Phones: nonNil(c.Phones),
			ExternalIDs: nonNil(c.ExternalIDs), Jurisdiction: c.Jurisdiction, Locale: c.Locale}}}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
