package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"prefsync"
)

// querier is what reads need: the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadContact reads a live contact by id, following merges. In a transaction, lock
// takes its row for update.
func loadContact(ctx context.Context, q querier, id string, lock bool) (*prefsync.Contact, error) {
	suffix := ""
	if lock {
		suffix = " FOR UPDATE"
	}
	for range 8 {
		c := &prefsync.Contact{ID: id}
		var state []byte
		var mergedInto *int64
		err := q.QueryRow(ctx, `SELECT jurisdiction, locale, version, state, merged_into, created_at, updated_at
			FROM contacts WHERE id = $1`+suffix, num(id)).
			Scan(&c.Jurisdiction, &c.Locale, &c.Version, &state, &mergedInto, &c.CreatedAt, &c.UpdatedAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil, prefsync.Errorf(prefsync.ENOTFOUND, "no contact %s", id)
		case err != nil:
			return nil, fmt.Errorf("load contact %s: %w", id, err)
		case mergedInto != nil:
			id = idOf(*mergedInto)
			continue
		}
		c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		if c.State, err = prefsync.ParseState(state); err != nil {
			return nil, fmt.Errorf("load contact %s: %w", id, err)
		}
		rows, err := q.Query(ctx, `SELECT kind, value FROM identifiers WHERE contact_id = $1 ORDER BY kind, value`, num(id))
		if err != nil {
			return nil, fmt.Errorf("load contact %s: %w", id, err)
		}
		for rows.Next() {
			var kind, value string
			if err := rows.Scan(&kind, &value); err != nil {
				rows.Close()
				return nil, err
			}
			c.AddIdentifier(prefsync.Identifier{Kind: kind, Value: value})
		}
		rows.Close()
		return c, rows.Err()
	}
	return nil, fmt.Errorf("load contact %s: merge chain too long", id)
}

// findByIdentifiers returns the id of the one contact the identifiers find, "" if none.
func findByIdentifiers(ctx context.Context, q querier, ids []prefsync.Identifier) (string, error) {
	return prefsync.FindOneContact(ids, func(id prefsync.Identifier) (string, error) {
		var n int64
		switch err := q.QueryRow(ctx, `SELECT contact_id FROM identifiers WHERE kind = $1 AND value = $2`, id.Kind, id.Value).Scan(&n); {
		case errors.Is(err, pgx.ErrNoRows):
			return "", nil
		case err != nil:
			return "", err
		}
		return idOf(n), nil
	})
}

// tx is a write transaction that holds the audit chain's head.
type tx struct {
	pgx.Tx
	db   *DB
	ctx  context.Context
	head []byte
	next int64
	last uint64 // the greatest contact number, for new ones

	// The audit entries appended, written together when the transaction ends (one
	// COPY instead of a statement each), and their idempotency keys meanwhile.
	audit [][]any
	keys  map[string][2]int64 // key → first entry, its contact number
	dests []*prefsync.Destination
	// known maps the identifiers a batch names (read ahead, and added as the batch
	// adds them) to their contacts; nil when nothing was read ahead.
	known map[prefsync.Identifier]string
	// idents are the identifiers added, written together with the audit entries.
	idents [][]any
}

// FindByIdentifiers implements prefsync.WriteTx, answered from what prefetch read when
// it did.
func (t *tx) FindByIdentifiers(ids []prefsync.Identifier) (string, error) {
	if t.known == nil {
		return findByIdentifiers(t.ctx, t, ids)
	}
	return prefsync.FindOneContact(ids, func(id prefsync.Identifier) (string, error) { return t.known[id], nil })
}

// AddIdentifier implements prefsync.WriteTx: the identifier is written when the
// transaction ends, and known to the rest of it at once.
func (t *tx) AddIdentifier(c *prefsync.Contact, id prefsync.Identifier) error {
	if t.known == nil { // not read ahead: later lookups query, so write it now
		_, err := t.Exec(t.ctx, `INSERT INTO identifiers (kind, value, contact_id) VALUES ($1, $2, $3)`, id.Kind, id.Value, num(c.ID))
		return err
	}
	t.idents = append(t.idents, []any{id.Kind, id.Value, num(c.ID)})
	t.known[id] = c.ID
	return nil
}

