package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"prefsync"
)

// CreateAPIKey implements prefsync.Store.
func (db *DB) CreateAPIKey(ctx context.Context, k *prefsync.APIKey, bootstrap bool) (bool, error) {
	created := false
	err := db.write(ctx, func(tx pgx.Tx) error {
		created = false
		if bootstrap {
			tag, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('bootstrapped', $1) ON CONFLICT (key) DO NOTHING`, k.CreatedAt.UTC().Format(time.RFC3339Nano))
			if err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
			if tag.RowsAffected() == 0 {
				return nil
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO api_keys (id, name, scopes, hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
			k.ID, k.Name, strings.Join(k.Scopes, ","), k.Hash, k.CreatedAt); err != nil {
			return fmt.Errorf("create key: %w", err)
		}
		created = true
		return nil
	})
	if prefsync.ErrorCode(err) == prefsync.ECONFLICT {
		err = prefsync.Errorf(prefsync.ECONFLICT, "that key already exists")
	}
	return created, err
}

// FindAPIKey implements prefsync.Store.
func (db *DB) FindAPIKey(ctx context.Context, hash []byte) (*prefsync.APIKey, error) {
	k := &prefsync.APIKey{Hash: hash}
	var scopes string
	err := db.pool.QueryRow(ctx, `SELECT id, name, scopes, created_at FROM api_keys WHERE hash = $1 AND revoked_at IS NULL`, hash).
		Scan(&k.ID, &k.Name, &scopes, &k.CreatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, prefsync.Errorf(prefsync.ENOTFOUND, "no such key")
	case err != nil:
		return nil, reading(fmt.Errorf("find key: %w", err))
	}
	k.Scopes, k.CreatedAt = strings.Split(scopes, ","), k.CreatedAt.UTC()
	return k, nil
}

// APIKeys implements prefsync.Store.
func (db *DB) APIKeys(ctx context.Context) ([]*prefsync.APIKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	out := []*prefsync.APIKey{}
	for rows.Next() {
		k := &prefsync.APIKey{}
		var scopes string
		var revoked *time.Time
		if err := rows.Scan(&k.ID, &k.Name, &scopes, &k.CreatedAt, &revoked); err != nil {
			return nil, err
		}
		k.Scopes, k.CreatedAt = strings.Split(scopes, ","), k.CreatedAt.UTC()
		if revoked != nil {
			t := revoked.UTC()
			k.RevokedAt = &t
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey implements prefsync.Store.
func (db *DB) RevokeAPIKey(ctx context.Context, id string, now time.Time) error {
	return db.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, now, id)
		if err != nil {
			return fmt.Errorf("revoke key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return prefsync.Errorf(prefsync.ENOTFOUND, "no unrevoked key %q", id)
		}
		return nil
	})
}

// AddSuppression implements prefsync.Store. It takes the audit chain's lock, as every
// write that audits does, so reports of one address are recorded in turn.
func (db *DB) AddSuppression(ctx context.Context, in prefsync.Suppression) (prefsync.Suppression, *prefsync.Contact, error) {
	var s prefsync.Suppression
	var c *prefsync.Contact
	err := db.writeChained(ctx, func(t *tx) (err error) {
		s, c, err = prefsync.AddSuppression(t, in, db.cfg.Now().UTC())
		return err
	})
	return s, c, err
}

// Suppression implements prefsync.SuppressionTx: the row is locked until commit.
func (t *tx) Suppression(kind, address string) (*prefsync.Suppression, error) {
	s := prefsync.Suppression{Kind: kind, Address: address}
	err := t.QueryRow(t.ctx, `SELECT reason, source, created_at, lifted_at, lifted_by FROM suppressions
		WHERE kind = $1 AND address = $2 FOR UPDATE`, kind, address).Scan(&s.Reason, &s.Source, &s.CreatedAt, &s.LiftedAt, &s.LiftedBy)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read suppression: %w", err)
	}
	s.CreatedAt = s.CreatedAt.UTC()
	if s.LiftedAt != nil {
		at := s.LiftedAt.UTC()
		s.LiftedAt = &at
	}
	return &s, nil
}

// SaveSuppression implements prefsync.SuppressionTx. The row takes a new number, so that
// the other processes follow the change.
func (t *tx) SaveSuppression(s prefsync.Suppression) (time.Time, error) {
	var created time.Time
	err := t.QueryRow(t.ctx, `
		INSERT INTO suppressions (kind, address, reason, source, created_at, lifted_at, lifted_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (kind, address) DO UPDATE SET reason = excluded.reason, source = excluded.source,
			created_at = excluded.created_at, lifted_at = excluded.lifted_at, lifted_by = excluded.lifted_by,
			seq = nextval(pg_get_serial_sequence('suppressions', 'seq'))
		RETURNING created_at`,
		s.Kind, s.Address, s.Reason, s.Source, s.CreatedAt, s.LiftedAt, s.LiftedBy).Scan(&created)
	if err != nil {
		return time.Time{}, fmt.Errorf("save suppression: %w", err)
	}
	return created.UTC(), nil
}

// Suppressions implements prefsync.Store.
func (db *DB) Suppressions(ctx context.Context) ([]prefsync.Suppression, error) {
	rows, err := db.pool.Query(ctx, `SELECT kind, address, reason, source, created_at FROM suppressions
		WHERE lifted_at IS NULL ORDER BY created_at, address`)
	if err != nil {
		return nil, fmt.Errorf("suppressions: %w", err)
	}
	defer rows.Close()
	out := []prefsync.Suppression{}
	for rows.Next() {
		var s prefsync.Suppression
		if err := rows.Scan(&s.Kind, &s.Address, &s.Reason, &s.Source, &s.CreatedAt); err != nil {
			return nil, err
		}
		s.CreatedAt = s.CreatedAt.UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// LiftSuppression implements prefsync.Store.
func (db *DB) LiftSuppression(ctx context.Context, kind, address, by string, at time.Time) (prefsync.Suppression, *prefsync.Contact, error) {
	var s prefsync.Suppression
	var c *prefsync.Contact
	err := db.writeChained(ctx, func(t *tx) (err error) {
		s, c, err = prefsync.LiftSuppression(t, kind, address, by, at, db.cfg.Now().UTC())
		return err
	})
	return s, c, err
}

// LinkKeys implements prefsync.Store.
func (db *DB) LinkKeys(ctx context.Context, first prefsync.LinkKey) ([]prefsync.LinkKey, error) {
	b, _ := json.Marshal([]prefsync.LinkKey{first})
	var data string
	err := db.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('link_keys', $1) ON CONFLICT (key) DO NOTHING`, string(b)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'link_keys'`).Scan(&data)
	})
	if err != nil {
		return nil, fmt.Errorf("link keys: %w", err)
	}
	var keys []prefsync.LinkKey
	if err := json.Unmarshal([]byte(data), &keys); err != nil || len(keys) == 0 {
		return nil, fmt.Errorf("read link keys: stored keys do not parse")
	}
	return keys, nil
}

// CreateInbound implements prefsync.Store.
func (db *DB) CreateInbound(ctx context.Context, in *prefsync.Inbound) error {
	return db.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO inbounds (name, kind, config, secret, created_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (name) DO NOTHING`, in.Name, in.Kind, string(in.Config), in.Secret, in.CreatedAt)
		if err != nil {
			return fmt.Errorf("create source %s: %w", in.Name, err)
		}
		if tag.RowsAffected() == 0 {
			return &prefsync.Error{Code: prefsync.ECONFLICT, Field: "name", Message: fmt.Sprintf("source %q exists", in.Name)}
		}
		return nil
	})
}

// Inbounds implements prefsync.Store.
func (db *DB) Inbounds(ctx context.Context) ([]*prefsync.Inbound, error) {
	rows, err := db.pool.Query(ctx, `SELECT name, kind, config, secret, created_at FROM inbounds ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	defer rows.Close()
	out := []*prefsync.Inbound{}
	for rows.Next() {
		in := &prefsync.Inbound{}
		var config string
		if err := rows.Scan(&in.Name, &in.Kind, &config, &in.Secret, &in.CreatedAt); err != nil {
			return nil, fmt.Errorf("read sources: %w", err)
		}
		in.Config, in.CreatedAt = []byte(config), in.CreatedAt.UTC()
		out = append(out, in)
	}
	return out, rows.Err()
}

// DeleteInbound implements prefsync.Store.
func (db *DB) DeleteInbound(ctx context.Context, name string) error {
	n, err := db.update(ctx, `DELETE FROM inbounds WHERE name = $1`, name)
	if err == nil && n == 0 {
		return prefsync.Errorf(prefsync.ENOTFOUND, "no source %q", name)
	}
	return err
}

// update runs one statement and returns how many rows it changed.
func (db *DB) update(ctx context.Context, query string, args ...any) (int, error) {
	var n int64
	err := db.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, query, args...)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("write: %w", err)
	}
	return int(n), nil
}
