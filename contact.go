package prefsync

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ExternalID identifies a contact in another system.
type ExternalID struct {
	System string `json:"system"`
	ID     string `json:"id"`
}

// Contact is a person, with every identifier that finds them. A contact can have several
// addresses of each kind: merging two contacts keeps all of them.
type Contact struct {
	ID           string       `json:"id"`
	Emails       []string     `json:"emails"`
	Phones       []string     `json:"phones"`
	ExternalIDs  []ExternalID `json:"external_ids"`
	Jurisdiction string       `json:"jurisdiction,omitempty"`
	Locale       string       `json:"locale,omitempty"`
	Version      int64        `json:"version"`
	CreatedAt    time.Time    `json:"created_at"`
	UpdatedAt    time.Time    `json:"updated_at"`
	// State is the projection of the contact's applied events.
	State ContactState `json:"-"`
}

// ContactInput creates a contact, or updates the one that an identifier already finds;
// identifiers it names are added to the contact.
type ContactInput struct {
	Email        string       `json:"email,omitempty"`
	Phone        string       `json:"phone,omitempty"`
	ExternalIDs  []ExternalID `json:"external_ids,omitempty"`
	Jurisdiction *string      `json:"jurisdiction,omitempty"`
	Locale       *string      `json:"locale,omitempty"`
	// Source says who made the change, for the audit trail; it defaults to the API key.
	Source Source `json:"source,omitempty"`
}

// Subject names the contact an event or a check is about, by any identifier.
type Subject struct {
	ContactID  string      `json:"contact_id,omitempty"`
	Email      string      `json:"email,omitempty"`
	Phone      string      `json:"phone,omitempty"`
	ExternalID *ExternalID `json:"external_id,omitempty"`
}

// IsZero reports whether the subject names nobody.
func (s Subject) IsZero() bool {
	return s.ContactID == "" && s.Email == "" && s.Phone == "" && s.ExternalID == nil
}

// Identifier kinds, as stores key them.
const (
	IdentifierEmail    = "email"
	IdentifierPhone    = "phone"
	IdentifierExternal = "external"
)

// Identifier is one normalised identifier of a contact.
type Identifier struct {
	Kind  string
	Value string
}

// ExternalValue is the stored value of an external id: system and id joined by a unit
// separator, which neither may contain.
func ExternalValue(e ExternalID) string { return e.System + "\x1f" + e.ID }

// Identifiers returns the subject's identifiers, most specific first. The subject must
// have been normalised.
func (s Subject) Identifiers() []Identifier {
	var ids []Identifier
	if s.Email != "" {
		ids = append(ids, Identifier{IdentifierEmail, s.Email})
	}
	if s.Phone != "" {
		ids = append(ids, Identifier{IdentifierPhone, s.Phone})
	}
	if s.ExternalID != nil {
		ids = append(ids, Identifier{IdentifierExternal, ExternalValue(*s.ExternalID)})
	}
	return ids
}

// Normalizer turns identifiers as people type them into the one form prefsync keys on.
type Normalizer interface {
	// Email returns the address trimmed and lower-cased, with an internationalised domain
	// in its ASCII form.
	Email(string) (string, error)
	// Phone returns the number in E.164.
	Phone(string) (string, error)
}

// NormalizeSubject normalises every identifier of s, naming the field at fault.
func NormalizeSubject(n Normalizer, s Subject) (Subject, error) {
	var err error
	if s.Email != "" {
		if s.Email, err = n.Email(s.Email); err != nil {
			return s, WithFieldPrefix(err, "email")
		}
	}
	if s.Phone != "" {
		if s.Phone, err = n.Phone(s.Phone); err != nil {
			return s, WithFieldPrefix(err, "phone")
		}
	}
	if s.ExternalID != nil {
		e, err := normalizeExternalID(*s.ExternalID)
		if err != nil {
			return s, WithFieldPrefix(err, "external_id")
		}
		s.ExternalID = &e
	}
	if s.ContactID != "" && !ValidContactID(s.ContactID) {
		return s, FieldErrorf("contact_id", "%q is not a contact id", s.ContactID)
	}
	if s.IsZero() {
		return s, FieldErrorf("", "names no contact: give email, phone, external_id or contact_id")
	}
	return s, nil
}

