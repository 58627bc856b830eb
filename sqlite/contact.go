package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"prefsync"
)

// querier is what reads need: the read pool or a write transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// The statements of the write path, prepared once (see hotQueries).
const (
	qContact        = `SELECT ` + contactColumns + ` FROM contacts WHERE id = ?`
	qFindIdentifier = `SELECT contact_id FROM identifiers WHERE kind = ? AND value = ?`
	qAddIdentifier  = `INSERT INTO identifiers (kind, value, contact_id) VALUES (?, ?, ?)`
	// A contact is written whole (its identifiers too) once per request that changes it,
	// inserted the first time.
	qSaveContact = `
		INSERT INTO contacts (id, jurisdiction, locale, version, state, identifiers, last_seq, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET jurisdiction = excluded.jurisdiction, locale = excluded.locale,
			version = excluded.version, state = excluded.state, identifiers = excluded.identifiers,
			last_seq = excluded.last_seq, updated_at = excluded.updated_at`
	qLastSeq     = `SELECT last_seq FROM contacts WHERE id = ?`
	qSaveLastSeq = `UPDATE contacts SET last_seq = ? WHERE id = ?`
)

// contactColumns are a contact's columns as scanContact reads them.
const contactColumns = `jurisdiction, locale, version, state, merged_into, last_seq, created_at, updated_at, identifiers`

// contactRow is what the store keeps of a contact beside prefsync.Contact.
type contactRow struct {
	mergedInto sql.NullInt64
	lastSeq    int64 // the contact's latest audit entry, 0 for none
}

// scanContact reads contactColumns with scan; it leaves the id to the caller, and the
// rest of a merged contact unparsed.
func scanContact(scan func(dest ...any) error) (*prefsync.Contact, contactRow, error) {
	c := &prefsync.Contact{}
	var row contactRow
	var state, created, updated, idents string
	if err := scan(&c.Jurisdiction, &c.Locale, &c.Version, &state, &row.mergedInto, &row.lastSeq, &created, &updated, &idents); err != nil {
		return nil, row, err
	}
	if row.mergedInto.Valid {
		return c, row, nil
	}
	var err error
	if c.State, err = prefsync.ParseState([]byte(state)); err != nil {
		return nil, row, err
	}
	if err := setTimes(c, created, updated); err != nil {
		return nil, row, err
	}
	addIdentifiers(c, idents)
	return c, row, nil
}

// addIdentifiers adds the identifiers of a contact's row to c. A row holds them as
// kind US value RS kind US value …, in kind and value order (appendIdentifiers); an
// external id's value holds a US of its own, after its kind's.
func addIdentifiers(c *prefsync.Contact, stored string) {
	for ident := range strings.SplitSeq(stored, "\x1e") {
		if kind, value, ok := strings.Cut(ident, "\x1f"); ok {
			c.AddIdentifier(prefsync.Identifier{Kind: kind, Value: value})
		}
	}
}

// appendIdentifiers appends c's identifiers in their stored form.
func appendIdentifiers(b []byte, c *prefsync.Contact) []byte {
	ids := c.Identifiers()
	slices.SortFunc(ids, func(x, y prefsync.Identifier) int {
		return cmp.Or(strings.Compare(x.Kind, y.Kind), strings.Compare(x.Value, y.Value))
	})
	for i, id := range ids {
		if i > 0 {
			b = append(b, '\x1e')
		}
		b = append(append(append(b, id.Kind...), '\x1f'), id.Value...)
	}
	return b
}

// num is the database key of a contact id; ids that do not parse key nothing (0).
func num(id string) int64 {
	n, _ := prefsync.ContactNumber(id)
	return int64(n)
}

func idOf(n int64) string { return prefsync.ContactIDFromNumber(uint64(n)) }

// loadContact reads a live contact by id, following merges, and its latest audit entry.
func loadContact(ctx context.Context, q querier, id string) (*prefsync.Contact, int64, error) {
	for range 8 { // merges chain at most a few times; bound the walk anyway
		c, row, err := scanContact(q.QueryRowContext(ctx, qContact, num(id)).Scan)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil, 0, prefsync.Errorf(prefsync.ENOTFOUND, "no contact %s", id)
		case err != nil:
			return nil, 0, fmt.Errorf("load contact %s: %w", id, err)
		case row.mergedInto.Valid:
			id = idOf(row.mergedInto.Int64)
			continue
		}
		c.ID = id
		return c, row.lastSeq, nil
	}
	return nil, 0, fmt.Errorf("load contact %s: merge chain too long", id)
}

