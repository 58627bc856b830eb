package prefsync

import (
	"errors"
	"testing"
)

// External ids are trimmed, and refused empty, too long, or with control characters
// (stores separate identifiers with them).
func TestNormalizeExternalID(t *testing.T) {
	for _, tc := range []struct {
		in    ExternalID
		field string // "" for accepted
	}{
		{ExternalID{System: " crm ", ID: " 42 "}, ""},
		{ExternalID{System: "crm", ID: "a\x1eb"}, "id"},
		{ExternalID{System: "crm", ID: "a\x1fb"}, "id"},
		{ExternalID{System: "crm", ID: "a\nb"}, "id"},
		{ExternalID{System: "c\x1erm", ID: "42"}, "system"},
		{ExternalID{System: "", ID: "42"}, "system"},
		{ExternalID{System: "crm", ID: ""}, "id"},
	} {
		got, err := normalizeExternalID(tc.in)
		switch {
		case tc.field == "" && (err != nil || got != ExternalID{System: "crm", ID: "42"}):
			t.Errorf("%q: %+v, %v; want crm/42", tc.in, got, err)
		case tc.field != "" && (ErrorCode(err) != EINVALID || ErrorField(err) != tc.field):
			t.Errorf("%q: %v; want EINVALID on %s", tc.in, err, tc.field)
		}
	}
}

func TestContactFilterIdentifier(t *testing.T) {
	email, phone := "a@example.com", "+14155552671"
	for _, tc := range []struct {
		f    ContactFilter
		want Identifier
	}{
		{ContactFilter{Email: &email}, Identifier{IdentifierEmail, email}},
		{ContactFilter{Phone: &phone}, Identifier{IdentifierPhone, phone}},
		{ContactFilter{ExternalID: &ExternalID{System: "crm", ID: "0031"}}, Identifier{IdentifierExternal, "crm\x1f0031"}},
	} {
		if got, err := tc.f.Identifier(); err != nil || got != tc.want {
			t.Errorf("%+v: %v, %v; want %v", tc.f, got, err, tc.want)
		}
	}
	var e *Error
	if _, err := (ContactFilter{}).Identifier(); !errors.As(err, &e) || e.Code != EINVALID {
		t.Errorf("no identifier: %v; want %s", err, EINVALID)
	}
}
