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
	if isPlainAddress(s) {
		return s, nil // already in normal form, as most addresses in an audience are
	}
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 320 {
		return "", prefsync.FieldErrorf("", "an email address must be 1 to 320 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || strings.ContainsAny(s, "<>") {
		return "", prefsync.FieldErrorf("", "%q is not an email address", s)
	}
	if strings.ContainsRune(s, '"') {
		// Parsing unquotes the local part, which would then read as another address.
		return "", prefsync.FieldErrorf("", "%q has a quoted local part, which prefsync does not accept", s)
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

// isPlainAddress reports whether s is an address that Email would return unchanged:
// lower-case ASCII, a local part of dot-separated words of letters, digits and _+-, and a
// domain of at least two labels of letters, digits and inner hyphens.
func isPlainAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || len(s) > 254 {
		return false
	}
	return dotted(s[:at], func(c byte) bool { return c == '_' || c == '+' || c == '-' }) &&
		dotted(s[at+1:], nil) && strings.IndexByte(s[at+1:], '.') > 0 && validLabels(s[at+1:])
}

// dotted reports whether s is non-empty words of [a-z0-9] (and extra) joined by single dots.
func dotted(s string, extra func(byte) bool) bool {
	prevDot := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
			continue
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-' && extra == nil, extra != nil && extra(c):
		default:
			return false
		}
		prevDot = false
	}
	return !prevDot
}

// validLabels reports whether no domain label starts or ends with a hyphen, or is an
// IDNA A-label (which the full path checks).
func validLabels(domain string) bool {
	for l := range strings.SplitSeq(domain, ".") {
		if l[0] == '-' || l[len(l)-1] == '-' || strings.HasPrefix(l, "xn--") {
			return false
		}
	}
	return true
}
