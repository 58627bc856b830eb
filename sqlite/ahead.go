package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"prefsync"
)

// Reading ahead of the writer. Under batches of events for existing contacts, finding
// and loading each event's contact took about half of the one writer's time. A batch
// now reads its contacts first, on the read pool, in two statements, while the writer
// is busy with other requests. The writer then takes what was read for each contact
// and identifier that no write transaction has touched since the read began, and reads
// the others itself, in its transaction, as before.

// A touch is a contact (by number) or an identifier that a write transaction changed.
type touch struct {
	contact int64
	ident   prefsync.Identifier
}

// touches remembers the last write transaction that touched each contact and
// identifier, for a while: the writer's own, so only the writer uses it.
type touches struct {
	cur, prev map[touch]uint64
	// since is the first transaction cur and prev cover: what is in neither was last
	// touched before it. curSince is the first that cur covers.
	since, curSince uint64
}

// touchesKept is how many touches cur holds before it becomes prev: a read ahead
// is of use while fewer than about this many touches happened since it began.
const touchesKept = 1 << 16

func newTouches() *touches {
	return &touches{cur: map[touch]uint64{}, prev: map[touch]uint64{}}
}

// begin is called as write transaction txn begins.
func (m *touches) begin(txn uint64) {
	if len(m.cur) >= touchesKept {
		m.prev, m.cur = m.cur, make(map[touch]uint64, touchesKept)
		m.since, m.curSince = m.curSince, txn
	}
}

// after reports whether k may have been touched by a transaction after txn.
func (m *touches) after(k touch, txn uint64) bool {
	if t, ok := m.cur[k]; ok {
		return t > txn
	}
	if t, ok := m.prev[k]; ok {
		return t > txn
	}
	return m.since > txn+1
}

// ahead is what a batch's identifiers and contacts were when read ahead.
type ahead struct {
	// txn is the last write transaction that had ended when the read began: the read
	// saw it and every one before it.
	txn uint64
	// idents holds every identifier the batch names, with the number of the contact it
	// found (0 for none).
	idents map[prefsync.Identifier]int64
	// contacts are the live contacts the batch names, by number, and their latest audit
	// entries.
	contacts map[int64]*prefsync.Contact
	last     map[int64]int64
}

const (
	qAheadIdentifiers = `
		SELECT identifiers.kind, identifiers.value, identifiers.contact_id
		FROM json_each(?) AS j JOIN identifiers ON identifiers.kind = j.value ->> 0 AND identifiers.value = j.value ->> 1`
	qAheadContacts = `SELECT contacts.id, ` + contactColumns + ` FROM json_each(?) AS j JOIN contacts ON contacts.id = j.value`
)

// readAhead reads what events' subjects name, as it is now.
func (db *DB) readAhead(ctx context.Context, events []prefsync.Event) (*ahead, error) {
	a := &ahead{txn: db.ended.Load(), idents: map[prefsync.Identifier]int64{}, contacts: map[int64]*prefsync.Contact{}, last: map[int64]int64{}}
	// One read transaction: a reader that sees the file changed drops its pages.
	rtx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read ahead: %w", err)
	}
	defer rtx.Rollback()
	var pairs [][2]string
	nums := map[int64]bool{}
	for i := range events {
		for _, id := range events[i].Subject.Identifiers() {
			// JSON would carry a value that is not UTF-8 changed: the writer finds it.
			if _, ok := a.idents[id]; !ok && utf8.ValidString(id.Value) {
				a.idents[id] = 0
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
		rows, err := rtx.StmtContext(ctx, db.readStmts[qAheadIdentifiers]).QueryContext(ctx, string(arg))
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
			a.idents[id] = n
			nums[n] = true
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read identifiers ahead: %w", err)
		}
	}
	if len(nums) == 0 {
		return a, nil
	}
	list := slices.Sorted(maps.Keys(nums))
	arg, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	rows, err := rtx.StmtContext(ctx, db.readStmts[qAheadContacts]).QueryContext(ctx, string(arg))
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
		if !row.mergedInto.Valid { // a merged contact is left to the writer, which follows the merge
			c.ID = idOf(n)
			a.contacts[n], a.last[n] = c, row.lastSeq
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read contacts ahead: %w", err)
	}
	return a, nil
}

// find answers whether id finds a contact, and which (0 for none), from what was read
// ahead; ok is false when the read may no longer be true for t.
func (a *ahead) find(t *tx, id prefsync.Identifier) (n int64, ok bool) {
	if a == nil {
		return 0, false
	}
	n, asked := a.idents[id]
	switch {
	case !asked:
		return 0, false
	case n == 0:
		return 0, !t.db.touched.after(touch{ident: id}, a.txn)
	default:
		return n, !t.db.touched.after(touch{contact: n}, a.txn)
	}
}

// fill puts the contacts read ahead that are still as read into cache, and their latest
// audit entries into t.
func (a *ahead) fill(t *tx, cache map[string]*prefsync.Contact) {
	if a == nil {
		return
	}
	for n, c := range a.contacts {
		if !t.db.touched.after(touch{contact: n}, a.txn) {
			cache[c.ID], t.last[n] = c, a.last[n]
		}
	}
}
