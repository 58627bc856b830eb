package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

func idempotencyKey(system, key string) *string {
	if key == "" {
		return nil
	}
	k := system + "\x1f" + key
	return &k
}

// SeenIdempotencyKey implements prefsync.WriteTx. The chain's head lock orders writers,
// so the answer holds until commit.
func (t *tx) SeenIdempotencyKey(ev *prefsync.Event) (int64, string, error) {
	key := idempotencyKey(ev.Source.System, ev.IdempotencyKey)
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
	key := idempotencyKey(r.Source.System, r.IdempotencyKey)
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
	var rep prefsync.AuditReport
	var prev []byte
	want := int64(1)
	for rows.Next() {
		var seq, contactNum int64
		var status, body string
		var key, personal *string
		var hash, salt []byte
		if err := rows.Scan(&seq, &contactNum, &status, &key, &body, &hash, &salt, &personal); err != nil {
			return rep, err
		}
		if seq != want {
			rep.BadSeq, rep.Problem = want, fmt.Sprintf("entry %d is missing", want)
			return rep, nil
		}
		var data []byte
		if personal != nil {
			data = []byte(*personal)
		}
		next, err := prefsync.VerifyLink(prev, seq, []byte(body), hash, salt, data)
		if err == nil {
			var r prefsync.ChainRecord
			json.Unmarshal([]byte(body), &r)
			k := idempotencyKey(r.Source.System, r.IdempotencyKey)
			if r.ContactID != idOf(contactNum) || string(r.Status) != status || (k == nil) != (key == nil) || (k != nil && *k != *key) {
				err = fmt.Errorf("the row's contact, status or idempotency key differs from the chained content")
			}
		}
		if err != nil {
			rep.BadSeq, rep.Problem = seq, err.Error()
			return rep, nil
		}
		prev, want = next, want+1
		rep.Entries++
	}
	if err := rows.Err(); err != nil {
		return rep, err
	}
	rep.OK, rep.Head = true, hex.EncodeToString(prev)
	return rep, nil
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
