package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"prefsync"
)

// channel is where writers announce commits, for other processes to follow.
const channel = "prefsync_changes"

// Cursor is how far a process has followed the database: the last audit entry and the
// last suppression it has applied.
type Cursor struct {
	Audit, Suppression int64
}

// Changes is what other processes committed: contacts to put in the index, merges (old
// id to the survivor's) and suppressions; or, when the process fell too far behind to
// catch up change by change, Reload: load the whole index again.
type Changes struct {
	Contacts     []*prefsync.Contact
	Merged       map[string]string
	Suppressions []prefsync.Suppression
	Reload       bool
}

// Position returns where the database stands now. Taken before the index is loaded and
// given to Follow, it makes sure nothing committed meanwhile is missed.
func (db *DB) Position(ctx context.Context) (Cursor, error) {
	var c Cursor
	err := db.pool.QueryRow(ctx, `SELECT (SELECT seq FROM audit_head), coalesce((SELECT max(seq) FROM suppressions), 0)`).
		Scan(&c.Audit, &c.Suppression)
	return c, err
}

// Follow hands apply what other processes commit after from, until ctx ends: woken by
// their NOTIFY, and every second anyway, so a missed notification costs at most that.
// It reconnects when the database goes away.
func (db *DB) Follow(ctx context.Context, from Cursor, apply func(Changes)) error {
	cur := from
	for ctx.Err() == nil {
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
			conn.Release()
			sleep(ctx, time.Second)
			continue
		}
		for ctx.Err() == nil {
			if cur, err = db.catchUp(ctx, cur, apply); err != nil {
				break
			}
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = conn.Conn().WaitForNotification(wctx)
			cancel()
			if err != nil && ctx.Err() == nil && wctx.Err() == nil {
				break // the connection failed: take another
			}
		}
		conn.Conn().Exec(context.Background(), `UNLISTEN `+channel)
		conn.Release()
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// catchUp applies everything committed after cur and returns the new position.
func (db *DB) catchUp(ctx context.Context, cur Cursor, apply func(Changes)) (Cursor, error) {
	next, err := db.Position(ctx)
	if err != nil || next == cur {
		return cur, err
	}
	var ch Changes
	seen := map[string]bool{} // contacts in ch
	if next.Audit-cur.Audit >= db.cfg.ReloadAfter {
		apply(Changes{Reload: true})
		return next, nil
	}
	if next.Audit > cur.Audit {
		rows, err := db.pool.Query(ctx, `SELECT DISTINCT contact_id FROM audit WHERE seq > $1 AND seq <= $2`, cur.Audit, next.Audit)
		if err != nil {
			return cur, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return cur, err
		}
		rows, err = db.pool.Query(ctx, `SELECT id, merged_into FROM contacts WHERE id = ANY($1) AND merged_into IS NOT NULL`, ids)
		if err != nil {
			return cur, err
		}
		ch.Merged = map[string]string{}
		for rows.Next() {
			var from, into int64
			if err := rows.Scan(&from, &into); err != nil {
				rows.Close()
				return cur, err
			}
			ch.Merged[idOf(from)] = idOf(into)
		}
		rows.Close()
		for _, id := range ids {
			c, err := loadContact(ctx, db.pool, idOf(id), false)
			if err != nil {
				return cur, fmt.Errorf("follow contact %s: %w", idOf(id), err)
			}
			if !seen[c.ID] {
				seen[c.ID] = true
				ch.Contacts = append(ch.Contacts, c)
			}
		}
	}
	if next.Suppression > cur.Suppression {
		rows, err := db.pool.Query(ctx, `SELECT kind, address, reason, source, created_at, lifted_at, lifted_by FROM suppressions
			WHERE seq > $1 AND seq <= $2 ORDER BY seq`, cur.Suppression, next.Suppression)
		if err != nil {
			return cur, err
		}
		for rows.Next() {
			var s prefsync.Suppression
			if err := rows.Scan(&s.Kind, &s.Address, &s.Reason, &s.Source, &s.CreatedAt, &s.LiftedAt, &s.LiftedBy); err != nil {
				rows.Close()
				return cur, err
			}
			ch.Suppressions = append(ch.Suppressions, s)
		}
		rows.Close()
		// The contact with a lifted address comes too: another suppressed address of
		// theirs still counts (Hub.Follow).
		rows, err = db.pool.Query(ctx, `SELECT DISTINCT i.contact_id FROM suppressions s
			JOIN identifiers i ON i.kind = s.kind AND i.value = s.address
			WHERE s.seq > $1 AND s.seq <= $2 AND s.lifted_at IS NOT NULL`, cur.Suppression, next.Suppression)
		if err != nil {
			return cur, err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return cur, err
		}
		for _, id := range ids {
			if seen[idOf(id)] {
				continue
			}
			c, err := loadContact(ctx, db.pool, idOf(id), false)
			if err != nil {
				return cur, fmt.Errorf("follow contact %s: %w", idOf(id), err)
			}
			seen[c.ID] = true
			ch.Contacts = append(ch.Contacts, c)
		}
	}
	apply(ch)
	return next, nil
}
