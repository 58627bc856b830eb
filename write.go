package prefsync

import (
	"fmt"
	"strings"
	"time"
)

// WriteTx is a store's write transaction, as the writes below need it. The store keeps
// the rows; these functions decide what goes in them, so that every store writes the
// same way.
type WriteTx interface {
	// FindByIdentifiers returns the id of the one contact the identifiers find, "" if
	// none; identifiers of two contacts are ECONFLICT.
	FindByIdentifiers(ids []Identifier) (string, error)
	// LoadContact reads a live contact by id, following merges, and holds it for the
	// rest of the transaction where the store needs that.
	LoadContact(id string) (*Contact, error)
	// NewContactID returns the id of a contact created at now.
	NewContactID(now time.Time) string
	// AddIdentifier records that ident names c, for the rest of the transaction too; it
	// leaves c as it is. The caller adds ident to c and saves c before the transaction
	// ends (a store may keep a contact's identifiers with it).
	AddIdentifier(c *Contact, ident Identifier) error
	// SaveContacts writes contacts' attributes, identifiers, version and state; a
	// contact created in the transaction is inserted.
	SaveContacts(cs []*Contact) error
	// MarkMerged moves from's identifiers to into and marks from merged into it; from
	// is as LoadContact returned it. The caller adds them to into and saves into.
	MarkMerged(from, into *Contact, now time.Time) error
	// SeenIdempotencyKey returns the audit entry and contact of the first event with ev's
	// idempotency key, or 0 and "".
	SeenIdempotencyKey(ev *Event) (int64, string, error)
	// NextSeq is the sequence number the next audit entry gets.
	NextSeq() int64
	// AppendAudit chains r after the head, with its personal data p (nil for none) stored
	// apart, and returns its sequence number.
	AppendAudit(r *ChainRecord, p *Personal) (int64, error)
	// Destinations returns the destinations, as of this point in the transaction.
	Destinations() ([]*Destination, error)
	// QueueChange records the change audit entry seq made to contact c, with its body,
	// and a pending delivery of it to each destination named in to.
	QueueChange(seq int64, c *Contact, body []byte, to []string) error
}

// ApplyEvents resolves and records events in order in tx: each is applied by the rules
// (ContactState.Apply), audited with its status, and fanned out when it changed
// something. cache, not nil, holds the contacts tx has read, by id (a store may read a
// batch's contacts ahead into it). It returns a result per event and the contacts that
// changed, saved.
func ApplyEvents(tx WriteTx, events []Event, cache map[string]*Contact, now time.Time, window time.Duration) ([]EventResult, []*Contact, error) {
	dirty := map[string]bool{}
	var order []*Contact
	touch := func(c *Contact) {
		if !dirty[c.ID] {
			dirty[c.ID] = true
			order = append(order, c)
		}
	}
	results := make([]EventResult, len(events))
	for i := range events {
		ev := &events[i]
		// A repeat is recorded on the contact of the first, and changes nothing: not even
		// the identifiers its subject names.
		first, firstContact, err := tx.SeenIdempotencyKey(ev)
		if err != nil {
			return nil, nil, err
		}
		var c *Contact
		var attached bool
		if first != 0 {
			c, _, err = contactFor(tx, firstContact, nil, cache, now)
		} else {
			c, attached, err = contactFor(tx, ev.Subject.ContactID, ev.Subject.Identifiers(), cache, now)
		}
		if err != nil {
			return nil, nil, WithFieldPrefix(err, fmt.Sprintf("events[%d].subject", i))
		}
		if attached {
			touch(c)
		}
		status, reason := Duplicate, fmt.Sprintf("%s: first recorded as entry %d", ReasonDuplicateIdempotency, first)
		if first == 0 {
			status, reason = c.State.Apply(ev, tx.NextSeq(), window)
		}
		if status == Applied {
			c.Version++
			c.UpdatedAt = now
			touch(c)
		}
		r := NewChainRecord(ev, c.ID, status, reason, c.Version)
		seq, err := tx.AppendAudit(&r, PersonalOf(ev))
		if err != nil {
			return nil, nil, err
		}
		if status == Applied {
			if err := fanOut(tx, seq, c, ev.Scope, ev.Source.System, func() ([]byte, error) { return NewChange(ev, c, seq) }); err != nil {
				return nil, nil, err
			}
		}
		results[i] = EventResult{Status: status, Reason: reason, ContactID: c.ID, Version: c.Version, Seq: seq}
	}
	if err := tx.SaveContacts(order); err != nil {
		return nil, nil, err
	}
	return results, order, nil
}

