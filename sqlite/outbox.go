package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"prefsync"
)

// The statements of the outbox's write path, prepared once (see hotQueries).
const (
	qAddChange   = `INSERT INTO changes (seq, payload) VALUES (?, ?)`
	qAddDelivery = `
		INSERT INTO deliveries (destination, seq, contact_id, version, status, next_at, created_at, retry_from)
		VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)`
	// An attempt never brings back a delivery cancelled (or replayed) meanwhile.
	qRecordAttempt = `
		UPDATE deliveries SET status = ?, attempts = attempts + 1, next_at = ?, last_code = ?,
			last_error = ?, latency_ms = ?, delivered_at = ?
		WHERE id = ? AND status = 'pending'`
)

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(n int64) time.Time { return time.UnixMilli(n).UTC() }

// Destinations implements prefsync.WriteTx. They are read again in the transaction after
// any change to them; the copy is the writer's, so events fan out to exactly the
// destinations committed before them.
func (t *tx) Destinations() ([]*prefsync.Destination, error) {
	if !t.db.destsStale {
		return t.db.dests, nil
	}
	ds, err := readDestinations(t.ctx, t)
	if err != nil {
		return nil, err
	}
	t.db.dests, t.db.destsStale = ds, false
	return ds, nil
}

// QueueChange implements prefsync.WriteTx.
func (t *tx) QueueChange(seq int64, c *prefsync.Contact, body []byte, to []string) error {
	if _, err := t.Exec(qAddChange, seq, string(body)); err != nil {
		return fmt.Errorf("record change %d: %w", seq, err)
	}
	now := ms(t.db.cfg.Now())
	for _, name := range to {
		if _, err := t.Exec(qAddDelivery, name, seq, num(c.ID), c.Version, now, now, now); err != nil {
			return fmt.Errorf("record delivery of %d to %s: %w", seq, name, err)
		}
	}
	return nil
}

