package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"prefsync"
)

// ApplyEvents implements prefsync.Store.
func (db *DB) ApplyEvents(ctx context.Context, events []prefsync.Event) ([]prefsync.EventResult, []*prefsync.Contact, error) {
	var results []prefsync.EventResult
	var changed []*prefsync.Contact
	err := db.do(ctx, func(t *tx) error {
		var err error
		results, changed, err = t.applyEvents(events)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return results, changed, nil
}

func (t *tx) applyEvents(events []prefsync.Event) ([]prefsync.EventResult, []*prefsync.Contact, error) {
	cache := map[string]*prefsync.Contact{}
	dirty := map[string]bool{}
	var order []*prefsync.Contact
	results := make([]prefsync.EventResult, len(events))
	for i := range events {
		ev := &events[i]
		c, attached, err := t.contactFor(ev.Subject.ContactID, ev.Subject.Identifiers(), cache)
		if err != nil {
			return nil, nil, prefsync.WithFieldPrefix(err, fmt.Sprintf("events[%d].subject", i))
		}
		if !dirty[c.ID] && attached {
			dirty[c.ID] = true
			order = append(order, c)
		}
		var status prefsync.Status
		var reason string
		seq, dup, err := t.seenIdempotencyKey(ev)
		if err != nil {
			return nil, nil, err
		}
		if dup {
			status, reason = prefsync.Duplicate, fmt.Sprintf("%s: first recorded as entry %d", prefsync.ReasonDuplicateIdempotency, seq)
		} else {
			status, reason = c.State.Apply(ev, t.db.nextSeq, t.db.cfg.ConflictWindow)
		}
		if status == prefsync.Applied {
			c.Version++
			c.UpdatedAt = t.db.cfg.Now().UTC()
			if !dirty[c.ID] {
				dirty[c.ID] = true
				order = append(order, c)
			}
		}
		r := prefsync.NewChainRecord(ev, c.ID, status, reason, c.Version)
		p := &prefsync.Personal{Subject: ev.Subject, IP: ev.Evidence.IP, UserAgent: ev.Evidence.UserAgent}
		seq, err = t.appendAudit(&r, p)
		if err != nil {
			return nil, nil, err
		}
		results[i] = prefsync.EventResult{Status: status, Reason: reason, ContactID: c.ID, Version: c.Version, Seq: seq}
	}
	for _, c := range order {
		if err := t.saveContact(c); err != nil {
			return nil, nil, err
		}
	}
	return results, order, nil
}

const (
	qSeenIdempotency = `SELECT seq FROM audit WHERE idempotency_key = ? AND status <> 'duplicate'`
	qAppendAudit     = `
		INSERT INTO audit (seq, contact_id, status, idempotency_key, body, hash, salt, subject, ip, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// hotQueries are prepared on the writer's connection when the store opens.
var hotQueries = []string{qContact, qFindIdentifier, qAddIdentifier, qSaveContact, qSeenIdempotency, qAppendAudit}

// idempotencyKey scopes a client's key to its source system.
func idempotencyKey(ev *prefsync.Event) any {
	if ev.IdempotencyKey == "" {
		return nil
	}
	return ev.Source.System + "\x1f" + ev.IdempotencyKey
}

func (t *tx) seenIdempotencyKey(ev *prefsync.Event) (int64, bool, error) {
	key := idempotencyKey(ev)
	if key == nil {
		return 0, false, nil
	}
	var seq int64
	err := t.QueryRowContext(t.ctx, qSeenIdempotency, key).Scan(&seq)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("idempotency key: %w", err)
	}
	return seq, true, nil
}

// appendAudit chains a record after the current head. p, the entry's personal data, is
// stored apart and committed to by a salted digest.
func (t *tx) appendAudit(r *prefsync.ChainRecord, p *prefsync.Personal) (int64, error) {
	r.Seq = t.db.nextSeq
	if p != nil {
		p.Salt = make([]byte, 16)
		rand.Read(p.Salt)
		r.PersonalDigest = p.Digest()
	}
	body, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	hash := prefsync.ChainHash(t.db.head, body)
	var key any
	if r.IdempotencyKey != "" {
		key = r.Source.System + "\x1f" + r.IdempotencyKey
	}
	var salt, subj, ip, ua any
	if p != nil {
		s, _ := json.Marshal(p.Subject)
		salt, subj, ip, ua = p.Salt, string(s), p.IP, p.UserAgent
	}
	if _, err := t.Exec(qAppendAudit, r.Seq, num(r.ContactID), string(r.Status), key, string(body), hash, salt, subj, ip, ua); err != nil {
		return 0, fmt.Errorf("append audit: %w", err)
	}
	t.db.head, t.db.nextSeq = hash, t.db.nextSeq+1
	return r.Seq, nil
}

// History implements prefsync.Store.
func (db *DB) History(ctx context.Context, contactID string) ([]prefsync.AuditEntry, error) {
	c, err := loadContact(ctx, db.read, contactID)
	if err != nil {
		return nil, err
	}
	// A merged contact's history includes the history of those merged into it.
	rows, err := db.read.QueryContext(ctx, `
		SELECT seq, body, salt, subject, ip, user_agent FROM audit
		WHERE contact_id = ? OR contact_id IN (SELECT id FROM contacts WHERE merged_into = ?)
		ORDER BY seq`, num(c.ID), num(c.ID))
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", c.ID, err)
	}
	defer rows.Close()
	out := []prefsync.AuditEntry{}
	for rows.Next() {
		var seq int64
		var body string
		var salt []byte
		var subj, ip, ua sql.NullString
		if err := rows.Scan(&seq, &body, &salt, &subj, &ip, &ua); err != nil {
			return nil, err
		}
		var r prefsync.ChainRecord
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return nil, fmt.Errorf("history entry %d: %w", seq, err)
		}
		var p *prefsync.Personal
		if subj.Valid {
			p = &prefsync.Personal{Salt: salt, IP: ip.String, UserAgent: ua.String}
			json.Unmarshal([]byte(subj.String), &p.Subject)
		}
		out = append(out, r.Entry(p))
	}
	return out, rows.Err()
}

// VerifyAudit implements prefsync.Store.
func (db *DB) VerifyAudit(ctx context.Context) (prefsync.AuditReport, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT seq, contact_id, body, hash, salt, subject, ip, user_agent FROM audit ORDER BY seq`)
	if err != nil {
		return prefsync.AuditReport{}, fmt.Errorf("verify audit: %w", err)
	}
	defer rows.Close()
	var rep prefsync.AuditReport
	var prev []byte
	want := int64(1)
	for rows.Next() {
		var seq, contactNum int64
		var body string
		var hash, salt []byte
		var subj, ip, ua sql.NullString
		if err := rows.Scan(&seq, &contactNum, &body, &hash, &salt, &subj, &ip, &ua); err != nil {
			return rep, err
		}
		var p *prefsync.Personal
		if subj.Valid {
			p = &prefsync.Personal{Salt: salt, IP: ip.String, UserAgent: ua.String}
			if err := json.Unmarshal([]byte(subj.String), &p.Subject); err != nil {
				rep.BadSeq, rep.Problem = seq, "personal data is not readable"
				return rep, nil
			}
		}
		if seq != want {
			rep.BadSeq, rep.Problem = want, fmt.Sprintf("entry %d is missing", want)
			return rep, nil
		}
		next, err := prefsync.VerifyLink(prev, seq, []byte(body), hash, p)
		if err == nil {
			var r prefsync.ChainRecord
			json.Unmarshal([]byte(body), &r)
			if r.ContactID != idOf(contactNum) {
				err = fmt.Errorf("row names contact %s, the chained content %s", idOf(contactNum), r.ContactID)
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