// contactFor finds the contact contactID or the identifiers name, creating it when none
// does, and attaches the identifiers it lacks. It reports whether it attached any; a
// contact it reports must be saved before the transaction ends.
func contactFor(tx WriteTx, contactID string, ids []Identifier, cache map[string]*Contact, now time.Time) (*Contact, bool, error) {
	id := contactID
	other, err := tx.FindByIdentifiers(ids)
	switch {
	case err != nil:
		return nil, false, err
	case id == "":
		id = other
	}
	if id == "" {
		if len(ids) == 0 {
			return nil, false, Errorf(ENOTFOUND, "no such contact")
		}
		c := &Contact{ID: tx.NewContactID(now), CreatedAt: now, UpdatedAt: now}
		cache[c.ID] = c
		return c, true, attach(tx, c, ids)
	}
	c, err := cachedContact(tx, id, cache)
	if err != nil {
		return nil, false, err
	}
	// id may be a contact merged into the one the identifiers find: that is one contact.
	if other != "" && other != c.ID {
		return nil, false, &Error{Code: ECONFLICT, Field: "contact_id",
			Message: fmt.Sprintf("the identifiers belong to contact %s, not %s", other, id)}
	}
	var missing []Identifier
	for _, ident := range ids {
		if !c.HasIdentifier(ident) {
			missing = append(missing, ident)
		}
	}
	return c, len(missing) > 0, attach(tx, c, missing)
}

// FindOneContact returns the id of the one contact that find finds for the identifiers,
// "" if none; identifiers of two contacts are ECONFLICT. find answers "" for an
// identifier that finds no contact.
func FindOneContact(ids []Identifier, find func(Identifier) (string, error)) (string, error) {
	found := ""
	for _, id := range ids {
		cid, err := find(id)
		switch {
		case err != nil:
			return "", fmt.Errorf("find %s: %w", id.Kind, err)
		case cid == "":
			continue
		case found != "" && cid != found:
			return "", &Error{Code: ECONFLICT, Field: id.Kind,
				Message: fmt.Sprintf("the identifiers belong to two contacts (%s and %s); merge them first", found, cid)}
		}
		found = cid
	}
	return found, nil
}

// cachedContact returns the live contact id names, from cache or read into it.
func cachedContact(tx WriteTx, id string, cache map[string]*Contact) (*Contact, error) {
	if c, ok := cache[id]; ok {
		return c, nil
	}
	c, err := tx.LoadContact(id)
	if err != nil {
		return nil, err
	}
	// id may be a contact merged into c: the batch must share c's one copy.
	if cached, ok := cache[c.ID]; ok {
		c = cached
	}
	cache[id], cache[c.ID] = c, c
	return c, nil
}

func attach(tx WriteTx, c *Contact, ids []Identifier) error {
	for _, ident := range ids {
		if err := tx.AddIdentifier(c, ident); err != nil {
			return fmt.Errorf("add identifier: %w", err)
		}
		c.AddIdentifier(ident)
	}
	return nil
}