// setTimes reads a contact's stored creation and update times.
func setTimes(c *prefsync.Contact, created, updated string) error {
	var err error
	if c.CreatedAt, err = parseTime(created); err != nil {
		return err
	}
	c.UpdatedAt, err = parseTime(updated)
	return err
}

// findByIdentifiers returns the id of the one contact the identifiers find, "" if none.
func findByIdentifiers(ctx context.Context, q querier, ids []prefsync.Identifier) (string, error) {
	return prefsync.FindOneContact(ids, func(id prefsync.Identifier) (string, error) { return findIdentifier(ctx, q, id) })
}

// findIdentifier returns the id of the contact id names, "" for none.
func findIdentifier(ctx context.Context, q querier, id prefsync.Identifier) (string, error) {
	var n int64
	switch err := q.QueryRowContext(ctx, qFindIdentifier, id.Kind, id.Value).Scan(&n); {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", err
	}
	return idOf(n), nil
}

// FindByIdentifiers implements prefsync.WriteTx, from what was read ahead where the
// batch named the identifiers.
func (t *tx) FindByIdentifiers(ids []prefsync.Identifier) (string, error) {
	return prefsync.FindOneContact(ids, func(id prefsync.Identifier) (string, error) {
		n, ok := t.ahead[id]
		switch {
		case !ok:
			return findIdentifier(t.ctx, t, id)
		case n == 0:
			return "", nil
		}
		return idOf(n), nil
	})
}

// LoadContact implements prefsync.WriteTx.
func (t *tx) LoadContact(id string) (*prefsync.Contact, error) {
	c, last, err := loadContact(t.ctx, t, id)
	if err != nil {
		return nil, err
	}
	t.sawLastSeq(num(c.ID), last)
	return c, nil
}

// sawLastSeq records last, read from contact n's row, as its latest audit entry, unless
// the transaction has one already: its own is never older than the row's.
func (t *tx) sawLastSeq(n, last int64) {
	if _, ok := t.last[n]; !ok {
		t.last[n] = last
	}
}

// NewContactID implements prefsync.WriteTx.
func (t *tx) NewContactID(now time.Time) string {
	t.db.lastNumber = prefsync.NewContactNumber(now, t.db.lastNumber)
	t.last[int64(t.db.lastNumber)] = 0
	return prefsync.ContactIDFromNumber(t.db.lastNumber)
}

// lastSeq returns the latest audit entry of contact n, as the transaction leaves it.
func (t *tx) lastSeq(n int64) (int64, error) {
	last, ok := t.last[n]
	if !ok { // a contact the transaction did not read: not so on the write paths
		err := t.QueryRowContext(t.ctx, qLastSeq, n).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("latest audit entry of %s: %w", idOf(n), err)
		}
		t.last[n] = last
	}
	return last, nil
}

// saveLastSeqs writes the latest audit entry of each contact audited since it was saved.
func (t *tx) saveLastSeqs() error {
	for n := range t.lastUnsaved {
		if _, err := t.Exec(qSaveLastSeq, t.last[n], n); err != nil {
			return fmt.Errorf("save latest audit entry of %s: %w", idOf(n), err)
		}
	}
	clear(t.lastUnsaved)
	return nil
}

// AddIdentifier implements prefsync.WriteTx.
func (t *tx) AddIdentifier(c *prefsync.Contact, ident prefsync.Identifier) error {
	if _, err := t.Exec(qAddIdentifier, ident.Kind, ident.Value, num(c.ID)); err != nil {
		return err
	}
	if t.ahead != nil {
		t.ahead[ident] = num(c.ID)
	}
	return nil
}

