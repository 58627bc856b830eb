package prefsync

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Hub is prefsync's service: it validates what clients send, records it in the store,
// and keeps the check index in step with every write it acknowledges.
type Hub struct {
	Store      Store
	Index      *Index
	Dict       *Dictionary
	Normalizer Normalizer
	Now        func() time.Time
	// Random generates destination secrets; nil is crypto/rand.
	Random io.Reader
	// Dispatcher, when set, is told of new deliveries and changed destinations.
	Dispatcher Dispatcher
	// Links signs and verifies links; Load sets it from the store's keys.
	Links *LinkSigner

	// suppressions serialises changes to suppressions, and merges, from their store
	// write to the index's, so that the index ends as the store does: a lift marks the
	// contact again by its other addresses as it read them, which a merge between could
	// have added to.
	suppressions sync.Mutex
}

// MaxBatch is the most events one call may carry.
const MaxBatch = 5000

// Load rebuilds the index from the store. Suppressions come first, so that putting a
// contact marks it by exactly the addresses suppressed now: a reload forgets those
// lifted since, too.
func (h *Hub) Load(ctx context.Context) error {
	if err := h.loadSuppressions(ctx); err != nil {
		return err
	}
	n, err := h.Store.CountContacts(ctx)
	if err != nil {
		return fmt.Errorf("count contacts: %w", err)
	}
	h.Index.Reserve(n + n/8) // room for growth before the first resize
	if err := h.Store.EachContact(ctx, func(c *Contact) error {
		h.Index.Put(c)
		return nil
	}); err != nil {
		return fmt.Errorf("load contacts: %w", err)
	}
	merged, err := h.Store.MergedContacts(ctx)
	if err != nil {
		return fmt.Errorf("load merged contacts: %w", err)
	}
	for from, into := range merged {
		h.Index.Alias(from, into)
	}
	keys, err := h.Store.LinkKeys(ctx, NewLinkKey(1, h.random()))
	if err != nil {
		return fmt.Errorf("load link keys: %w", err)
	}
	h.Links = &LinkSigner{Keys: keys}
	return nil
}

// loadSuppressions gives the index the suppressions in force, as one set, while no
// suppression of this process's is being written, which would be lost between reading
// the set and setting it.
func (h *Hub) loadSuppressions(ctx context.Context) error {
	h.suppressions.Lock()
	defer h.suppressions.Unlock()
	sups, err := h.Store.Suppressions(ctx)
	if err != nil {
		return fmt.Errorf("load suppressions: %w", err)
	}
	h.Index.SetSuppressions(sups)
	return nil
}

// Ingest validates a batch of events, all before any is written, and applies them.
// defaultSystem names the source of events that name none (the API key's name). The
// index reflects the results before Ingest returns.
func (h *Hub) Ingest(ctx context.Context, in []EventInput, defaultSystem string) ([]EventResult, error) {
	if len(in) == 0 {
		return nil, FieldErrorf("events", "no events given")
	}
	if len(in) > MaxBatch {
		return nil, FieldErrorf("events", "a batch holds at most %d events", MaxBatch)
	}
	now := h.Now().UTC()
	events := make([]Event, len(in))
	for i, e := range in {
		if e.Source.System == "" {
			e.Source.System = defaultSystem
		}
		ev, err := e.Validate(h.Dict, h.Normalizer, now)
		if err != nil {
			return nil, WithFieldPrefix(err, fmt.Sprintf("events[%d]", i))
		}
		events[i] = ev
	}
	results, changed, err := h.Store.ApplyEvents(ctx, events)
	if err != nil {
		return nil, err
	}
	for _, c := range changed {
		h.Index.Put(c)
	}
	if h.Dispatcher != nil && len(changed) > 0 {
		h.Dispatcher.DeliveriesAdded()
	}
	return results, nil
}

// Follow applies to the index what other processes sharing the store committed:
// contacts as they now are, merges (old id to survivor) and suppressions.
func (h *Hub) Follow(contacts []*Contact, merged map[string]string, sups []Suppression) {
	byID := map[string]*Contact{}
	for _, c := range contacts {
		byID[c.ID] = c
	}
	for from, into := range merged {
		if winner, ok := byID[into]; ok {
			h.Index.Merge(&Contact{ID: from}, winner)
		} else {
			h.Index.Alias(from, into)
		}
	}
	// Suppressions first: putting a contact marks it by its addresses suppressed now.
	for _, s := range sups {
		if s.LiftedAt == nil {
			h.Index.Suppress(s)
			continue
		}
		var owner *Contact
		for _, c := range contacts {
			if slices.Contains(c.Emails, s.Address) || slices.Contains(c.Phones, s.Address) {
				owner = c
			}
		}
		h.Index.Lift(s, owner)
	}
	for _, c := range contacts {
		h.Index.Put(c)
	}
}