// normalizeExternalID trims e. Control characters are refused: stores separate
// identifiers with them.
func normalizeExternalID(e ExternalID) (ExternalID, error) {
	e.System, e.ID = strings.TrimSpace(e.System), strings.TrimSpace(e.ID)
	switch {
	case e.System == "" || len(e.System) > 64 || strings.ContainsFunc(e.System, unicode.IsControl):
		return e, FieldErrorf("system", "must be 1 to 64 characters, none of them control characters")
	case e.ID == "" || len(e.ID) > 256 || strings.ContainsFunc(e.ID, unicode.IsControl):
		return e, FieldErrorf("id", "must be 1 to 256 characters, none of them control characters")
	}
	return e, nil
}

var localeRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)

// NormalizeContactInput normalises the identifiers, jurisdiction and locale of in.
func NormalizeContactInput(n Normalizer, in ContactInput) (ContactInput, error) {
	s, err := NormalizeSubject(n, Subject{Email: in.Email, Phone: in.Phone})
	if err != nil && (in.Email != "" || in.Phone != "") {
		return in, err
	}
	in.Email, in.Phone = s.Email, s.Phone
	for i, e := range in.ExternalIDs {
		if in.ExternalIDs[i], err = normalizeExternalID(e); err != nil {
			return in, WithFieldPrefix(err, "external_ids["+strconv.Itoa(i)+"]")
		}
	}
	if in.Email == "" && in.Phone == "" && len(in.ExternalIDs) == 0 {
		return in, FieldErrorf("email", "a contact needs an email, a phone or an external id")
	}
	if in.Jurisdiction != nil {
		j := strings.ToUpper(strings.TrimSpace(*in.Jurisdiction))
		if j != "" && !jurisdictionRE.MatchString(j) {
			return in, FieldErrorf("jurisdiction", "%q is not an ISO 3166 code such as US, US-CA or DE", *in.Jurisdiction)
		}
		in.Jurisdiction = &j
	}
	if in.Source.Touchpoint != "" && !touchpoints[in.Source.Touchpoint] {
		return in, FieldErrorf("source.touchpoint", "unknown touchpoint %q", in.Source.Touchpoint)
	}
	if in.Locale != nil {
		l := strings.TrimSpace(*in.Locale)
		if l != "" && !localeRE.MatchString(l) {
			return in, FieldErrorf("locale", "%q is not a language tag such as en or fr-CA", *in.Locale)
		}
		in.Locale = &l
	}
	return in, nil
}

// Identifiers returns the input's identifiers.
func (in ContactInput) Identifiers() []Identifier {
	ids := Subject{Email: in.Email, Phone: in.Phone}.Identifiers()
	for _, e := range in.ExternalIDs {
		ids = append(ids, Identifier{IdentifierExternal, ExternalValue(e)})
	}
	return ids
}

// Identifiers returns all of the contact's identifiers.
func (c *Contact) Identifiers() []Identifier {
	var ids []Identifier
	for _, e := range c.Emails {
		ids = append(ids, Identifier{IdentifierEmail, e})
	}
	for _, p := range c.Phones {
		ids = append(ids, Identifier{IdentifierPhone, p})
	}
	for _, e := range c.ExternalIDs {
		ids = append(ids, Identifier{IdentifierExternal, ExternalValue(e)})
	}
	return ids
}

// AddIdentifier adds an identifier, in its stored form, to the contact's lists.
func (c *Contact) AddIdentifier(id Identifier) {
	switch id.Kind {
	case IdentifierEmail:
		c.Emails = append(c.Emails, id.Value)
	case IdentifierPhone:
		c.Phones = append(c.Phones, id.Value)
	case IdentifierExternal:
		sys, ext, _ := strings.Cut(id.Value, "\x1f")
		c.ExternalIDs = append(c.ExternalIDs, ExternalID{System: sys, ID: ext})
	}
}

// HasIdentifier reports whether the contact has the identifier.
func (c *Contact) HasIdentifier(id Identifier) bool {
	for _, x := range c.Identifiers() {
		if x == id {
			return true
		}
	}
	return false
}

// ContactFilter finds a contact by one of its identifiers.
type ContactFilter struct {
	ID         *string
	Email      *string
	Phone      *string
	ExternalID *ExternalID
}

// Identifier is the identifier f finds a contact by, when f does not name it by ID.
func (f ContactFilter) Identifier() (Identifier, error) {
	switch {
	case f.Email != nil:
		return Identifier{Kind: IdentifierEmail, Value: *f.Email}, nil
	case f.Phone != nil:
		return Identifier{Kind: IdentifierPhone, Value: *f.Phone}, nil
	case f.ExternalID != nil:
		return Identifier{Kind: IdentifierExternal, Value: ExternalValue(*f.ExternalID)}, nil
	}
	return Identifier{}, FieldErrorf("", "no identifier to find a contact by")
}