// MarkMerged implements prefsync.WriteTx: from's identifiers, as LoadContact read them
// from its row, move to into, whose row gets them when the caller saves it. An
// identifier not found on from stops the merge: the row and the identifiers disagree.
func (t *tx) MarkMerged(from, into *prefsync.Contact, now time.Time) error {
	for _, id := range from.Identifiers() {
		res, err := t.Exec(`UPDATE identifiers SET contact_id = ? WHERE kind = ? AND value = ? AND contact_id = ?`,
			num(into.ID), id.Kind, id.Value, num(from.ID))
		if err != nil {
			return fmt.Errorf("move identifiers: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("move identifiers: contact %s's row names a %s that is not stored as its (%v)", from.ID, id.Kind, err)
		}
	}
	if _, err := t.Exec(`UPDATE contacts SET merged_into = ?, identifiers = '', updated_at = ? WHERE id = ?`, num(into.ID), formatTime(now), num(from.ID)); err != nil {
		return fmt.Errorf("mark merged: %w", err)
	}
	return nil
}

// SaveContacts implements prefsync.WriteTx.
func (t *tx) SaveContacts(cs []*prefsync.Contact) error {
	var state, idents []byte
	for _, c := range cs {
		state = prefsync.AppendState(state[:0], &c.State)
		idents = appendIdentifiers(idents[:0], c)
		n := num(c.ID)
		last, err := t.lastSeq(n)
		if err != nil {
			return err
		}
		if _, err := t.Exec(qSaveContact, n, c.Jurisdiction, c.Locale, c.Version, string(state), string(idents), last,
			formatTime(c.CreatedAt), formatTime(c.UpdatedAt)); err != nil {
			return fmt.Errorf("save contact %s: %w", c.ID, err)
		}
		delete(t.lastUnsaved, n)
	}
	return nil
}

// UpsertContact implements prefsync.Store.
func (db *DB) UpsertContact(ctx context.Context, in prefsync.ContactInput) (*prefsync.Contact, error) {
	var out *prefsync.Contact
	err := db.do(ctx, func(t *tx) (err error) {
		out, err = prefsync.UpsertContact(t, in, db.cfg.Now().UTC())
		return err
	})
	return out, err
}

// FindContact implements prefsync.Store.
func (db *DB) FindContact(ctx context.Context, f prefsync.ContactFilter) (*prefsync.Contact, error) {
	if f.ID != nil {
		c, _, err := loadContact(ctx, db.read, *f.ID)
		return c, err
	}
	ident, err := f.Identifier()
	if err != nil {
		return nil, err
	}
	id, err := findByIdentifiers(ctx, db.read, []prefsync.Identifier{ident})
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, prefsync.Errorf(prefsync.ENOTFOUND, "no contact has that %s", ident.Kind)
	}
	c, _, err := loadContact(ctx, db.read, id)
	return c, err
}

// MergedContacts implements prefsync.Store.
func (db *DB) MergedContacts(ctx context.Context) (map[string]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, merged_into FROM contacts WHERE merged_into IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("merged contacts: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var from, into int64
		if err := rows.Scan(&from, &into); err != nil {
			return nil, err
		}
		out[idOf(from)] = idOf(into)
	}
	return out, rows.Err()
}

// CountContacts implements prefsync.Store.
func (db *DB) CountContacts(ctx context.Context) (int, error) {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM contacts WHERE merged_into IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count contacts: %w", err)
	}
	return n, nil
}

// EachContact implements prefsync.Store. One goroutine reads the contacts, in one read
// transaction, while the caller's goroutine decodes them and calls fn.
func (db *DB) EachContact(ctx context.Context, fn func(*prefsync.Contact) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []rawContact, 8)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- db.readContacts(ctx, batches)
	}()
	for batch := range batches {
		for _, r := range batch {
			c := &prefsync.Contact{ID: idOf(r.id), Jurisdiction: r.jurisdiction, Locale: r.locale, Version: r.version}
			var err error
			if c.State, err = prefsync.ParseState(r.state); err != nil {
				return fmt.Errorf("contact %s: %w", c.ID, err)
			}
			if err := setTimes(c, r.created, r.updated); err != nil {
				return fmt.Errorf("contact %s: %w", c.ID, err)
			}
			addIdentifiers(c, r.identifiers)
			if err := fn(c); err != nil {
				return err
			}
		}
	}
	return <-readErr
}

// rawContact is a contact's row, not decoded yet.
type rawContact struct {
	id                                                  int64
	version                                             int64
	state                                               []byte
	jurisdiction, locale, identifiers, created, updated string
}

func (db *DB) readContacts(ctx context.Context, out chan<- []rawContact) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `
		SELECT id, jurisdiction, locale, version, state, identifiers, created_at, updated_at
		FROM contacts WHERE merged_into IS NULL`)
	if err != nil {
		return fmt.Errorf("each contact: %w", err)
	}
	defer rows.Close()
	batch := make([]rawContact, 0, 512)
	for rows.Next() {
		var r rawContact
		if err := rows.Scan(&r.id, &r.jurisdiction, &r.locale, &r.version, &r.state, &r.identifiers, &r.created, &r.updated); err != nil {
			return err
		}
		if batch = append(batch, r); len(batch) == cap(batch) {
			select {
			case out <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([]rawContact, 0, 512)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// MergeContacts implements prefsync.Store.
func (db *DB) MergeContacts(ctx context.Context, into, from string, src prefsync.Source, now time.Time) (*prefsync.Contact, error) {
	var out *prefsync.Contact
	err := db.do(ctx, func(t *tx) (err error) {
		out, err = prefsync.MergeContacts(t, into, from, src, now)
		return err
	})
	return out, err
}
