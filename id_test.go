package prefsync_test

import (
	"testing"
	"time"

	"prefsync"
)

func TestContactIDs(t *testing.T) {
	last := uint64(0)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for i := range 10000 {
		n := prefsync.NewContactNumber(now, last) // the same millisecond every time
		if n <= last || n >= 1<<63 {
			t.Fatalf("number %d after %d", n, last)
		}
		last = n
		id := prefsync.ContactIDFromNumber(n)
		back, ok := prefsync.ContactNumber(id)
		if !ok || back != n || seen[id] || len(id) != 15 {
			t.Fatalf("id %d: %q parses to %d %v (dup %v)", i, id, back, ok, seen[id])
		}
		seen[id] = true
	}
	// Later contacts sort after earlier ones, whatever the random bits.
	a := prefsync.NewContactNumber(now, 0)
	b := prefsync.NewContactNumber(now.Add(time.Millisecond), 0)
	if b <= a {
		t.Errorf("a later millisecond gave a smaller number: %d <= %d", b, a)
	}
	for _, bad := range []string{"", "c_", "c_0000000000000", "x_0123456789abc", "c_0123456789abu", "c_g123456789abc", "c_0123456789abcd"} {
		if prefsync.ValidContactID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}