// UpsertContact creates the contact in's identifiers name, or attaches them and sets its
// attributes. Anything that changes moves the version (decisions and destinations depend
// on it) and is audited, saying what moved it.
func UpsertContact(tx WriteTx, in ContactInput, now time.Time) (*Contact, error) {
	c, attached, err := contactFor(tx, "", in.Identifiers(), map[string]*Contact{}, now)
	if err != nil {
		return nil, err
	}
	var changes []string
	if attached {
		changes = append(changes, "identifiers")
	}
	if in.Jurisdiction != nil && *in.Jurisdiction != c.Jurisdiction {
		c.Jurisdiction = *in.Jurisdiction
		changes = append(changes, "jurisdiction "+quoteEmpty(c.Jurisdiction))
	}
	if in.Locale != nil && *in.Locale != c.Locale {
		c.Locale = *in.Locale
		changes = append(changes, "locale "+quoteEmpty(c.Locale))
	}
	if len(changes) == 0 {
		return c, nil
	}
	c.Version++
	c.UpdatedAt = now
	if err := tx.SaveContacts([]*Contact{c}); err != nil {
		return nil, err
	}
	r := ChainRecord{Kind: KindContact, ContactID: c.ID, Status: Applied,
		StatusReason: "set " + strings.Join(changes, ", "), OccurredAt: now, ReceivedAt: now,
		Source: Source{System: in.Source.System, Touchpoint: in.Source.Touchpoint}, Version: c.Version}
	var ext *ExternalID
	if len(in.ExternalIDs) > 0 {
		ext = &in.ExternalIDs[0]
	}
	p := &Personal{Subject: Subject{Email: in.Email, Phone: in.Phone, ExternalID: ext}, Actor: in.Source.Actor}
	if _, err := tx.AppendAudit(&r, p); err != nil {
		return nil, err
	}
	return c, nil
}

