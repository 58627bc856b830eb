package prefsync

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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
	// KindSuppression records that an address of the contact was reported for
	// suppression, or that its suppression was lifted.
	KindSuppression = "suppression"
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

// StoredIdempotencyKey is the form stores keep an idempotency key in: the client's key
// scoped to its source system; nil when the event has none.
func StoredIdempotencyKey(system, key string) *string {
	if key == "" {
		return nil
	}
	k := system + "\x1f" + key
	return &k
}

// AuditRow is an audit entry as a store keeps it: the chained body and its hash, the
// columns queries use beside them, and the personal data apart.
type AuditRow struct {
	Seq            int64
	ContactID      string
	Status         string
	IdempotencyKey *string // nil when the entry has none
	Body, Hash     []byte
	Salt, Personal []byte // Personal is nil once erased
	// Linked is set where the store links each entry to its contact's entry before it,
	// PrevSeq (0 for none), to read a contact's history by.
	Linked  bool
	PrevSeq int64
}

// AuditVerifier checks an audit trail row by row, oldest first.
type AuditVerifier struct {
	rep  AuditReport
	prev []byte
	// last is each contact's latest entry so far, where the store links them: one entry
	// per contact, tens of MB for a million.
	last map[string]int64
}

// Check checks the next row, and reports whether the trail is whole so far; once it is
// not, Report says where and why.
func (v *AuditVerifier) Check(row AuditRow) bool {
	if want := v.rep.Entries + 1; row.Seq != want {
		v.rep.BadSeq, v.rep.Problem = want, fmt.Sprintf("entry %d is missing", want)
		return false
	}
	next, err := VerifyLink(v.prev, row.Seq, row.Body, row.Hash, row.Salt, row.Personal)
	if err == nil {
		// The columns that queries use must say what the chained content says.
		var r ChainRecord
		json.Unmarshal(row.Body, &r)
		k := StoredIdempotencyKey(r.Source.System, r.IdempotencyKey)
		if r.ContactID != row.ContactID || string(r.Status) != row.Status ||
			(k == nil) != (row.IdempotencyKey == nil) || k != nil && *k != *row.IdempotencyKey {
			err = fmt.Errorf("the row's contact, status or idempotency key differs from the chained content")
		}
	}
	if err == nil && row.Linked {
		if v.last == nil {
			v.last = map[string]int64{}
		}
		if want := v.last[row.ContactID]; row.PrevSeq != want {
			err = fmt.Errorf("the row links to entry %d as its contact's previous, not %d", row.PrevSeq, want)
		}
		v.last[row.ContactID] = row.Seq
	}
	if err != nil {
		v.rep.BadSeq, v.rep.Problem = row.Seq, err.Error()
		return false
	}
	v.prev = next
	v.rep.Entries++
	return true
}

// CheckLatest checks, once every row is checked, a store's link from a contact to its
// latest entry (0 for none), and reports whether the trail is whole so far.
func (v *AuditVerifier) CheckLatest(contactID string, seq int64) bool {
	if want := v.last[contactID]; seq != want {
		v.rep.BadSeq = max(want, seq)
		v.rep.Problem = fmt.Sprintf("contact %s links to entry %d as its latest, not %d", contactID, seq, want)
		return false
	}
	return true
}

// Report returns what the rows checked so far show.
func (v *AuditVerifier) Report() AuditReport {
	rep := v.rep
	if rep.Problem == "" {
		rep.OK, rep.Head = true, hex.EncodeToString(v.prev)
	}
	return rep
}
