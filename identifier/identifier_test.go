package identifier

import (
	"testing"

	"prefsync"
)

func TestEmail(t *testing.T) {
	n := Normalizer{}
	for _, tc := range []struct{ in, want string }{
		{"a@example.com", "a@example.com"},
		{"  Alice.Smith+News@Example.COM ", "alice.smith+news@example.com"},
		{"jürgen@bücher.de", "jürgen@xn--bcher-kva.de"},
		{"x@XN--BCHER-KVA.de", "x@xn--bcher-kva.de"},
	} {
		got, err := n.Email(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Email(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "plainaddress", "a@", "@example.com", "Alice <a@example.com>", "a@b@c.com", "a@localhost",
		"a@exa mple.com", "a..b@example.com", ".a@example.com", "a.@example.com", "a@-example.com", "a@example-.com", "a@example..com", "a@example.com.", `"a@b"@example.com`} {
		if got, err := n.Email(bad); prefsync.ErrorCode(err) != prefsync.EINVALID {
			t.Errorf("Email(%q) = %q, %v; want EINVALID", bad, got, err)
		}
	}
}

// TestPlainAddressAgrees checks the fast path against the full parse: whatever it
// accepts, the full parse returns unchanged.
func TestPlainAddressAgrees(t *testing.T) {
	for _, s := range []string{"a@example.com", "first.last+tag@sub.example.co.uk", "x_y-z@a-b.example", "a..b@example.com",
		"a@b", "a@-b.com", "a@xn--bcher-kva.de", "Upper@example.com", "a@1.2", "a-@b.com", "-a@b.com", "a@b.c-"} {
		if !isPlainAddress(s) {
			continue
		}
		full, err := Normalizer{}.Email(" " + s) // the space forces the full path
		if err != nil || full != s {
			t.Errorf("fast path accepts %q, full parse gives %q, %v", s, full, err)
		}
	}
}

// An address already in normal form, as nearly every one of an audience streamed
// through a check is, is taken as it is, without allocating.
func TestPlainAddressAllocatesNothing(t *testing.T) {
	n := Normalizer{}
	if a := testing.AllocsPerRun(100, func() { n.Email("first.last+tag@sub.example.co.uk") }); a != 0 {
		t.Errorf("Email of a plain address allocates %v times", a)
	}
}

func TestPhone(t *testing.T) {
	n := Normalizer{}
	for _, tc := range []struct{ in, want string }{
		{"+1 415 555 2671", "+14155552671"},
		{"+44 (0)20 7946 0958", "+442079460958"},
		{"+49 30 901820", "+4930901820"},
	} {
		got, err := n.Phone(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Phone(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := n.Phone("415 555 2671"); prefsync.ErrorCode(err) != prefsync.EINVALID {
		t.Errorf("national number without region: err = %v, want EINVALID", err)
	}
	us := Normalizer{DefaultRegion: "US"}
	if got, err := us.Phone("(415) 555-2671"); err != nil || got != "+14155552671" {
		t.Errorf("with region US: %q, %v", got, err)
	}
	for _, bad := range []string{"hello", "+1 23", "+999 1234567"} {
		if got, err := n.Phone(bad); err == nil {
			t.Errorf("Phone(%q) = %q, want an error", bad, got)
		}
	}
}
