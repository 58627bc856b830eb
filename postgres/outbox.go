package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"prefsync"
)

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(n int64) time.Time { return time.UnixMilli(n).UTC() }

// Destinations implements prefsync.WriteTx: read once a transaction.
func (t *tx) Destinations() ([]*prefsync.Destination, error) {
	if t.dests == nil {
		var err error
		if t.dests, err = readDestinations(t.ctx, t); err != nil {
			return nil, err
		}
	}
	return t.dests, nil
}

// QueueChange implements prefsync.WriteTx.
func (t *tx) QueueChange(seq int64, c *prefsync.Contact, body []byte, to []string) error {
	if _, err := t.Exec(t.ctx, `INSERT INTO changes (seq, payload) VALUES ($1, $2)`, seq, string(body)); err != nil {
		return fmt.Errorf("record change %d: %w", seq, err)
	}
	now := ms(t.db.cfg.Now())
	for _, name := range to {
		if _, err := t.Exec(t.ctx, `INSERT INTO deliveries (destination, seq, contact_id, version, status, next_at, created_at, retry_from)
			VALUES ($1, $2, $3, $4, 'pending', $5, $5, $5)`, name, seq, num(c.ID), c.Version, now); err != nil {
			return fmt.Errorf("record delivery of %d to %s: %w", seq, name, err)
		}
	}
	return nil
}

func readDestinations(ctx context.Context, q querier) ([]*prefsync.Destination, error) {
	rows, err := q.Query(ctx, `SELECT name, kind, url, secrets, filter, status, status_reason, status_since, created_at
		FROM destinations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read destinations: %w", err)
	}
	defer rows.Close()
	out := []*prefsync.Destination{}
	for rows.Next() {
		d := &prefsync.Destination{}
		var secrets, filter string
		if err := rows.Scan(&d.Name, &d.Kind, &d.URL, &secrets, &filter, &d.Status, &d.StatusReason, &d.StatusSince, &d.CreatedAt); err != nil {
			return nil, err
		}
		if err := errors.Join(json.Unmarshal([]byte(secrets), &d.Secrets), json.Unmarshal([]byte(filter), &d.Filter)); err != nil {
			return nil, fmt.Errorf("destination %s: %w", d.Name, err)
		}
		d.StatusSince, d.CreatedAt = d.StatusSince.UTC(), d.CreatedAt.UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// Destinations implements prefsync.Store.
func (db *DB) Destinations(ctx context.Context) ([]*prefsync.Destination, error) {
	return readDestinations(ctx, db.pool)
}

// CreateDestination implements prefsync.Store.
func (db *DB) CreateDestination(ctx context.Context, d *prefsync.Destination) error {
	secrets, _ := json.Marshal(d.Secrets)
	filter, _ := json.Marshal(d.Filter)
	return db.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO destinations (name, kind, url, secrets, filter, status, status_reason, status_since, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING`,
			d.Name, d.Kind, d.URL, string(secrets), string(filter), d.Status, d.StatusReason, d.StatusSince, d.CreatedAt)
		if err != nil {
			return fmt.Errorf("create destination %s: %w", d.Name, err)
		}
		if tag.RowsAffected() == 0 {
			return &prefsync.Error{Code: prefsync.ECONFLICT, Field: "name", Message: fmt.Sprintf("destination %q exists", d.Name)}
		}
		return nil
	})
}

// UpdateDestination implements prefsync.Store.
func (db *DB) UpdateDestination(ctx context.Context, name string, u prefsync.DestinationUpdate) error {
	var sets []string
	var args []any
	if u.Secrets != nil {
		secrets, _ := json.Marshal(*u.Secrets)
		args = append(args, string(secrets))
		sets = append(sets, "secrets = $"+strconv.Itoa(len(args)))
	}
	if u.Status != nil {
		args = append(args, *u.Status, u.StatusReason, u.StatusSince)
		n := len(args)
		sets = append(sets, fmt.Sprintf("status = $%d, status_reason = $%d, status_since = $%d", n-2, n-1, n))
	}
	if len(sets) == 0 {
		return nil
	}
	args = append(args, name)
	n, err := db.update(ctx, `UPDATE destinations SET `+strings.Join(sets, ", ")+` WHERE name = $`+strconv.Itoa(len(args)), args...)
	if err == nil && n == 0 {
		return prefsync.Errorf(prefsync.ENOTFOUND, "no destination %q", name)
	}
	return err
}

