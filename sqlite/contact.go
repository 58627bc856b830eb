package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	// A contact and its identifiers in one statement; identifiers come as
	// kind US value RS kind US value ….
	qContact = `
		SELECT jurisdiction, locale, version, state, merged_into, created_at, updated_at,
			(SELECT group_concat(kind || char(31) || value, char(30)) FROM identifiers WHERE contact_id = contacts.id)
		FROM contacts WHERE id = ?`
	qFindIdentifier = `SELECT contact_id FROM identifiers WHERE kind = ? AND value = ?`
	qAddIdentifier  = `INSERT INTO identifiers (kind, value, contact_id) VALUES (?, ?, ?)`
	// New contacts are written once, at the end of their transaction, with their state.
	qSaveContact = `
		INSERT INTO contacts (id, jurisdiction, locale, version, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET jurisdiction = excluded.jurisdiction, locale = excluded.locale,
			version = excluded.version, state = excluded.state, updated_at = excluded.updated_at`
)

// num is the database key of a contact id; ids that do not parse key nothing (0).
func num(id string) int64 {
	n, _ := prefsync.ContactNumber(id)
	return int64(n)
}

func idOf(n int64) string { return prefsync.ContactIDFromNumber(uint64(n)) }

// loadContact reads a live contact by id, following merges.
func loadContact(ctx context.Context, q querier, id string) (*prefsync.Contact, error) {
	for range 8 { // merges chain at most a few times; bound the walk anyway
		c := &prefsync.Contact{ID: id}
		var state, created, updated string
		var mergedInto sql.NullInt64
		var idents sql.NullString
		err := q.QueryRowContext(ctx, qContact, num(id)).
			Scan(&c.Jurisdiction, &c.Locale, &c.Version, &state, &mergedInto, &created, &updated, &idents)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil, prefsync.Errorf(prefsync.ENOTFOUND, "no contact %s", id)
		case err != nil:
			return nil, fmt.Errorf("load contact %s: %w", id, err)
		case mergedInto.Valid:
			id = idOf(mergedInto.Int64)
			continue
		}
		if c.State, err = prefsync.ParseState([]byte(state)); err != nil {
			return nil, fmt.Errorf("load contact %s: %w", id, err)
		}
		if err := setTimes(c, created, updated); err != nil {
			return nil, fmt.Errorf("load contact %s: %w", id, err)
		}
		for _, ident := range strings.Split(idents.String, "\x1e") {
			if kind, value, ok := strings.Cut(ident, "\x1f"); ok {
				c.AddIdentifier(prefsync.Identifier{Kind: kind, Value: value})
			}
		}
		return c, nil
	}
	return nil, fmt.Errorf("load contact %s: merge chain too long", id)
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
	found := ""
	for _, id := range ids {
		var n int64
		err := q.QueryRowContext(ctx, qFindIdentifier, id.Kind, id.Value).Scan(&n)
		cid := idOf(n)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue
		case err != nil:
			return "", fmt.Errorf("find %s: %w", id.Kind, err)
		case found != "" && cid != found:
			return "", &prefsync.Error{Code: prefsync.ECONFLICT, Field: id.Kind,
				Message: fmt.Sprintf("the identifiers belong to two contacts (%s and %s); merge them first", found, cid)}
		}
		found = cid
	}
	return found, nil
}

// contactFor finds the contact the identifiers name, creating it when none does, and
// attaches the identifiers it does not have yet. It reports whether c changed; a changed
// contact must be saved before the transaction ends.
func (t *tx) contactFor(contactID string, ids []prefsync.Identifier, cache map[string]*prefsync.Contact) (*prefsync.Contact, bool, error) {
	var err error
	id := contactID
	if id == "" {
		if id, err = findByIdentifiers(t.ctx, t, ids); err != nil {
			return nil, false, err
		}
	} else if other, err := findByIdentifiers(t.ctx, t, ids); err != nil {
		return nil, false, err
	} else if other != "" && other != id {
		return nil, false, &prefsync.Error{Code: prefsync.ECONFLICT, Field: "contact_id",
			Message: fmt.Sprintf("the identifiers belong to contact %s, not %s", other, id)}
	}
	if id == "" {
		c, err := t.createContact(ids)
		if err == nil {
			cache[c.ID] = c
		}
		return c, true, err
	}
	c, ok := cache[id]
	if !ok {
		if c, err = loadContact(t.ctx, t, id); err != nil {
			return nil, false, err
		}
		// id may be a contact merged into c: the batch must share c's one copy.
		if cached, ok := cache[c.ID]; ok {
			c = cached
		}
		cache[id], cache[c.ID] = c, c
	}
	changed := false
	for _, ident := range ids {
		if c.HasIdentifier(ident) {
			continue
		}
		if _, err := t.Exec(qAddIdentifier, ident.Kind, ident.Value, num(c.ID)); err != nil {
			return nil, false, fmt.Errorf("add identifier: %w", err)
		}
		c.AddIdentifier(ident)
		changed = true
	}
	return c, changed, nil
}

