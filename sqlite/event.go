package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"prefsync"
)

// ApplyEvents implements prefsync.Store: the writer reads the batch's contacts ahead,
// then applies the events.
func (db *DB) ApplyEvents(ctx context.Context, events []prefsync.Event) ([]prefsync.EventResult, []*prefsync.Contact, error) {
	var results []prefsync.EventResult
	var changed []*prefsync.Contact
	err := db.do(ctx, func(t *tx) error {
		cache := map[string]*prefsync.Contact{}
		a, err := t.readAhead(events, cache)
		if err != nil {
			return err
		}
		t.ahead = a
		defer func() { t.ahead = nil }()
		results, changed, err = prefsync.ApplyEvents(t, events, cache, db.cfg.Now().UTC(), db.cfg.ConflictWindow)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return results, changed, nil
}

const (
	qSeenIdempotency = `SELECT seq, contact_id FROM audit WHERE idempotency_key = ? AND status <> 'duplicate'`
	qAppendAudit     = `
		INSERT INTO audit (seq, contact_id, status, idempotency_key, body, hash, salt, personal)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qLinkAudit = `INSERT INTO audit_links (seq, prev_seq) VALUES (?, ?)`
)

// hotQueries are prepared on the writer's connection when the store opens.
var hotQueries = []string{qContact, qFindIdentifier, qAddIdentifier, qSaveContact, qSaveLastSeq, qSeenIdempotency,
	qAppendAudit, qLinkAudit, qAheadIdentifiers, qAheadContacts, qAddChange, qAddDelivery, qRecordAttempt}

// idempotencyKey is prefsync.StoredIdempotencyKey as a query argument: NULL for none.
func idempotencyKey(system, key string) any {
	if k := prefsync.StoredIdempotencyKey(system, key); k != nil {
		return *k
	}
	return nil
}

// SeenIdempotencyKey implements prefsync.WriteTx.
func (t *tx) SeenIdempotencyKey(ev *prefsync.Event) (int64, string, error) {
	key := idempotencyKey(ev.Source.System, ev.IdempotencyKey)
	if key == nil {
		return 0, "", nil
	}
	var seq, contact int64
	err := t.QueryRowContext(t.ctx, qSeenIdempotency, key).Scan(&seq, &contact)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, "", nil
	case err != nil:
		return 0, "", fmt.Errorf("idempotency key: %w", err)
	}
	return seq, idOf(contact), nil
}

// NextSeq implements prefsync.WriteTx.
func (t *tx) NextSeq() int64 { return t.db.nextSeq }

// AppendAudit implements prefsync.WriteTx: p, the entry's personal data, is stored beside
// the entry and committed to by a salted digest. The entry links to its contact's entry
// before it.
func (t *tx) AppendAudit(r *prefsync.ChainRecord, p *prefsync.Personal) (int64, error) {
	n := num(r.ContactID)
	prev, err := t.lastSeq(n)
	if err != nil {
		return 0, err
	}
	r.Seq = t.db.nextSeq
	var salt, personal []byte
	if p != nil {
		salt = make([]byte, 16)
		rand.Read(salt)
		if personal, err = json.Marshal(p); err != nil {
			return 0, err
		}
		r.PersonalDigest = prefsync.PersonalDigest(salt, personal)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	hash := prefsync.ChainHash(t.db.head, body)
	if _, err := t.Exec(qAppendAudit, r.Seq, n, string(r.Status), idempotencyKey(r.Source.System, r.IdempotencyKey),
		string(body), hash, salt, nullString(personal)); err != nil {
		return 0, fmt.Errorf("append audit: %w", err)
	}
	if _, err := t.Exec(qLinkAudit, r.Seq, prev); err != nil {
		return 0, fmt.Errorf("link audit entry: %w", err)
	}
	t.db.head, t.db.nextSeq = hash, t.db.nextSeq+1
	t.last[n] = r.Seq
	t.lastUnsaved[n] = true
	return r.Seq, nil
}

func nullString(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// personalOf decodes an entry's stored personal data; nil once erased.
func personalOf(seq int64, data sql.NullString) (*prefsync.Personal, error) {
	if !data.Valid {
		return nil, nil
	}
	var p prefsync.Personal
	if err := json.Unmarshal([]byte(data.String), &p); err != nil {
		return nil, fmt.Errorf("audit entry %d: personal data: %w", seq, err)
	}
	return &p, nil
}

// History implements prefsync.Store.
func (db *DB) History(ctx context.Context, contactID string) ([]prefsync.AuditEntry, error) {
	c, _, err := loadContact(ctx, db.read, contactID)
	if err != nil {
		return nil, err
	}
	// A contact's history includes the histories of all contacts merged into it; each
	// contact's entries are found by following the links from its latest.
	rows, err := db.read.QueryContext(ctx, `
		WITH RECURSIVE folded(id) AS (
			SELECT ?
			UNION SELECT contacts.id FROM contacts JOIN folded ON contacts.merged_into = folded.id
		), entries(seq) AS (
			SELECT last_seq FROM contacts WHERE id IN (SELECT id FROM folded) AND last_seq <> 0
			UNION ALL SELECT audit_links.prev_seq FROM audit_links JOIN entries ON audit_links.seq = entries.seq
			WHERE audit_links.prev_seq <> 0 AND audit_links.prev_seq < entries.seq -- links only go back
		)
		SELECT seq, body, personal FROM audit
		WHERE seq IN (SELECT seq FROM entries)
		ORDER BY seq`, num(c.ID))
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", c.ID, err)
	}
	defer rows.Close()
	out := []prefsync.AuditEntry{}
	for rows.Next() {
		var seq int64
		var body string
		var personal sql.NullString
		if err := rows.Scan(&seq, &body, &personal); err != nil {
			return nil, err
		}
		var r prefsync.ChainRecord
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, fmt.Errorf("history entry %d: %w", seq, err)
		}
		p, err := personalOf(seq, personal)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Entry(p))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var applied []int64
	for _, e := range out {
		if e.Status == prefsync.Applied {
			applied = append(applied, e.Seq)
		}
	}
	receipts, err := db.receipts(ctx, applied)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Deliveries = receipts[out[i].Seq]
	}
	return out, nil
}

// VerifyAudit implements prefsync.Store: the chain, and the links from contacts to
// their entries that history is read by, as of one moment (the hub may be writing).
func (db *DB) VerifyAudit(ctx context.Context) (prefsync.AuditReport, error) {
	var v prefsync.AuditVerifier
	rtx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return v.Report(), fmt.Errorf("verify audit: %w", err)
	}
	defer rtx.Rollback()
	whole, err := verifyEntries(ctx, rtx, &v)
	if err != nil || !whole {
		return v.Report(), err
	}
	rows, err := rtx.QueryContext(ctx, `SELECT id, last_seq FROM contacts`)
	if err != nil {
		return v.Report(), fmt.Errorf("verify audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, last int64
		if err := rows.Scan(&id, &last); err != nil {
			return v.Report(), err
		}
		if !v.CheckLatest(idOf(id), last) {
			return v.Report(), nil
		}
	}
	return v.Report(), rows.Err()
}

// verifyEntries checks every audit entry with v, and reports whether all were whole.
func verifyEntries(ctx context.Context, q querier, v *prefsync.AuditVerifier) (bool, error) {
	// An entry without its link reads as linked to -1, which no entry is.
	rows, err := q.QueryContext(ctx, `
		SELECT seq, contact_id, status, idempotency_key, body, hash, salt, personal, coalesce(audit_links.prev_seq, -1)
		FROM audit LEFT JOIN audit_links USING (seq) ORDER BY seq`)
	if err != nil {
		return false, fmt.Errorf("verify audit: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		row := prefsync.AuditRow{Linked: true}
		var contactNum int64
		var body string
		var key, personal sql.NullString
		if err := rows.Scan(&row.Seq, &contactNum, &row.Status, &key, &body, &row.Hash, &row.Salt, &personal, &row.PrevSeq); err != nil {
			return false, err
		}
		row.ContactID, row.Body = idOf(contactNum), []byte(body)
		if key.Valid {
			row.IdempotencyKey = &key.String
		}
		if personal.Valid {
			row.Personal = []byte(personal.String)
		}
		if !v.Check(row) {
			return false, nil
		}
	}
	return true, rows.Err()
}
