package prefsync

import (
	"slices"
	"sync"
)

// Index answers checks from memory. It holds every contact's facts, keyed by each of its
// identifiers, and the suppressed addresses. Updates carry the contact's version and an
// older version never overwrites a newer one, so concurrent writers cannot move it back.
type Index struct {
	dict *Dictionary

	mu         sync.RWMutex
	entries    []entry
	more       map[uint32][]Fact // facts of entries with more than fit inline
	free       []uint32
	byID       *table            // contact number -> slot
	byEmail    *table            // normalised address -> slot
	byPhone    *table            // E.164 number -> slot
	byExternal *table            // ExternalValue -> slot
	suppressed map[string]uint8  // address -> reason code
	aliases    map[uint64]uint64 // merged contact -> the contact it was merged into
	unknown    uint8             // policy of a recipient prefsync does not know
}

// entry is one contact's facts, stored inline when there are few of them (most contacts
// have two or three), so that a million contacts need no million small allocations.
type entry struct {
	version int64
	inline  [3]Fact
	n       uint8 // overflowed when more than the inline room: see Index.more
	policy  uint8
}

const overflowed = 255

// newEntry stores f in an entry of slot, keeping facts that do not fit inline aside.
func (x *Index) newEntry(slot uint32, f Facts) entry {
	e := entry{version: f.Version, policy: f.Policy}
	if len(f.Facts) <= len(e.inline) {
		e.n = uint8(copy(e.inline[:], f.Facts))
		delete(x.more, slot)
	} else {
		e.n = overflowed
		x.more[slot] = append([]Fact(nil), f.Facts...)
	}
	return e
}

// facts returns an entry's facts; the slice may point into e.
func (x *Index) facts(slot uint32, e *entry) Facts {
	if e.n == overflowed {
		return Facts{Version: e.version, Facts: x.more[slot], Policy: e.policy}
	}
	return Facts{Version: e.version, Facts: e.inline[:e.n], Policy: e.policy}
}

// Reserve makes room for n contacts, so that loading a known number of them does not
// over-allocate while growing.
func (x *Index) Reserve(n int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byID.len() > 0 || n <= 0 {
		return
	}
	x.entries = make([]entry, 0, n)
	x.byID = newTable(false, n)
	x.byEmail = newTable(true, n)
}

// NewIndex returns an empty index deciding with dict.
func NewIndex(dict *Dictionary) *Index {
	return &Index{
		dict:       dict,
		more:       map[uint32][]Fact{},
		byID:       newTable(false, 0),
		byEmail:    newTable(true, 0),
		byPhone:    newTable(true, 0),
		byExternal: newTable(true, 0),
		suppressed: map[string]uint8{},
		aliases:    map[uint64]uint64{},
		unknown:    dict.PolicyID(""),
	}
}

// Len returns the number of contacts in the index.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.byID.len()
}

// Put records a contact's state, unless the index already has a newer version, or the
// contact was merged into another.
func (x *Index) Put(c *Contact) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.put(c)
}

func (x *Index) put(c *Contact) {
	num, ok := ContactNumber(c.ID)
	if !ok || x.aliases[num] != 0 {
		return
	}
	slot, exists := x.byID.get(num)
	if exists && x.entries[slot].version > c.Version {
		return
	}
	var buf [8]Fact
	f := Facts{Version: c.Version, Policy: x.dict.PolicyID(c.Jurisdiction), Facts: x.dict.appendFacts(buf[:0], &c.State)}
	f.Facts = x.appendSuppressions(f.Facts, c)
	if !exists {
		if n := len(x.free); n > 0 {
			slot, x.free = x.free[n-1], x.free[:n-1]
		} else {
			slot = uint32(len(x.entries))
			x.entries = append(x.entries, entry{})
		}
		x.byID.put(num, slot)
	}
	x.entries[slot] = x.newEntry(slot, f)
	for _, e := range c.Emails {
		x.byEmail.putString(e, slot)
	}
	for _, p := range c.Phones {
		x.byPhone.putString(p, slot)
	}
	for _, e := range c.ExternalIDs {
		x.byExternal.putString(ExternalValue(e), slot)
	}
}

// Merge records, in one step, that loser was folded into winner: checks never see the
// loser's identifiers unmapped, its id finds the winner, and a late write of the loser
// cannot bring it back.
func (x *Index) Merge(loser, winner *Contact) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if num, ok := ContactNumber(loser.ID); ok {
		if slot, ok := x.byID.get(num); ok {
			x.byID.remove(num)
			x.entries[slot] = x.newEntry(slot, Facts{})
			x.free = append(x.free, slot)
		}
	}
	x.alias(loser.ID, winner.ID)
	x.put(winner)
}

// Alias makes the id of a contact merged into another find the other.
func (x *Index) Alias(merged, into string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.alias(merged, into)
}

func (x *Index) alias(merged, into string) {
	from, ok1 := ContactNumber(merged)
	to, ok2 := ContactNumber(into)
	if ok1 && ok2 {
		x.aliases[from] = to
	}
}

// slotOf finds a contact's slot by number, following merges.
func (x *Index) slotOf(num uint64) (uint32, bool) {
	for range 8 {
		if slot, ok := x.byID.get(num); ok {
			return slot, true
		}
		if num = x.aliases[num]; num == 0 {
			break
		}
	}
	return 0, false
}

func (x *Index) identifierTable(kind string) *table {
	switch kind {
	case IdentifierEmail:
		return x.byEmail
	case IdentifierPhone:
		return x.byPhone
	case IdentifierExternal:
		return x.byExternal
	}
	return nil
}