func (t *tx) createContact(ids []prefsync.Identifier) (*prefsync.Contact, error) {
	if len(ids) == 0 {
		return nil, prefsync.Errorf(prefsync.ENOTFOUND, "no such contact")
	}
	now := t.db.cfg.Now().UTC()
	n := prefsync.NewContactNumber(now, t.db.lastNumber)
	t.db.lastNumber = n
	c := &prefsync.Contact{ID: prefsync.ContactIDFromNumber(n), CreatedAt: now, UpdatedAt: now}
	for _, id := range ids {
		if _, err := t.Exec(qAddIdentifier, id.Kind, id.Value, num(c.ID)); err != nil {
			return nil, fmt.Errorf("create contact identifier: %w", err)
		}
		c.AddIdentifier(id)
	}
	return c, nil
}

// saveContact writes a contact's version, attributes and state; the row of a contact
// created in this transaction is inserted here.
func (t *tx) saveContact(c *prefsync.Contact) error {
	state := prefsync.AppendState(nil, &c.State)
	if _, err := t.Exec(qSaveContact, num(c.ID), c.Jurisdiction, c.Locale, c.Version, string(state),
		formatTime(c.CreatedAt), formatTime(c.UpdatedAt)); err != nil {
		return fmt.Errorf("save contact %s: %w", c.ID, err)
	}
	return nil
}

// UpsertContact implements prefsync.Store.
func (db *DB) UpsertContact(ctx context.Context, in prefsync.ContactInput) (*prefsync.Contact, error) {
	var out *prefsync.Contact
	err := db.do(ctx, func(t *tx) error {
		c, attached, err := t.contactFor("", in.Identifiers(), map[string]*prefsync.Contact{})
		if err != nil {
			return err
		}
		var changes []string
		if attached {
			changes = append(changes, "identifiers")
		}
		if in.Jurisdiction != nil && *in.Jurisdiction != c.Jurisdiction {
			c.Jurisdiction = *in.Jurisdiction
			changes = append(changes, "jurisdiction "+quoteEmpty(c.Jurisdiction))
		}
		if in.Locale != nil && *in.Locale != c.Locale {
			c.Locale = *in.Locale
			changes = append(changes, "locale "+quoteEmpty(c.Locale))
		}
		if len(changes) > 0 {
			// The version moves with anything a decision or a destination depends on, and
			// the audit trail says what moved it.
			now := db.cfg.Now().UTC()
			c.Version++
			c.UpdatedAt = now
			if err := t.saveContact(c); err != nil {
				return err
			}
			r := prefsync.ChainRecord{Kind: prefsync.KindContact, ContactID: c.ID, Status: prefsync.Applied,
				StatusReason: "set " + strings.Join(changes, ", "), OccurredAt: now, ReceivedAt: now,
				Source: prefsync.Source{System: in.Source.System, Touchpoint: in.Source.Touchpoint}, Version: c.Version}
			var ext *prefsync.ExternalID
			if len(in.ExternalIDs) > 0 {
				ext = &in.ExternalIDs[0]
			}
			p := &prefsync.Personal{Subject: prefsync.Subject{Email: in.Email, Phone: in.Phone, ExternalID: ext}, Actor: in.Source.Actor}
			if _, err := t.appendAudit(&r, p); err != nil {
				return err
			}
		}
		out = c
		return nil
	})
	return out, err
}

// FindContact implements prefsync.Store.
func (db *DB) FindContact(ctx context.Context, f prefsync.ContactFilter) (*prefsync.Contact, error) {
	var ident prefsync.Identifier
	switch {
	case f.ID != nil:
		return loadContact(ctx, db.read, *f.ID)
	case f.Email != nil:
		ident = prefsync.Identifier{Kind: prefsync.IdentifierEmail, Value: *f.Email}
	case f.Phone != nil:
		ident = prefsync.Identifier{Kind: prefsync.IdentifierPhone, Value: *f.Phone}
	case f.ExternalID != nil:
		ident = prefsync.Identifier{Kind: prefsync.IdentifierExternal, Value: prefsync.ExternalValue(*f.ExternalID)}
	default:
		return nil, prefsync.FieldErrorf("", "no identifier to find a contact by")
	}
	id, err := findByIdentifiers(ctx, db.read, []prefsync.Identifier{ident})
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, prefsync.Errorf(prefsync.ENOTFOUND, "no contact has that %s", ident.Kind)
	}
	return loadContact(ctx, db.read, id)
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

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// CountContacts implements prefsync.Store.
func (db *DB) CountContacts(ctx context.Context) (int, error) {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM contacts WHERE merged_into IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count contacts: %w", err)
	}
	return n, nil
}