// UpsertContact creates or updates a contact.
func (h *Hub) UpsertContact(ctx context.Context, in ContactInput) (*Contact, error) {
	in, err := NormalizeContactInput(h.Normalizer, in)
	if err != nil {
		return nil, err
	}
	c, err := h.Store.UpsertContact(ctx, in)
	if err != nil {
		return nil, err
	}
	h.Index.Put(c)
	return c, nil
}

// FindContact finds a contact by a subject's identifier, normalising it first.
func (h *Hub) FindContact(ctx context.Context, s Subject) (*Contact, error) {
	s, err := NormalizeSubject(h.Normalizer, s)
	if err != nil {
		return nil, err
	}
	var f ContactFilter
	switch {
	case s.ContactID != "":
		f.ID = &s.ContactID
	case s.Email != "":
		f.Email = &s.Email
	case s.Phone != "":
		f.Phone = &s.Phone
	default:
		f.ExternalID = s.ExternalID
	}
	return h.Store.FindContact(ctx, f)
}

// Merge folds contact from into contact into.
func (h *Hub) Merge(ctx context.Context, into, from string, src Source) (*Contact, error) {
	if into == from {
		return nil, FieldErrorf("contact_id", "a contact cannot be merged into itself")
	}
	h.suppressions.Lock()
	defer h.suppressions.Unlock()
	old, err := h.Store.FindContact(ctx, ContactFilter{ID: &from})
	if err != nil {
		return nil, WithFieldPrefix(err, "contact_id")
	}
	c, err := h.Store.MergeContacts(ctx, into, old.ID, src, h.Now().UTC())
	if err != nil {
		return nil, err
	}
	h.Index.Merge(old, c)
	return c, nil
}

// Suppress records a suppressed address, audited on its contact if it has one.
func (h *Hub) Suppress(ctx context.Context, s Suppression) (Suppression, error) {
	if err := ValidateSuppressionReason(s.Reason); err != nil {
		return s, err
	}
	var err error
	if s.Kind, s.Address, err = h.suppressible(s.Address); err != nil {
		return s, err
	}
	s.CreatedAt = h.Now().UTC()
	h.suppressions.Lock()
	defer h.suppressions.Unlock()
	s, c, err := h.Store.AddSuppression(ctx, s)
	if err != nil {
		return s, err
	}
	h.Index.Suppress(s)
	if c != nil { // as the store read it, under its lock: as new as the index's, or newer
		h.Index.Put(c)
	}
	return s, nil
}

// LiftSuppression ends the suppression of an address, recording who lifted it, audited
// on the address's contact if it has one. That contact, as the lift read it, is marked
// again by its other suppressed addresses.
func (h *Hub) LiftSuppression(ctx context.Context, address, by string) (Suppression, error) {
	kind, address, err := h.suppressible(address)
	if err != nil {
		return Suppression{}, err
	}
	h.suppressions.Lock()
	defer h.suppressions.Unlock()
	s, c, err := h.Store.LiftSuppression(ctx, kind, address, by, h.Now().UTC())
	if err != nil {
		return s, err
	}
	h.Index.Lift(s, c)
	return s, nil
}

// suppressible normalises an address that can be suppressed: an email address or a
// phone number.
func (h *Hub) suppressible(address string) (kind, normalized string, err error) {
	if e, err := h.Normalizer.Email(address); err == nil {
		return IdentifierEmail, e, nil
	}
	if p, err := h.Normalizer.Phone(address); err == nil {
		return IdentifierPhone, p, nil
	}
	return "", "", FieldErrorf("address", "%q is neither an email address nor a phone number", address)
}

// Check decides one recipient, normalising it as events are: an address finds the
// contact whatever form it is given in.
func (h *Hub) Check(q *Query, s *Subject, now int64) (Decision, error) {
	n, err := NormalizeSubject(h.Normalizer, *s)
	if err != nil {
		return Decision{}, err
	}
	return h.Index.Check(q, &n, now), nil
}
