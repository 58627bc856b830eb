package postgres

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"prefsync"
)

// ApplyEvents implements prefsync.Store.
func (db *DB) ApplyEvents(ctx context.Context, events []prefsync.Event) ([]prefsync.EventResult, []*prefsync.Contact, error) {
	var results []prefsync.EventResult
	var changed []*prefsync.Contact
	err := db.writeChained(ctx, func(t *tx) error {
		cache := map[string]*prefsync.Contact{}
		if err := t.prefetch(events, cache); err != nil {
			return err
		}
		var err error
		results, changed, err = prefsync.ApplyEvents(t, events, cache, db.cfg.Now().UTC(), db.cfg.ConflictWindow)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return results, changed, nil
}

// SeenIdempotencyKey implements prefsync.WriteTx. The chain's head lock orders writers,
// so the answer holds until commit.
func (t *tx) SeenIdempotencyKey(ev *prefsync.Event) (int64, string, error) {
	key := prefsync.StoredIdempotencyKey(ev.Source.System, ev.IdempotencyKey)
	if key == nil {
		return 0, "", nil
	}
	if first, ok := t.keys[*key]; ok { // earlier in this transaction
		return first[0], idOf(first[1]), nil
	}
	var seq, contact int64
	err := t.QueryRow(t.ctx, `SELECT seq, contact_id FROM audit WHERE idempotency_key = $1 AND status <> 'duplicate'`, *key).Scan(&seq, &contact)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, "", nil
	case err != nil:
		return 0, "", fmt.Errorf("idempotency key: %w", err)
	}
	return seq, idOf(contact), nil
}

// NextSeq implements prefsync.WriteTx.
func (t *tx) NextSeq() int64 { return t.next }

// AppendAudit implements prefsync.WriteTx.
func (t *tx) AppendAudit(r *prefsync.ChainRecord, p *prefsync.Personal) (int64, error) {
	r.Seq = t.next
	var salt []byte
	var personal *string
	if p != nil {
		salt = make([]byte, 16)
		rand.Read(salt)
		b, err := json.Marshal(p)
		if err != nil {
			return 0, err
		}
		s := string(b)
		personal = &s
		r.PersonalDigest = prefsync.PersonalDigest(salt, b)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	hash := prefsync.ChainHash(t.head, body)
	key := prefsync.StoredIdempotencyKey(r.Source.System, r.IdempotencyKey)
	t.audit = append(t.audit, []any{r.Seq, num(r.ContactID), string(r.Status), key, string(body), hash, salt, personal})
	if key != nil && r.Status != prefsync.Duplicate {
		t.keys[*key] = [2]int64{r.Seq, num(r.ContactID)}
	}
	t.head, t.next = hash, t.next+1
	return r.Seq, nil
}

// History implements prefsync.Store.
func (db *DB) History(ctx context.Context, contactID string) ([]prefsync.AuditEntry, error) {
	c, err := loadContact(ctx, db.pool, contactID, false)
	if err != nil {
		return nil, reading(err)
	}
	rows, err := db.pool.Query(ctx, `
		WITH RECURSIVE folded(id) AS (
			SELECT $1::bigint
			UNION SELECT contacts.id FROM contacts JOIN folded ON contacts.merged_into = folded.id
		)
		SELECT seq, body, personal FROM audit WHERE contact_id IN (SELECT id FROM folded) ORDER BY seq`, num(c.ID))
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", c.ID, err)
	}
	out := []prefsync.AuditEntry{}
	var applied []int64
	for rows.Next() {
		var seq int64
		var body string
		var personal *string
		if err := rows.Scan(&seq, &body, &personal); err != nil {
			rows.Close()
			return nil, err
		}
		var r prefsync.ChainRecord
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			rows.Close()
			return nil, fmt.Errorf("history entry %d: %w", seq, err)
		}
		var p *prefsync.Personal
		if personal != nil {
			p = &prefsync.Personal{}
			if err := json.Unmarshal([]byte(*personal), p); err != nil {
				rows.Close()
				return nil, fmt.Errorf("history entry %d: personal data: %w", seq, err)
			}
		}
		e := r.Entry(p)
		if e.Status == prefsync.Applied {
			applied = append(applied, seq)
		}
		out = append(out, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
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

// VerifyAudit implements prefsync.Store.
func (db *DB) VerifyAudit(ctx context.Context) (prefsync.AuditReport, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, contact_id, status, idempotency_key, body, hash, salt, personal FROM audit ORDER BY seq`)
	if err != nil {
		return prefsync.AuditReport{}, fmt.Errorf("verify audit: %w", err)
	}
	defer rows.Close()
	var v prefsync.AuditVerifier
	for rows.Next() {
		var row prefsync.AuditRow
		var contactNum int64
		var body string
		var personal *string
		if err := rows.Scan(&row.Seq, &contactNum, &row.Status, &row.IdempotencyKey, &body, &row.Hash, &row.Salt, &personal); err != nil {
			return v.Report(), err
		}
		row.ContactID, row.Body = idOf(contactNum), []byte(body)
		if personal != nil {
			row.Personal = []byte(*personal)
		}
		if !v.Check(row) {
			return v.Report(), nil
		}
	}
	return v.Report(), rows.Err()
}

// receipts returns what each destination made of the given changes, by audit entry.
func (db *DB) receipts(ctx context.Context, seqs []int64) (map[int64][]prefsync.Receipt, error) {
	out := map[int64][]prefsync.Receipt{}
	if len(seqs) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT seq, destination, status, attempts, delivered_at FROM deliveries
		WHERE seq = ANY($1) ORDER BY seq, destination`, seqs)
	if err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var r prefsync.Receipt
		var delivered *int64
		if err := rows.Scan(&seq, &r.Destination, &r.Status, &r.Attempts, &delivered); err != nil {
			return nil, fmt.Errorf("receipts: %w", err)
		}
		if delivered != nil {
			t := fromMS(*delivered)
			r.DeliveredAt = &t
		}
		out[seq] = append(out[seq], r)
	}
	return out, rows.Err()
}