// fanOut queues a change to scope of contact c, reported by system and recorded as audit
// entry seq, for each destination that wants it. change builds the body: once, and only
// if some destination wants it.
func fanOut(tx WriteTx, seq int64, c *Contact, scope Scope, system string, change func() ([]byte, error)) error {
	dests, err := tx.Destinations()
	if err != nil {
		return err
	}
	var to []string
	for _, d := range dests {
		if d.Wants(scope, system) {
			to = append(to, d.Name)
		}
	}
	if len(to) == 0 {
		return nil
	}
	body, err := change()
	if err != nil {
		return err
	}
	return tx.QueueChange(seq, c, body, to)
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// MergeContacts folds contact from into contact into: identifiers move, the state is the
// most restrictive of both, the merge is audited on both, and destinations learn of it
// as a change of every scope (the old id now finds the survivor, whose state may be more
// restrictive than either was).
func MergeContacts(tx WriteTx, into, from string, src Source, now time.Time) (*Contact, error) {
	a, err := tx.LoadContact(into)
	if err != nil {
		return nil, err
	}
	b, err := tx.LoadContact(from)
	if err != nil {
		return nil, WithFieldPrefix(err, "contact_id")
	}
	if a.ID == b.ID {
		return nil, FieldErrorf("contact_id", "the contacts are already one")
	}
	a.State = Merge(a.State, b.State)
	if a.Jurisdiction == "" {
		a.Jurisdiction = b.Jurisdiction
	}
	if a.Locale == "" {
		a.Locale = b.Locale
	}
	a.Version = max(a.Version, b.Version) + 1
	a.UpdatedAt = now
	if err := tx.MarkMerged(b, a, now); err != nil {
		return nil, err
	}
	for _, id := range b.Identifiers() {
		a.AddIdentifier(id)
	}
	if err := tx.SaveContacts([]*Contact{a}); err != nil {
		return nil, err
	}
	var seq int64
	for _, c := range []*Contact{b, a} {
		r := ChainRecord{Kind: KindMerge, ContactID: c.ID, Status: Applied,
			StatusReason: "merged " + b.ID + " into " + a.ID, OccurredAt: now, ReceivedAt: now, Source: src, Version: a.Version}
		if seq, err = tx.AppendAudit(&r, nil); err != nil {
			return nil, err
		}
	}
	err = fanOut(tx, seq, a, Scope{Channel: Any, Topic: Any}, src.System,
		func() ([]byte, error) { return NewMergeChange(a, b.ID, seq, now) })
	return a, err
}

// SuppressionTx is a write transaction of a store that also keeps suppressions.
type SuppressionTx interface {
	WriteTx
	// Suppression reads the suppression of an address, lifted or not; nil for none. It
	// stays as read until the transaction ends.
	Suppression(kind, address string) (*Suppression, error)
	// SaveSuppression writes s as its address's suppression, and returns its creation
	// time as the store keeps it.
	SaveSuppression(s Suppression) (time.Time, error)
}

// AddSuppression records in tx that in's address must not be messaged, again if its
// suppression was lifted, and audits the report on the address's contact, which it
// returns (nil for none), with the suppression as it now stands. A suppression in
// force keeps its creation time; an erased contact's keeps its reason and source, and
// so does a repeat of the same reason.
func AddSuppression(tx SuppressionTx, in Suppression, now time.Time) (Suppression, *Contact, error) {
	before, err := tx.Suppression(in.Kind, in.Address)
	if err != nil {
		return Suppression{}, nil, err
	}
	after := Suppression{Kind: in.Kind, Address: in.Address, Reason: in.Reason, Source: in.Source, CreatedAt: in.CreatedAt}
	status, statusReason := Applied, "suppressed: "+in.Reason
	if before != nil && before.LiftedAt == nil {
		after.CreatedAt = before.CreatedAt
		switch before.Reason {
		case SuppressedErased, in.Reason:
			after.Reason, after.Source = before.Reason, before.Source
			status, statusReason = Duplicate, "already suppressed: "+before.Reason
		default:
			statusReason += ", was " + before.Reason
		}
	}
	if after.CreatedAt, err = tx.SaveSuppression(after); err != nil {
		return Suppression{}, nil, err
	}
	r := ChainRecord{Kind: KindSuppression, Status: status, StatusReason: statusReason, Reason: in.Reason,
		OccurredAt: in.CreatedAt, ReceivedAt: now, Source: Source{System: in.Source, Touchpoint: in.Touchpoint}}
	c, err := auditSuppression(tx, after, &r)
	return after, c, err
}

// LiftSuppression ends in tx the suppression of an address, keeping its record with who
// lifted it and when, and audits the lift on the address's contact, which it returns
// (nil for none); what LiftSuppressionAllowed refuses, refused. Lifts come through the
// API.
func LiftSuppression(tx SuppressionTx, kind, address, by string, at, now time.Time) (Suppression, *Contact, error) {
	before, err := tx.Suppression(kind, address)
	if err != nil {
		return Suppression{}, nil, err
	}
	if err := LiftSuppressionAllowed(address, before); err != nil {
		return Suppression{}, nil, err
	}
	s := *before
	s.LiftedAt, s.LiftedBy = &at, by
	if _, err := tx.SaveSuppression(s); err != nil {
		return Suppression{}, nil, err
	}
	r := ChainRecord{Kind: KindSuppression, Status: Applied,
		StatusReason: fmt.Sprintf("suppression lifted: %s since %s", s.Reason, s.CreatedAt.UTC().Format(time.RFC3339)),
		OccurredAt:   at, ReceivedAt: now, Source: Source{System: by, Touchpoint: API}}
	c, err := auditSuppression(tx, s, &r)
	return s, c, err
}

// auditSuppression appends r on the contact with s's address, if any; the address goes
// with the entry's personal data.
func auditSuppression(tx WriteTx, s Suppression, r *ChainRecord) (*Contact, error) {
	id, err := tx.FindByIdentifiers([]Identifier{{Kind: s.Kind, Value: s.Address}})
	if err != nil || id == "" {
		return nil, err
	}
	c, err := tx.LoadContact(id)
	if err != nil {
		return nil, err
	}
	r.ContactID, r.Version = c.ID, c.Version
	p := &Personal{Subject: Subject{Email: s.Address}}
	if s.Kind == IdentifierPhone {
		p.Subject = Subject{Phone: s.Address}
	}
	_, err = tx.AppendAudit(r, p)
	return c, err
}