func readDestinations(ctx context.Context, q querier) ([]*prefsync.Destination, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT name, kind, url, secrets, filter, status, status_reason, status_since, created_at
		FROM destinations ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read destinations: %w", err)
	}
	defer rows.Close()
	out := []*prefsync.Destination{}
	for rows.Next() {
		d := &prefsync.Destination{}
		var secrets, filter, since, created string
		if err := rows.Scan(&d.Name, &d.Kind, &d.URL, &secrets, &filter, &d.Status, &d.StatusReason, &since, &created); err != nil {
			return nil, err
		}
		if err := errors.Join(json.Unmarshal([]byte(secrets), &d.Secrets), json.Unmarshal([]byte(filter), &d.Filter)); err != nil {
			return nil, fmt.Errorf("destination %s: %w", d.Name, err)
		}
		if d.StatusSince, err = parseTime(since); err != nil {
			return nil, err
		}
		if d.CreatedAt, err = parseTime(created); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Destinations implements prefsync.Store.
func (db *DB) Destinations(ctx context.Context) ([]*prefsync.Destination, error) {
	return readDestinations(ctx, db.read)
}

// CreateDestination implements prefsync.Store.
func (db *DB) CreateDestination(ctx context.Context, d *prefsync.Destination) error {
	secrets, _ := json.Marshal(d.Secrets)
	filter, _ := json.Marshal(d.Filter)
	return db.do(ctx, func(t *tx) error {
		res, err := t.Exec(`
			INSERT INTO destinations (name, kind, url, secrets, filter, status, status_reason, status_since, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			d.Name, d.Kind, d.URL, string(secrets), string(filter), d.Status, d.StatusReason,
			formatTime(d.StatusSince), formatTime(d.CreatedAt))
		if err != nil {
			return fmt.Errorf("create destination %s: %w", d.Name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &prefsync.Error{Code: prefsync.ECONFLICT, Field: "name", Message: fmt.Sprintf("destination %q exists", d.Name)}
		}
		t.db.destsStale = true
		return nil
	})
}

// UpdateDestination implements prefsync.Store.
func (db *DB) UpdateDestination(ctx context.Context, name string, u prefsync.DestinationUpdate) error {
	var sets []string
	var args []any
	if u.Secrets != nil {
		secrets, _ := json.Marshal(*u.Secrets)
		sets, args = append(sets, `secrets = ?`), append(args, string(secrets))
	}
	if u.Status != nil {
		sets, args = append(sets, `status = ?, status_reason = ?, status_since = ?`),
			append(args, *u.Status, u.StatusReason, formatTime(u.StatusSince))
	}
	if len(sets) == 0 {
		return nil
	}
	return db.do(ctx, func(t *tx) error {
		res, err := t.Exec(`UPDATE destinations SET `+strings.Join(sets, `, `)+` WHERE name = ?`, append(args, name)...)
		if err != nil {
			return fmt.Errorf("update destination %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return prefsync.Errorf(prefsync.ENOTFOUND, "no destination %q", name)
		}
		t.db.destsStale = true
		return nil
	})
}

// DeleteDestination implements prefsync.Store.
func (db *DB) DeleteDestination(ctx context.Context, name string) error {
	return db.do(ctx, func(t *tx) error {
		res, err := t.Exec(`DELETE FROM destinations WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("delete destination %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return prefsync.Errorf(prefsync.ENOTFOUND, "no destination %q", name)
		}
		t.db.destsStale = true
		// Dead letters go too: a destination created later with the same name must not
		// be able to replay them.
		if _, err := t.Exec(`UPDATE deliveries SET status = 'cancelled' WHERE destination = ? AND status IN ('pending', 'dead')`, name); err != nil {
			return fmt.Errorf("cancel deliveries to %s: %w", name, err)
		}
		return nil
	})
}

// deliveryColumns are read by scanDelivery, in order.
const deliveryColumns = `d.id, d.destination, d.seq, d.contact_id, d.version, d.status, d.attempts, d.next_at,
	d.last_code, d.last_error, d.latency_ms, d.created_at, d.retry_from, d.delivered_at`

func (db *DB) scanDelivery(rows *sql.Rows, more ...any) (prefsync.Delivery, error) {
	var d prefsync.Delivery
	var contact, next, created, retryFrom int64
	var delivered sql.NullInt64
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
	if delivered.Valid {
		t := fromMS(delivered.Int64)
		d.DeliveredAt = &t
	}
	return d, nil
}

// Deliveries implements prefsync.Store.
func (db *DB) Deliveries(ctx context.Context, f prefsync.DeliveryFilter) ([]prefsync.Delivery, error) {
	where, args := deliveryWhere(f)
	if f.After > 0 {
		where, args = where+` AND d.id > ?`, append(args, f.After)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries d WHERE `+where+
		` ORDER BY d.id LIMIT ?`, append(args, limit)...)
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

// deliveryWhere is the SQL condition of a filter on deliveries d.
func deliveryWhere(f prefsync.DeliveryFilter) (string, []any) {
	conds, args := []string{`d.destination = ?`}, []any{f.Destination}
	switch {
	case f.Status.Known():
		// A literal, not a parameter: only then can SQLite use the partial indexes of
		// pending and dead deliveries.
		conds = append(conds, `d.status = '`+string(f.Status)+`'`)
	case f.Status != "":
		conds = append(conds, `0`)
	}
	if f.ID != 0 {
		conds, args = append(conds, `d.id = ?`), append(args, f.ID)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, `d.created_at >= ?`), append(args, ms(f.Since))
	}
	return strings.Join(conds, ` AND `), args
}

// The due deliveries of a destination with their payloads, oldest or newest first.
const (
	qDueOldest = `SELECT ` + deliveryColumns + `, c.payload FROM deliveries d JOIN changes c ON c.seq = d.seq
		WHERE d.destination = ? AND d.status = 'pending' AND d.next_at <= ? ORDER BY d.next_at LIMIT ?`
	qDueNewest = `SELECT ` + deliveryColumns + `, c.payload FROM deliveries d JOIN changes c ON c.seq = d.seq
		WHERE d.destination = ? AND d.status = 'pending' AND d.next_at <= ? ORDER BY d.next_at DESC LIMIT ?`
)

// DueDeliveries implements prefsync.Store. When more are due than the limit (a backlog),
// a quarter of the batch is the newest due and the rest the oldest.
func (db *DB) DueDeliveries(ctx context.Context, destination string, now time.Time, limit int) ([]prefsync.Delivery, error) {
	out, err := db.withPayloads(ctx, qDueOldest, destination, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due deliveries to %s: %w", destination, err)
	}
	if len(out) < limit {
		return out, nil
	}
	newest, err := db.withPayloads(ctx, qDueNewest, destination, ms(now), max(limit/4, 1))
	if err != nil {
		return nil, fmt.Errorf("due deliveries to %s: %w", destination, err)
	}
	out = out[:limit-len(newest)]
	for _, d := range newest {
		if !slices.ContainsFunc(out, func(o prefsync.Delivery) bool { return o.ID == d.ID }) {
			out = append(out, d)
		}
	}
	return out, nil
}

// withPayloads runs a query for deliveries and their payloads (deliveryColumns and
// c.payload), prepared ahead when it is one of readStmts.
func (db *DB) withPayloads(ctx context.Context, query string, args ...any) ([]prefsync.Delivery, error) {
	var rows *sql.Rows
	var err error
	if st, ok := db.readStmts[query]; ok {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = db.read.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []prefsync.Delivery
	for rows.Next() {
		var payload string
		d, err := db.scanDelivery(rows, &payload)
		if err != nil {
			return nil, err
		}
		d.Payload = []byte(payload)
		out = append(out, d)
	}
	return out, rows.Err()
}

// ProbeDelivery implements prefsync.Store.
func (db *DB) ProbeDelivery(ctx context.Context, destination string) (*prefsync.Delivery, error) {
	ds, err := db.withPayloads(ctx, `SELECT `+deliveryColumns+`, c.payload FROM deliveries d JOIN changes c ON c.seq = d.seq
		WHERE d.destination = ? AND d.status = 'pending' ORDER BY d.next_at LIMIT 1`, destination)
	if err != nil {
		return nil, fmt.Errorf("probe delivery to %s: %w", destination, err)
	}
	if len(ds) == 0 {
		return nil, prefsync.Errorf(prefsync.ENOTFOUND, "no pending delivery to %s", destination)
	}
	return &ds[0], nil
}

// RecordAttempts implements prefsync.Store.
func (db *DB) RecordAttempts(ctx context.Context, attempts []prefsync.Attempt) error {
	return db.do(ctx, func(t *tx) error {
		for _, a := range attempts {
			var delivered any
			if a.Status == prefsync.DeliveryDelivered {
				delivered = ms(a.At)
			}
			if _, err := t.Exec(qRecordAttempt, string(a.Status), ms(a.NextAttemptAt), a.Code, a.Error,
				a.Latency.Milliseconds(), delivered, a.DeliveryID); err != nil {
				return fmt.Errorf("record attempt of delivery %d: %w", a.DeliveryID, err)
			}
		}
		return nil
	})
}

// ReleaseDeliveries implements prefsync.Store.
func (db *DB) ReleaseDeliveries(ctx context.Context, destination string, now time.Time) (int, error) {
	return db.update(ctx, `UPDATE deliveries SET next_at = ?1 WHERE destination = ?2 AND status = 'pending' AND next_at > ?1`,
		ms(now), destination)
}

// ExpireDeliveries implements prefsync.Store. Deliveries are numbered in the order
// they were accepted, so (replays aside) the expired ones are the first few by number:
// the store looks among the oldest pending instead of reading every one.
func (db *DB) ExpireDeliveries(ctx context.Context, destination string, before time.Time) (int, error) {
	var last int64
	err := db.read.QueryRowContext(ctx, `
		SELECT coalesce(max(id), 0) FROM (
			SELECT id, retry_from FROM deliveries WHERE destination = ? AND status = 'pending' ORDER BY id LIMIT 10000
		) WHERE retry_from < ?`, destination, ms(before)).Scan(&last)
	if err != nil || last == 0 {
		return 0, err
	}
	return db.update(ctx, `UPDATE deliveries SET status = 'dead' WHERE destination = ? AND status = 'pending' AND id <= ? AND retry_from < ?`,
		destination, last, ms(before))
}

// ReplayDeliveries implements prefsync.Store.
func (db *DB) ReplayDeliveries(ctx context.Context, f prefsync.DeliveryFilter, now time.Time) (int, error) {
	f.Status = prefsync.DeliveryDead
	where, args := deliveryWhere(f)
	return db.update(ctx, `UPDATE deliveries AS d SET status = 'pending', next_at = ?1, retry_from = ?1 WHERE `+where, append([]any{ms(now)}, args...)...)
}

// update runs one statement in the writer and returns how many rows it changed.
func (db *DB) update(ctx context.Context, query string, args ...any) (int, error) {
	var n int64
	err := db.do(ctx, func(t *tx) error {
		res, err := t.Exec(query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	return int(n), nil
}

// DeliveryStats implements prefsync.Store. It counts from the index of pending
// deliveries and reads one row per destination: the oldest, by number.
func (db *DB) DeliveryStats(ctx context.Context) ([]prefsync.DeliveryStats, error) {
	rows, err := db.read.QueryContext(ctx, `
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
			return nil, fmt.Errorf("delivery stats: %w", err)
		}
		s.OldestPending = fromMS(oldest)
		out = append(out, s)
	}
	return out, rows.Err()
}

// receipts returns what each destination made of the changes of a contact's history,
// by audit entry.
func (db *DB) receipts(ctx context.Context, seqs []int64) (map[int64][]prefsync.Receipt, error) {
	out := map[int64][]prefsync.Receipt{}
	for len(seqs) > 0 {
		chunk := seqs[:min(len(seqs), 500)]
		seqs = seqs[len(chunk):]
		args := make([]any, len(chunk))
		for i, s := range chunk {
			args[i] = s
		}
		rows, err := db.read.QueryContext(ctx, `
			SELECT seq, destination, status, attempts, delivered_at FROM deliveries
			WHERE seq IN (?`+strings.Repeat(`, ?`, len(chunk)-1)+`) ORDER BY seq, destination`, args...)
		if err != nil {
			return nil, fmt.Errorf("receipts: %w", err)
		}
		for rows.Next() {
			var seq int64
			var r prefsync.Receipt
			var delivered sql.NullInt64
			if err := rows.Scan(&seq, &r.Destination, &r.Status, &r.Attempts, &delivered); err != nil {
				rows.Close()
				return nil, fmt.Errorf("receipts: %w", err)
			}
			if delivered.Valid {
				t := fromMS(delivered.Int64)
				r.DeliveredAt = &t
			}
			out[seq] = append(out[seq], r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