// prefetch reads, in three queries, the contacts a batch's events name (by identifier
// or id), locked for update, into cache; one query per event would cost a round trip
// each.
func (t *tx) prefetch(events []prefsync.Event, cache map[string]*prefsync.Contact) error {
	var kinds, values []string
	var nums []int64
	for i := range events {
		for _, id := range events[i].Subject.Identifiers() {
			kinds, values = append(kinds, id.Kind), append(values, id.Value)
		}
		if n := num(events[i].Subject.ContactID); n != 0 {
			nums = append(nums, n)
		}
	}
	t.known = map[prefsync.Identifier]string{}
	rows, err := t.Query(t.ctx, `SELECT kind, value, contact_id FROM identifiers
		WHERE (kind, value) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, kinds, values)
	if err != nil {
		return fmt.Errorf("read identifiers ahead: %w", err)
	}
	for rows.Next() {
		var id prefsync.Identifier
		var n int64
		if err := rows.Scan(&id.Kind, &id.Value, &n); err != nil {
			rows.Close()
			return err
		}
		t.known[id] = idOf(n)
		nums = append(nums, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(nums) == 0 {
		return nil
	}
	rows, err = t.Query(t.ctx, `SELECT id, jurisdiction, locale, version, state, created_at, updated_at FROM contacts
		WHERE id = ANY($1) AND merged_into IS NULL ORDER BY id FOR UPDATE`, nums)
	if err != nil {
		return fmt.Errorf("read contacts ahead: %w", err)
	}
	loaded := map[int64]*prefsync.Contact{}
	for rows.Next() {
		c := &prefsync.Contact{}
		var n int64
		var state []byte
		if err := rows.Scan(&n, &c.Jurisdiction, &c.Locale, &c.Version, &state, &c.CreatedAt, &c.UpdatedAt); err != nil {
			rows.Close()
			return err
		}
		c.ID, c.CreatedAt, c.UpdatedAt = idOf(n), c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		if c.State, err = prefsync.ParseState(state); err != nil {
			rows.Close()
			return fmt.Errorf("contact %s: %w", c.ID, err)
		}
		loaded[n] = c
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = t.Query(t.ctx, `SELECT contact_id, kind, value FROM identifiers WHERE contact_id = ANY($1) ORDER BY kind, value`, nums)
	if err != nil {
		return fmt.Errorf("read identifiers ahead: %w", err)
	}
	for rows.Next() {
		var n int64
		var kind, value string
		if err := rows.Scan(&n, &kind, &value); err != nil {
			rows.Close()
			return err
		}
		if c, ok := loaded[n]; ok {
			c.AddIdentifier(prefsync.Identifier{Kind: kind, Value: value})
		}
	}
	rows.Close()
	for _, c := range loaded {
		cache[c.ID] = c
	}
	return rows.Err()
}

// writeChained runs fn in a transaction that first locks the audit chain's head, so
// writers on every process append one after another.
func (db *DB) writeChained(ctx context.Context, fn func(t *tx) error) error {
	return db.write(ctx, func(ptx pgx.Tx) error {
		t := &tx{Tx: ptx, db: db, ctx: ctx, keys: map[string][2]int64{}}
		if err := ptx.QueryRow(ctx, `SELECT seq, hash FROM audit_head FOR UPDATE`).Scan(&t.next, &t.head); err != nil {
			return fmt.Errorf("lock audit head: %w", err)
		}
		t.next++
		// Read after the lock is held, in a statement of its own: under READ COMMITTED it
		// then sees every contact the writers before this one added.
		var last *int64
		if err := ptx.QueryRow(ctx, `SELECT max(id) FROM contacts`).Scan(&last); err != nil {
			return fmt.Errorf("read last contact: %w", err)
		}
		if last != nil {
			t.last = uint64(*last)
		}
		if err := fn(t); err != nil {
			return err
		}
		if len(t.idents) > 0 {
			if _, err := ptx.CopyFrom(ctx, pgx.Identifier{"identifiers"}, []string{"kind", "value", "contact_id"},
				pgx.CopyFromRows(t.idents)); err != nil {
				return fmt.Errorf("add identifiers: %w", err)
			}
		}
		if len(t.audit) > 0 {
			if _, err := ptx.CopyFrom(ctx, pgx.Identifier{"audit"},
				[]string{"seq", "contact_id", "status", "idempotency_key", "body", "hash", "salt", "personal"},
				pgx.CopyFromRows(t.audit)); err != nil {
				return fmt.Errorf("append audit: %w", err)
			}
		}
		// Other processes learn of the commit from the notification, sent when it commits.
		_, err := ptx.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2`, t.next-1, t.head)
		if err == nil {
			_, err = ptx.Exec(ctx, `SELECT pg_notify($1, '')`, channel)
		}
		return err
	})
}

// LoadContact implements prefsync.WriteTx: the contact is locked until commit.
func (t *tx) LoadContact(id string) (*prefsync.Contact, error) {
	return loadContact(t.ctx, t, id, true)
}

// NewContactID implements prefsync.WriteTx.
func (t *tx) NewContactID(now time.Time) string {
	t.last = prefsync.NewContactNumber(now, t.last)
	return prefsync.ContactIDFromNumber(t.last)
}