// appendSuppressions adds a fact for each suppressed address of the contact, on the
// channels that address reaches.
func (x *Index) appendSuppressions(fs []Fact, c *Contact) []Fact {
	fs = x.appendSuppressed(fs, IdentifierEmail, c.Emails)
	return x.appendSuppressed(fs, IdentifierPhone, c.Phones)
}

// appendSuppressed adds a fact for each of the addresses of kind that is suppressed.
func (x *Index) appendSuppressed(fs []Fact, kind string, addresses []string) []Fact {
	if len(x.suppressed) == 0 {
		return fs
	}
	for _, a := range addresses {
		if code := x.suppressed[a]; code != 0 {
			fs = x.dict.appendSuppressionFacts(fs, kind, code)
		}
	}
	return fs
}

// SetSuppressions makes sups, the suppressions in force, the whole set of addresses the
// index holds suppressed. It marks no contact: contacts are marked as they are put, so a
// load sets the suppressions first.
func (x *Index) SetSuppressions(sups []Suppression) {
	m := make(map[string]uint8, len(sups))
	for _, s := range sups {
		if s.LiftedAt == nil {
			m[s.Address] = suppressionCode(s.Reason)
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.suppressed = m
}

// Suppress records a suppressed address and marks the contact that has it; or, for a
// lifted suppression, forgets the address and unmarks the contact on the channels it
// reaches, which Lift then marks again by the contact's other addresses.
func (x *Index) Suppress(s Suppression) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.suppress(s)
}

// Lift forgets a lifted suppression and, in the same step, marks the contact that has
// the address again by c's other addresses of its kind that are suppressed (c is that
// contact as the lift read it, nil for none): whatever version of the contact the
// index holds, no check sees them unsuppressed between.
func (x *Index) Lift(s Suppression, c *Contact) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.suppress(s)
	m := x.identifierTable(s.Kind)
	if c == nil || m == nil {
		return
	}
	slot, ok := m.getString(s.Address)
	if !ok {
		return
	}
	addresses := c.Emails
	if s.Kind == IdentifierPhone {
		addresses = c.Phones
	}
	f := x.facts(slot, &x.entries[slot])
	f.Facts = x.appendSuppressed(slices.Clone(f.Facts), s.Kind, addresses)
	x.entries[slot] = x.newEntry(slot, f)
}

func (x *Index) suppress(s Suppression) {
	code := suppressionCode(s.Reason)
	if s.LiftedAt != nil {
		code = 0
	}
	if code == 0 {
		delete(x.suppressed, s.Address)
	} else {
		x.suppressed[s.Address] = code
	}
	m := x.identifierTable(s.Kind)
	if m == nil {
		return
	}
	if slot, ok := m.getString(s.Address); ok {
		f := x.facts(slot, &x.entries[slot])
		var kept []Fact
		for _, fact := range f.Facts { // a new reason replaces the old one
			if fact.Kind != FactSuppressed || !x.dict.addressReaches(s.Kind, fact.Scope) {
				kept = append(kept, fact)
			}
		}
		if code != 0 {
			kept = x.dict.appendSuppressionFacts(kept, s.Kind, code)
		}
		f.Facts = kept
		x.entries[slot] = x.newEntry(slot, f)
	}
}

func suppressionCode(reason string) uint8 {
	for i, r := range suppressionReasons {
		if r == reason {
			return uint8(i)
		}
	}
	return uint8(len(suppressionReasons) - 1) // manual
}

// lookup returns the slot of the contact the subject names, and whether it is known.
// The subject must be normalised.
func (x *Index) lookup(s *Subject) (uint32, bool) {
	if s.ContactID != "" {
		if n, ok := ContactNumber(s.ContactID); ok {
			if slot, ok := x.slotOf(n); ok {
				return slot, true
			}
		}
	}
	if s.Email != "" {
		if slot, ok := x.byEmail.getString(s.Email); ok {
			return slot, true
		}
	}
	if s.Phone != "" {
		if slot, ok := x.byPhone.getString(s.Phone); ok {
			return slot, true
		}
	}
	if s.ExternalID != nil {
		if slot, ok := x.byExternal.getString(ExternalValue(*s.ExternalID)); ok {
			return slot, true
		}
	}
	return 0, false
}

// Check decides whether a message on q may be sent to the subject. An unknown recipient
// gets the answer a contact with no events gets. An address the subject gives that is
// suppressed counts even when the contact was found by another identifier.
func (x *Index) Check(q *Query, s *Subject, now int64) Decision {
	var buf [8]Fact
	f := Facts{Policy: x.unknown}
	x.mu.RLock()
	if slot, ok := x.lookup(s); ok {
		e := x.entries[slot]
		f = x.facts(slot, &e)
	}
	if len(x.suppressed) > 0 {
		var extra []Fact
		if code := x.suppressed[s.Email]; code != 0 && s.Email != "" {
			extra = x.dict.appendSuppressionFacts(buf[:0], IdentifierEmail, code)
		}
		if code := x.suppressed[s.Phone]; code != 0 && s.Phone != "" {
			extra = x.dict.appendSuppressionFacts(append(buf[:0], extra...), IdentifierPhone, code)
		}
		if len(extra) > 0 {
			f.Facts = append(extra, f.Facts...)
		}
	}
	x.mu.RUnlock()
	return x.dict.Decide(&f, q, now)
}
