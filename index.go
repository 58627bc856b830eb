package prefsync

import (
	"sync"
)

// Index answers checks from memory. It holds every contact's facts, keyed by each of its
// identifiers, and the suppressed addresses. Updates carry the contact's version and an
// older version never overwrites a newer one, so concurrent writers cannot move it back.
type Index struct {
	dict *Dictionary

	mu         sync.RWMutex
	entries    []Facts
	free       []uint32
	byID       map[uint64]uint32
	byEmail    map[string]uint32
	byPhone    map[string]uint32
	byExternal map[string]uint32
	suppressed map[string]uint8 // address -> reason code
	unknown    uint8            // policy of a recipient prefsync does not know
}

// NewIndex returns an empty index deciding with dict.
func NewIndex(dict *Dictionary) *Index {
	return &Index{
		dict:       dict,
		byID:       map[uint64]uint32{},
		byEmail:    map[string]uint32{},
		byPhone:    map[string]uint32{},
		byExternal: map[string]uint32{},
		suppressed: map[string]uint8{},
		unknown:    dict.PolicyID(""),
	}
}

// Len returns the number of contacts in the index.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byID)
}

// Put records a contact's state, unless the index already has a newer version.
func (x *Index) Put(c *Contact) {
	num, ok := ContactNumber(c.ID)
	if !ok {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	slot, exists := x.byID[num]
	if exists && x.entries[slot].Version > c.Version {
		return
	}
	f := x.dict.Facts(&c.State, c.Version, c.Jurisdiction)
	f.Facts = x.appendSuppressions(f.Facts, c)
	if !exists {
		if n := len(x.free); n > 0 {
			slot, x.free = x.free[n-1], x.free[:n-1]
		} else {
			slot = uint32(len(x.entries))
			x.entries = append(x.entries, Facts{})
		}
		x.byID[num] = slot
	}
	x.entries[slot] = f
	for _, e := range c.Emails {
		x.byEmail[e] = slot
	}
	for _, p := range c.Phones {
		x.byPhone[p] = slot
	}
	for _, e := range c.ExternalIDs {
		x.byExternal[ExternalValue(e)] = slot
	}
}

// Remove drops a contact (merged into another) and the identifiers it had.
func (x *Index) Remove(c *Contact) {
	num, ok := ContactNumber(c.ID)
	if !ok {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	slot, ok := x.byID[num]
	if !ok {
		return
	}
	for _, id := range c.Identifiers() {
		if m := x.identifierMap(id.Kind); m[id.Value] == slot {
			delete(m, id.Value)
		}
	}
	delete(x.byID, num)
	x.entries[slot] = Facts{}
	x.free = append(x.free, slot)
}

func (x *Index) identifierMap(kind string) map[string]uint32 {
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
	if len(x.suppressed) == 0 {
		return fs
	}
	for _, e := range c.Emails {
		if code := x.suppressed[e]; code != 0 {
			fs = x.dict.appendSuppressionFacts(fs, IdentifierEmail, code)
		}
	}
	for _, p := range c.Phones {
		if code := x.suppressed[p]; code != 0 {
			fs = x.dict.appendSuppressionFacts(fs, IdentifierPhone, code)
		}
	}
	return fs
}

// Suppress records a suppressed address and marks the contact that has it.
func (x *Index) Suppress(s Suppression) {
	code := suppressionCode(s.Reason)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.suppressed[s.Address] = code
	m := x.identifierMap(s.Kind)
	if m == nil {
		return
	}
	if slot, ok := m[s.Address]; ok {
		e := &x.entries[slot]
		e.Facts = x.dict.appendSuppressionFacts(append([]Fact(nil), e.Facts...), s.Kind, code)
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

// Lookup returns the facts of the contact the subject names, and whether it is known.
// The subject must be normalised.
func (x *Index) lookup(s *Subject) (uint32, bool) {
	if s.ContactID != "" {
		if n, ok := ContactNumber(s.ContactID); ok {
			if slot, ok := x.byID[n]; ok {
				return slot, true
			}
		}
	}
	if s.Email != "" {
		if slot, ok := x.byEmail[s.Email]; ok {
			return slot, true
		}
	}
	if s.Phone != "" {
		if slot, ok := x.byPhone[s.Phone]; ok {
			return slot, true
		}
	}
	if s.ExternalID != nil {
		if slot, ok := x.byExternal[ExternalValue(*s.ExternalID)]; ok {
			return slot, true
		}
	}
	return 0, false
}

// Check decides whether a message on q may be sent to the subject. An unknown recipient
// gets the answer a contact with no events gets, unless its address is suppressed.
func (x *Index) Check(q *Query, s *Subject, now int64) Decision {
	x.mu.RLock()
	slot, ok := x.lookup(s)
	if ok {
		f := x.entries[slot]
		x.mu.RUnlock()
		return x.dict.Decide(&f, q, now)
	}
	var buf [2]Fact
	f := Facts{Policy: x.unknown, Facts: buf[:0]}
	if len(x.suppressed) > 0 {
		if code := x.suppressed[s.Email]; code != 0 && s.Email != "" {
			f.Facts = x.dict.appendSuppressionFacts(f.Facts, IdentifierEmail, code)
		}
		if code := x.suppressed[s.Phone]; code != 0 && s.Phone != "" {
			f.Facts = x.dict.appendSuppressionFacts(f.Facts, IdentifierPhone, code)
		}
	}
	x.mu.RUnlock()
	return x.dict.Decide(&f, q, now)
}
