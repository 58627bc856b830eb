// Package identifier normalises the identifiers people type: email addresses (with
// internationalised domains) and phone numbers (to E.164).
package identifier

import (
	"net/mail"
	"strings"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/net/idna"

	"prefsync"
)

// Normalizer implements prefsync.Normalizer.
type Normalizer struct {
	// DefaultRegion is the ISO 3166 region assumed for phone numbers given without a
	// country code; empty means such numbers are refused.
	DefaultRegion string
}

var _ prefsync.Normalizer = Normalizer{}

var domainProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false))

// Email parses a bare address, lower-cases it and turns its domain into ASCII (IDNA).
func (n Normalizer) Email(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 320 {
		return "", prefsync.FieldErrorf("", "an email address must be 1 to 320 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || strings.ContainsAny(s, "<>") {
		return "", prefsync.FieldErrorf("", "%q is not an email address", s)
	}
	at := strings.LastIndexByte(a.Address, '@')
	local, domain := a.Address[:at], a.Address[at+1:]
	ascii, err := domainProfile.ToASCII(domain)
	if err != nil || !strings.Contains(ascii, ".") || strings.HasSuffix(ascii, ".") {
		return "", prefsync.FieldErrorf("", "%q does not have a valid domain", s)
	}
	return strings.ToLower(local) + "@" + strings.ToLower(ascii), nil
}

// Phone parses a number and returns it in E.164. Numbers that cannot be valid in their
// region are refused.
func (n Normalizer) Phone(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 40 {
		return "", prefsync.FieldErrorf("", "a phone number must be 1 to 40 characters")
	}
	num, err := phonenumbers.Parse(s, n.DefaultRegion)
	if err != nil {
		if !strings.HasPrefix(s, "+") && n.DefaultRegion == "" {
			return "", prefsync.FieldErrorf("", "%q has no country code: give it in international form, such as +14155550123", s)
		}
		return "", prefsync.FieldErrorf("", "%q is not a phone number", s)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", prefsync.FieldErrorf("", "%q is not a valid phone number", s)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}
