package prefsync

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"
)

// Audit entry kinds.
const (
	KindEvent = "event"
	KindMerge = "merge"
	// KindContact records a change to a contact's attributes or identifiers.
	KindContact = "contact"
)

// ChainRecord is the content of an audit entry that the tamper-evident chain commits to.
// It holds no personal data: the subject as given, IP, user agent, actor and proof are
// kept apart and committed to only through PersonalDigest, a salted hash, so erasing
// them (and the salt) leaves the chain intact.
type ChainRecord struct {
	Seq            int64      `json:"seq"`
	Kind           string     `json:"kind"`
	ContactID      string     `json:"contact_id"`
	Status         Status     `json:"status"`
	StatusReason   string     `json:"status_reason,omitempty"`
	Reason         string     `json:"reason,omitempty"`
	Channel        string     `json:"channel,omitempty"`
	Topic          string     `json:"topic,omitempty"`
	State          State      `json:"state,omitempty"`
	PausedUntil    *time.Time `json:"paused_until,omitempty"`
	OccurredAt     time.Time  `json:"occurred_at"`
	ReceivedAt     time.Time  `json:"received_at"`
	Source         Source     `json:"source"`
	Method         Method     `json:"method,omitempty"`
	IdempotencyKey string     `json:"idempotency_key,omitempty"`
	Version        int64      `json:"version"`
	PersonalDigest []byte     `json:"personal_digest,omitempty"`
}

// Personal is the personal data of an audit entry, kept outside the chain.
type Personal struct {
	Subject   Subject         `json:"subject"`
	IP        string          `json:"ip,omitempty"`
	UserAgent string          `json:"user_agent,omitempty"`
	Actor     string          `json:"actor,omitempty"`
	Proof     json.RawMessage `json:"proof,omitempty"`
}

// PersonalOf is the personal data an event carries.
func PersonalOf(ev *Event) *Personal {
	return &Personal{Subject: ev.Subject, IP: ev.Evidence.IP, UserAgent: ev.Evidence.UserAgent,
		Actor: ev.Source.Actor, Proof: ev.Evidence.Proof}
}

// PersonalDigest is the salted hash of stored personal data that the chain commits to.
func PersonalDigest(salt, data []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(data)
	return h.Sum(nil)
}

// ChainHash links an entry's body to the hash of the entry before it.
func ChainHash(prev, body []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(body)
	return h.Sum(nil)
}

// NewChainRecord is the record of an event that was resolved with status and reason.
func NewChainRecord(ev *Event, contactID string, status Status, statusReason string, version int64) ChainRecord {
	r := ChainRecord{
		Kind: KindEvent, ContactID: contactID, Status: status, StatusReason: statusReason, Reason: ev.Reason,
		Channel: ev.Scope.Channel, Topic: ev.Scope.Topic, State: ev.State,
		OccurredAt: ev.OccurredAt.UTC(), ReceivedAt: ev.ReceivedAt.UTC(),
		Source: Source{System: ev.Source.System, Touchpoint: ev.Source.Touchpoint},
		Method: ev.Evidence.Method, IdempotencyKey: ev.IdempotencyKey, Version: version,
	}
	if ev.IsPause() {
		t := ev.PausedUntil
		r.PausedUntil = &t
	}
	return r
}

// Entry turns a record and its personal data (nil once erased) into an audit entry.
func (r *ChainRecord) Entry(p *Personal) AuditEntry {
	e := AuditEntry{
		Seq: r.Seq, Kind: r.Kind, ContactID: r.ContactID, Status: r.Status, StatusReason: r.StatusReason, Reason: r.Reason,
		Channel: r.Channel, Topic: r.Topic, State: r.State, PausedUntil: r.PausedUntil,
		OccurredAt: r.OccurredAt, ReceivedAt: r.ReceivedAt, Source: r.Source,
		Evidence:       Evidence{Method: r.Method},
		IdempotencyKey: r.IdempotencyKey, Version: r.Version,
	}
	if p != nil {
		e.Evidence.IP, e.Evidence.UserAgent, e.Evidence.Proof, e.Source.Actor = p.IP, p.UserAgent, p.Proof, p.Actor
		if !p.Subject.IsZero() {
			s := p.Subject
			e.Subject = &s
		}
	}
	return e
}

// VerifyLink checks one stored entry against the hash of the one before it, and returns
// its own hash. personal (the stored personal data) is nil once erased.
func VerifyLink(prev []byte, seq int64, body, hash, salt, personal []byte) ([]byte, error) {
	if want := ChainHash(prev, body); !bytes.Equal(want, hash) {
		return nil, fmt.Errorf("hash does not match the entry's content and the previous hash")
	}
	var r ChainRecord
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("body is not a record: %v", err)
	}
	if r.Seq != seq {
		return nil, fmt.Errorf("body says seq %d", r.Seq)
	}
	if personal != nil && !bytes.Equal(PersonalDigest(salt, personal), r.PersonalDigest) {
		return nil, fmt.Errorf("personal data does not match its digest")
	}
	return hash, nil
}
