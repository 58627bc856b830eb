package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"prefsync"
)

// CreateAPIKey implements prefsync.Store.
func (db *DB) CreateAPIKey(ctx context.Context, k *prefsync.APIKey, bootstrap bool) (bool, error) {
	created := false
	err := db.do(ctx, func(t *tx) error {
		created = false
		if bootstrap {
			res, err := t.Exec(`INSERT INTO meta (key, value) VALUES ('bootstrapped', ?) ON CONFLICT (key) DO NOTHING`, formatTime(k.CreatedAt))
			if err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil
			}
		}
		if _, err := t.Exec(`INSERT INTO api_keys (id, name, scopes, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			k.ID, k.Name, strings.Join(k.Scopes, ","), k.Hash, formatTime(k.CreatedAt)); err != nil {
			if strings.Contains(err.Error(), "UNIQUE") {
				return prefsync.Errorf(prefsync.ECONFLICT, "that key already exists")
			}
			return fmt.Errorf("create key: %w", err)
		}
		created = true
		return nil
	})
	return created, err
}

// FindAPIKey implements prefsync.Store.
func (db *DB) FindAPIKey(ctx context.Context, hash []byte) (*prefsync.APIKey, error) {
	k := &prefsync.APIKey{Hash: hash}
	var scopes, created string
	err := db.read.QueryRowContext(ctx, `SELECT id, name, scopes, created_at FROM api_keys WHERE hash = ? AND revoked_at IS NULL`, hash).
		Scan(&k.ID, &k.Name, &scopes, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, prefsync.Errorf(prefsync.ENOTFOUND, "no such key")
	case err != nil:
		return nil, fmt.Errorf("find key: %w", err)
	}
	k.Scopes = strings.Split(scopes, ",")
	k.CreatedAt, err = parseTime(created)
	return k, err
}

// APIKeys implements prefsync.Store.
func (db *DB) APIKeys(ctx context.Context) ([]*prefsync.APIKey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	out := []*prefsync.APIKey{}
	for rows.Next() {
		k := &prefsync.APIKey{}
		var scopes, created string
		var revoked sql.NullString
		if err := rows.Scan(&k.ID, &k.Name, &scopes, &created, &revoked); err != nil {
			return nil, err
		}
		k.Scopes = strings.Split(scopes, ",")
		if k.CreatedAt, err = parseTime(created); err != nil {
			return nil, err
		}
		if k.RevokedAt, err = parseNullTime(revoked); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey implements prefsync.Store.
func (db *DB) RevokeAPIKey(ctx context.Context, id string, now time.Time) error {
	return db.do(ctx, func(t *tx) error {
		res, err := t.Exec(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, formatTime(now), id)
		if err != nil {
			return fmt.Errorf("revoke key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return prefsync.Errorf(prefsync.ENOTFOUND, "no active key %s", id)
		}
		return nil
	})
}

// AddSuppression implements prefsync.Store.
func (db *DB) AddSuppression(ctx context.Context, in prefsync.Suppression) (prefsync.Suppression, *prefsync.Contact, error) {
	var s prefsync.Suppression
	var c *prefsync.Contact
	err := db.do(ctx, func(t *tx) (err error) {
		s, c, err = prefsync.AddSuppression(t, in, db.cfg.Now().UTC())
		return err
	})
	return s, c, err
}

// Suppression implements prefsync.SuppressionTx.
func (t *tx) Suppression(kind, address string) (*prefsync.Suppression, error) {
	s := prefsync.Suppression{Kind: kind, Address: address}
	var created string
	var lifted sql.NullString
	err := t.QueryRowContext(t.ctx, `SELECT reason, source, created_at, lifted_at, lifted_by FROM suppressions
		WHERE kind = ? AND address = ?`, kind, address).Scan(&s.Reason, &s.Source, &created, &lifted, &s.LiftedBy)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read suppression: %w", err)
	}
	if s.CreatedAt, err = parseTime(created); err != nil {
		return nil, err
	}
	if s.LiftedAt, err = parseNullTime(lifted); err != nil {
		return nil, err
	}
	return &s, nil
}

// SaveSuppression implements prefsync.SuppressionTx.
func (t *tx) SaveSuppression(s prefsync.Suppression) (time.Time, error) {
	var lifted any
	if s.LiftedAt != nil {
		lifted = formatTime(*s.LiftedAt)
	}
	if _, err := t.Exec(`
		INSERT INTO suppressions (kind, address, reason, source, created_at, lifted_at, lifted_by) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, address) DO UPDATE SET reason = excluded.reason, source = excluded.source,
			created_at = excluded.created_at, lifted_at = excluded.lifted_at, lifted_by = excluded.lifted_by`,
		s.Kind, s.Address, s.Reason, s.Source, formatTime(s.CreatedAt), lifted, s.LiftedBy); err != nil {
		return time.Time{}, fmt.Errorf("save suppression: %w", err)
	}
	return s.CreatedAt, nil
}

// Suppressions implements prefsync.Store.
func (db *DB) Suppressions(ctx context.Context) ([]prefsync.Suppression, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT kind, address, reason, source, created_at FROM suppressions
		WHERE lifted_at IS NULL ORDER BY created_at, address`)
	if err != nil {
		return nil, fmt.Errorf("list suppressions: %w", err)
	}
	defer rows.Close()
	out := []prefsync.Suppression{}
	for rows.Next() {
		var s prefsync.Suppression
		var created string
		if err := rows.Scan(&s.Kind, &s.Address, &s.Reason, &s.Source, &created); err != nil {
			return nil, err
		}
		if s.CreatedAt, err = parseTime(created); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// LiftSuppression implements prefsync.Store.
func (db *DB) LiftSuppression(ctx context.Context, kind, address, by string, at time.Time) (prefsync.Suppression, *prefsync.Contact, error) {
	var s prefsync.Suppression
	var c *prefsync.Contact
	err := db.do(ctx, func(t *tx) (err error) {
		s, c, err = prefsync.LiftSuppression(t, kind, address, by, at, db.cfg.Now().UTC())
		return err
	})
	return s, c, err
}

// LinkKeys implements prefsync.Store. The keys are kept in meta as JSON.
func (db *DB) LinkKeys(ctx context.Context, first prefsync.LinkKey) ([]prefsync.LinkKey, error) {
	var keys []prefsync.LinkKey
	err := db.do(ctx, func(t *tx) error {
		keys = nil
		var data string
		err := t.QueryRowContext(t.ctx, `SELECT value FROM meta WHERE key = 'link_keys'`).Scan(&data)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			keys = []prefsync.LinkKey{first}
			b, _ := json.Marshal(keys)
			if _, err := t.Exec(`INSERT INTO meta (key, value) VALUES ('link_keys', ?)`, string(b)); err != nil {
				return fmt.Errorf("store link keys: %w", err)
			}
			return nil
		case err != nil:
			return fmt.Errorf("read link keys: %w", err)
		}
		if err := json.Unmarshal([]byte(data), &keys); err != nil || len(keys) == 0 {
			return fmt.Errorf("read link keys: stored keys do not parse")
		}
		return nil
	})
	return keys, err
}
