package prefsync

import "testing"

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