// MarkMerged implements prefsync.WriteTx.
func (t *tx) MarkMerged(from, into *prefsync.Contact, now time.Time) error {
	if _, err := t.Exec(t.ctx, `UPDATE identifiers SET contact_id = $1 WHERE contact_id = $2`, num(into.ID), num(from.ID)); err != nil {
		return fmt.Errorf("move identifiers: %w", err)
	}
	if _, err := t.Exec(t.ctx, `UPDATE contacts SET merged_into = $1, updated_at = $2 WHERE id = $3`, num(into.ID), now, num(from.ID)); err != nil {
		return fmt.Errorf("mark merged: %w", err)
	}
	return nil
}

const qSaveContact = `
	INSERT INTO contacts (id, jurisdiction, locale, version, state, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (id) DO UPDATE SET jurisdiction = excluded.jurisdiction, locale = excluded.locale,
		version = excluded.version, state = excluded.state, updated_at = excluded.updated_at`

// SaveContacts implements prefsync.WriteTx, in one round trip.
func (t *tx) SaveContacts(cs []*prefsync.Contact) error {
	b := &pgx.Batch{}
	for _, c := range cs {
		b.Queue(qSaveContact, num(c.ID), c.Jurisdiction, c.Locale, c.Version, prefsync.AppendState([]byte{}, &c.State), c.CreatedAt, c.UpdatedAt)
	}
	if err := t.SendBatch(t.ctx, b).Close(); err != nil {
		return fmt.Errorf("save contacts: %w", err)
	}
	return nil
}

// UpsertContact implements prefsync.Store.
func (db *DB) UpsertContact(ctx context.Context, in prefsync.ContactInput) (*prefsync.Contact, error) {
	var out *prefsync.Contact
	err := db.writeChained(ctx, func(t *tx) (err error) {
		out, err = prefsync.UpsertContact(t, in, db.cfg.Now().UTC())
		return err
	})
	return out, err
}

// FindContact implements prefsync.Store.
func (db *DB) FindContact(ctx context.Context, f prefsync.ContactFilter) (*prefsync.Contact, error) {
	c, err := db.findContact(ctx, f)
	return c, reading(err)
}

func (db *DB) findContact(ctx context.Context, f prefsync.ContactFilter) (*prefsync.Contact, error) {
	if f.ID != nil {
		return loadContact(ctx, db.pool, *f.ID, false)
	}
	ident, err := f.Identifier()
	if err != nil {
		return nil, err
	}
	id, err := findByIdentifiers(ctx, db.pool, []prefsync.Identifier{ident})
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, prefsync.Errorf(prefsync.ENOTFOUND, "no contact has that %s", ident.Kind)
	}
	return loadContact(ctx, db.pool, id, false)
}

// MergedContacts implements prefsync.Store.
func (db *DB) MergedContacts(ctx context.Context) (map[string]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, merged_into FROM contacts WHERE merged_into IS NOT NULL`)
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
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM contacts WHERE merged_into IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count contacts: %w", err)
	}
	return n, nil
}

// EachContact implements prefsync.Store: contacts and identifiers read side by side,
// both in contact order, in one snapshot.
func (db *DB) EachContact(ctx context.Context, fn func(*prefsync.Contact) error) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(ptx pgx.Tx) error {
		ids := map[int64][]prefsync.Identifier{}
		rows, err := ptx.Query(ctx, `SELECT i.contact_id, i.kind, i.value FROM identifiers i`)
		if err != nil {
			return fmt.Errorf("each contact identifiers: %w", err)
		}
		for rows.Next() {
			var id int64
			var kind, value string
			if err := rows.Scan(&id, &kind, &value); err != nil {
				rows.Close()
				return err
			}
			ids[id] = append(ids[id], prefsync.Identifier{Kind: kind, Value: value})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = ptx.Query(ctx, `SELECT id, jurisdiction, locale, version, state, created_at, updated_at
			FROM contacts WHERE merged_into IS NULL ORDER BY id`)
		if err != nil {
			return fmt.Errorf("each contact: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			c := &prefsync.Contact{}
			var id int64
			var state []byte
			var created, updated time.Time
			if err := rows.Scan(&id, &c.Jurisdiction, &c.Locale, &c.Version, &state, &created, &updated); err != nil {
				return err
			}
			c.ID, c.CreatedAt, c.UpdatedAt = idOf(id), created.UTC(), updated.UTC()
			if c.State, err = prefsync.ParseState(state); err != nil {
				return fmt.Errorf("contact %s: %w", c.ID, err)
			}
			for _, ident := range ids[id] {
				c.AddIdentifier(ident)
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// MergeContacts implements prefsync.Store.
func (db *DB) MergeContacts(ctx context.Context, into, from string, src prefsync.Source, now time.Time) (*prefsync.Contact, error) {
	var out *prefsync.Contact
	err := db.writeChained(ctx, func(t *tx) (err error) {
		out, err = prefsync.MergeContacts(t, into, from, src, now)
		return err
	})
	return out, err
}
