package sqlite

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"prefsync"
)

// Reading a batch ahead. Finding and loading each event's contact, one statement at a
// time, took about half of the writer's time under batches of events for existing
// contacts. A batch's identifiers and contacts are now read first, in two statements,
// at the start of its turn in the writer's transaction, as the PostgreSQL store does.
// Read there, they stay true for the rest of the batch but for what the batch itself
// changes: the identifiers it adds, which AddIdentifier records here too.
//
// Tried and dropped: reading on the read pool while the writer commits other requests.
// A reader drops its pages whenever the file has changed, which under steady writes is
// at every read, so each lookup cost over twice what it costs the writer, whose pages
// stay (BENCHMARKS.md has the figures).

// ahead holds every identifier a batch names, with the number of the contact it finds
// (0 for none): as read when the batch's turn began, and as the batch has added since.
// An identifier the batch did not name is not in it.
type ahead map[prefsync.Identifier]int64

const (
	qAheadIdentifiers = `
		SELECT identifiers.kind, identifiers.value, identifiers.contact_id
		FROM json_each(?) AS j JOIN identifiers ON identifiers.kind = j.value ->> 0 AND identifiers.value = j.value ->> 1`
	qAheadContacts = `SELECT contacts.id, ` + contactColumns + ` FROM json_each(?) AS j JOIN contacts ON contacts.id = j.value`
)

// readAhead reads what events' subjects name, in the transaction: the identifiers, and
// the live contacts into cache (with their latest audit entries into t).
func (t *tx) readAhead(events []prefsync.Event, cache map[string]*prefsync.Contact) (ahead, error) {
	a := ahead{}
	var pairs [][2]string
	nums := map[int64]bool{}
	for i := range events {
		for _, id := range events[i].Subject.Identifiers() {
			// JSON would change a value that is not UTF-8: leave it to FindByIdentifiers.
			if _, ok := a[id]; !ok && utf8.ValidString(id.Value) {
				a[id] = 0
				pairs = append(pairs, [2]string{id.Kind, id.Value})
			}
		}
		if n := num(events[i].Subject.ContactID); n != 0 {
			nums[n] = true
		}
	}
	if len(pairs) > 0 {
		// In key order, each lookup finds the pages the one before it used.
		slices.SortFunc(pairs, func(x, y [2]string) int { return cmp.Or(strings.Compare(x[0], y[0]), strings.Compare(x[1], y[1])) })
		arg, err := json.Marshal(pairs)
		if err != nil {
			return nil, err
		}
		rows, err := t.QueryContext(t.ctx, qAheadIdentifiers, string(arg))
		if err != nil {
			return nil, fmt.Errorf("read identifiers ahead: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id prefsync.Identifier
			var n int64
			if err := rows.Scan(&id.Kind, &id.Value, &n); err != nil {
				return nil, fmt.Errorf("read identifiers ahead: %w", err)
			}
			a[id] = n
			nums[n] = true
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read identifiers ahead: %w", err)
		}
	}
	if len(nums) == 0 {
		return a, nil
	}
	arg, err := json.Marshal(slices.Sorted(maps.Keys(nums)))
	if err != nil {
		return nil, err
	}
	rows, err := t.QueryContext(t.ctx, qAheadContacts, string(arg))
	if err != nil {
		return nil, fmt.Errorf("read contacts ahead: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		c, row, err := scanContact(func(dest ...any) error { return rows.Scan(append([]any{&n}, dest...)...) })
		if err != nil {
			return nil, fmt.Errorf("read contacts ahead: %w", err)
		}
		if !row.mergedInto.Valid { // a merged contact is left to LoadContact, which follows the merge
			c.ID = idOf(n)
			cache[c.ID] = c
			t.sawLastSeq(n, row.lastSeq)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read contacts ahead: %w", err)
	}
	return a, nil
}