// EachContact implements prefsync.Store. One goroutine walks contacts and identifiers
// side by side, both in contact order, in one read transaction; the caller's goroutine
// decodes states and calls fn. On two cores that halves the start-up of a large store.
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
			var err error
			if r.c.State, err = prefsync.ParseState(r.state); err != nil {
				return fmt.Errorf("contact %s: %w", r.c.ID, err)
			}
			if err := setTimes(r.c, r.created, r.updated); err != nil {
				return fmt.Errorf("contact %s: %w", r.c.ID, err)
			}
			if err := fn(r.c); err != nil {
				return err
			}
		}
	}
	return <-readErr
}

// rawContact is a contact whose stored state and times are not decoded yet.
type rawContact struct {
	c                *prefsync.Contact
	state            []byte
	created, updated string
}

func (db *DB) readContacts(ctx context.Context, out chan<- []rawContact) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	contacts, err := tx.QueryContext(ctx, `
		SELECT id, jurisdiction, locale, version, state, created_at, updated_at
		FROM contacts WHERE merged_into IS NULL ORDER BY id`)
	if err != nil {
		return fmt.Errorf("each contact: %w", err)
	}
	defer contacts.Close()
	idents, err := tx.QueryContext(ctx, `SELECT contact_id, kind, value FROM identifiers ORDER BY contact_id`)
	if err != nil {
		return fmt.Errorf("each contact identifiers: %w", err)
	}
	defer idents.Close()
	var pendKind, pendValue string
	var pendID int64
	pending := false
	batch := make([]rawContact, 0, 512)
	for contacts.Next() {
		c := &prefsync.Contact{}
		var id int64
		var state []byte
		var created, updated string
		if err := contacts.Scan(&id, &c.Jurisdiction, &c.Locale, &c.Version, &state, &created, &updated); err != nil {
			return err
		}
		c.ID = idOf(id)
		for {
			if !pending {
				if !idents.Next() {
					break
				}
				if err := idents.Scan(&pendID, &pendKind, &pendValue); err != nil {
					return err
				}
				pending = true
			}
			if pendID > id {
				break
			}
			if pendID == id {
				c.AddIdentifier(prefsync.Identifier{Kind: pendKind, Value: pendValue})
			}
			pending = false
		}
		if batch = append(batch, rawContact{c, state, created, updated}); len(batch) == cap(batch) {
			select {
			case out <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([]rawContact, 0, 512)
		}
	}
	if err := contacts.Err(); err != nil {
		return err
	}
	if err := idents.Err(); err != nil {
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
	err := db.do(ctx, func(t *tx) error {
		a, err := loadContact(t.ctx, t, into)
		if err != nil {
			return err
		}
		b, err := loadContact(t.ctx, t, from)
		if err != nil {
			return prefsync.WithFieldPrefix(err, "contact_id")
		}
		if a.ID == b.ID {
			return prefsync.FieldErrorf("contact_id", "the contacts are already one")
		}
		a.State = prefsync.Merge(a.State, b.State)
		if a.Jurisdiction == "" {
			a.Jurisdiction = b.Jurisdiction
		}
		if a.Locale == "" {
			a.Locale = b.Locale
		}
		a.Version = max(a.Version, b.Version) + 1
		a.UpdatedAt = now
		if _, err := t.Exec(`UPDATE identifiers SET contact_id = ? WHERE contact_id = ?`, num(a.ID), num(b.ID)); err != nil {
			return fmt.Errorf("move identifiers: %w", err)
		}
		for _, id := range b.Identifiers() {
			a.AddIdentifier(id)
		}
		if _, err := t.Exec(`UPDATE contacts SET merged_into = ?, updated_at = ? WHERE id = ?`, num(a.ID), formatTime(now), num(b.ID)); err != nil {
			return fmt.Errorf("mark merged: %w", err)
		}
		if err := t.saveContact(a); err != nil {
			return err
		}
		var seq int64
		for _, c := range []*prefsync.Contact{b, a} {
			r := prefsync.ChainRecord{Kind: prefsync.KindMerge, ContactID: c.ID, Status: prefsync.Applied,
				StatusReason: "merged " + b.ID + " into " + a.ID, OccurredAt: now, ReceivedAt: now, Source: src, Version: a.Version}
			if seq, err = t.appendAudit(&r, nil); err != nil {
				return err
			}
		}
		// Destinations learn of the merge as a change of every scope: the old id now
		// finds the survivor, whose state may be more restrictive than either was.
		if err := t.fanOut(seq, a, prefsync.Scope{Channel: prefsync.Any, Topic: prefsync.Any}, src.System,
			func() ([]byte, error) { return prefsync.NewMergeChange(a, b.ID, seq, now) }); err != nil {
			return err
		}
		out = a
		return nil
	})
	return out, err
}