// DeleteDestination implements prefsync.Store.
func (db *DB) DeleteDestination(ctx context.Context, name string) error {
	return db.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM destinations WHERE name = $1`, name)
		if err != nil {
			return fmt.Errorf("delete destination %s: %w", name, err)
		}
		if tag.RowsAffected() == 0 {
			return prefsync.Errorf(prefsync.ENOTFOUND, "no destination %q", name)
		}
		_, err = tx.Exec(ctx, `UPDATE deliveries SET status = 'cancelled' WHERE destination = $1 AND status IN ('pending', 'dead')`, name)
		return err
	})
}

const deliveryColumns = `d.id, d.destination, d.seq, d.contact_id, d.version, d.status, d.attempts, d.next_at,
	d.last_code, d.last_error, d.latency_ms, d.created_at, d.retry_from, d.delivered_at`

func (db *DB) scanDelivery(rows pgx.Rows, more ...any) (prefsync.Delivery, error) {
	var d prefsync.Delivery
	var contact, next, created, retryFrom int64
	var delivered *int64
	err := rows.Scan(append([]any{&d.ID, &d.Destination, &d.Seq, &contact, &d.Version, &d.Status, &d.Attempts, &next,
		&d.LastCode, &d.LastError, &d.LatencyMS, &created, &retryFrom, &delivered}, more...)...)
	if err != nil {
		return d, err
	}
	d.MessageID = "msg_" + db.storeID + "_" + strconv.FormatInt(d.ID, 10)
	d.ContactID, d.CreatedAt, d.RetryFrom = idOf(contact), fromMS(created), fromMS(retryFrom)
	if d.Status == prefsync.DeliveryPending {
		t := fromMS(next)
		d.NextAttemptAt = &t
	}
	if delivered != nil {
		t := fromMS(*delivered)
		d.DeliveredAt = &t
	}
	return d, nil
}

// deliveryWhere is the SQL condition of a filter on deliveries d; its parameters
// follow those already in args.
func deliveryWhere(f prefsync.DeliveryFilter, args []any) (string, []any) {
	args = append(args, f.Destination)
	conds := []string{"d.destination = $" + strconv.Itoa(len(args))}
	switch {
	case f.Status.Known():
		conds = append(conds, `d.status = '`+string(f.Status)+`'`)
	case f.Status != "":
		conds = append(conds, `false`)
	}
	if f.ID != 0 {
		args = append(args, f.ID)
		conds = append(conds, "d.id = $"+strconv.Itoa(len(args)))
	}
	if !f.Since.IsZero() {
		args = append(args, ms(f.Since))
		conds = append(conds, "d.created_at >= $"+strconv.Itoa(len(args)))
	}
	return strings.Join(conds, " AND "), args
}

// Deliveries implements prefsync.Store.
func (db *DB) Deliveries(ctx context.Context, f prefsync.DeliveryFilter) ([]prefsync.Delivery, error) {
	where, args := deliveryWhere(f, nil)
	if f.After > 0 {
		args = append(args, f.After)
		where += " AND d.id > $" + strconv.Itoa(len(args))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries d WHERE `+where+` ORDER BY d.id LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	out := []prefsync.Delivery{}
	for rows.Next() {
		d, err := db.scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// claim takes up to limit due deliveries of a destination that no other process holds
// (SKIP LOCKED), pushing their next attempt a lease ahead so that they are this
// process's until it records them or the lease runs out.
func (db *DB) claim(ctx context.Context, destination string, now time.Time, limit int, newest bool) ([]prefsync.Delivery, error) {
	order := "next_at"
	if newest {
		order = "next_at DESC"
	}
	var out []prefsync.Delivery
	err := db.write(ctx, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `
			WITH due AS (
				SELECT id FROM deliveries WHERE destination = $1 AND status = 'pending' AND next_at <= $2
				ORDER BY `+order+` LIMIT $3 FOR UPDATE SKIP LOCKED
			)
			UPDATE deliveries d SET next_at = $4 FROM due, changes c
			WHERE d.id = due.id AND c.seq = d.seq
			RETURNING `+deliveryColumns+`, c.payload`, destination, ms(now), limit, ms(now.Add(db.cfg.ClaimLease)))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var payload string
			d, err := db.scanDelivery(rows, &payload)
			if err != nil {
				return err
			}
			d.Payload = []byte(payload)
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("due deliveries to %s: %w", destination, err)
	}
	return out, nil
}

// DueDeliveries implements prefsync.Store: the deliveries returned are claimed for a
// lease. When a backlog fills the batch, a quarter of it is the newest due.
func (db *DB) DueDeliveries(ctx context.Context, destination string, now time.Time, limit int) ([]prefsync.Delivery, error) {
	out, err := db.claim(ctx, destination, now, limit, false)
	if err != nil || len(out) < limit {
		return out, err
	}
	newest, err := db.claim(ctx, destination, now, max(limit/4, 1), true)
	return append(out, newest...), err
}

// ProbeDelivery implements prefsync.Store.
func (db *DB) ProbeDelivery(ctx context.Context, destination string) (*prefsync.Delivery, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+deliveryColumns+`, c.payload FROM deliveries d JOIN changes c ON c.seq = d.seq
		WHERE d.destination = $1 AND d.status = 'pending' ORDER BY d.next_at LIMIT 1`, destination)
	if err != nil {
		return nil, fmt.Errorf("probe delivery to %s: %w", destination, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, prefsync.Errorf(prefsync.ENOTFOUND, "no pending delivery to %s", destination)
	}
	var payload string
	d, err := db.scanDelivery(rows, &payload)
	if err != nil {
		return nil, err
	}
	d.Payload = []byte(payload)
	return &d, nil
}

// RecordAttempts implements prefsync.Store.
func (db *DB) RecordAttempts(ctx context.Context, attempts []prefsync.Attempt) error {
	return db.write(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, a := range attempts {
			var delivered *int64
			if a.Status == prefsync.DeliveryDelivered {
				t := ms(a.At)
				delivered = &t
			}
			b.Queue(`UPDATE deliveries SET status = $1, attempts = attempts + 1, next_at = $2, last_code = $3,
				last_error = $4, latency_ms = $5, delivered_at = $6 WHERE id = $7 AND status = 'pending'`,
				string(a.Status), ms(a.NextAttemptAt), a.Code, a.Error, a.Latency.Milliseconds(), delivered, a.DeliveryID)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// ReleaseDeliveries implements prefsync.Store.
func (db *DB) ReleaseDeliveries(ctx context.Context, destination string, now time.Time) (int, error) {
	return db.update(ctx, `UPDATE deliveries SET next_at = $1 WHERE destination = $2 AND status = 'pending' AND next_at > $1`, ms(now), destination)
}

// ExpireDeliveries implements prefsync.Store.
func (db *DB) ExpireDeliveries(ctx context.Context, destination string, before time.Time) (int, error) {
	return db.update(ctx, `UPDATE deliveries SET status = 'dead' WHERE destination = $1 AND status = 'pending' AND retry_from < $2`,
		destination, ms(before))
}

// ReplayDeliveries implements prefsync.Store.
func (db *DB) ReplayDeliveries(ctx context.Context, f prefsync.DeliveryFilter, now time.Time) (int, error) {
	f.Status = prefsync.DeliveryDead
	where, args := deliveryWhere(f, []any{ms(now)})
	return db.update(ctx, `UPDATE deliveries AS d SET status = 'pending', next_at = $1, retry_from = $1 WHERE `+where, args...)
}

// DeliveryStats implements prefsync.Store.
func (db *DB) DeliveryStats(ctx context.Context) ([]prefsync.DeliveryStats, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT p.destination, p.n, d.created_at FROM (
			SELECT destination, count(*) AS n, min(id) AS oldest FROM deliveries WHERE status = 'pending' GROUP BY destination
		) p JOIN deliveries d ON d.id = p.oldest`)
	if err != nil {
		return nil, fmt.Errorf("delivery stats: %w", err)
	}
	defer rows.Close()
	var out []prefsync.DeliveryStats
	for rows.Next() {
		var s prefsync.DeliveryStats
		var oldest int64
		if err := rows.Scan(&s.Destination, &s.Pending, &oldest); err != nil {
			return nil, err
		}
		s.OldestPending = fromMS(oldest)
		out = append(out, s)
	}
	return out, rows.Err()
}
