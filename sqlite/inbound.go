package sqlite

import (
	"context"
	"fmt"

	"prefsync"
)

// CreateInbound implements prefsync.Store.
func (db *DB) CreateInbound(ctx context.Context, in *prefsync.Inbound) error {
	return db.do(ctx, func(t *tx) error {
		res, err := t.Exec(`INSERT INTO inbounds (name, kind, config, secret, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, in.Name, in.Kind, string(in.Config), in.Secret, formatTime(in.CreatedAt))
		if err != nil {
			return fmt.Errorf("create source %s: %w", in.Name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &prefsync.Error{Code: prefsync.ECONFLICT, Field: "name", Message: fmt.Sprintf("source %q exists", in.Name)}
		}
		return nil
	})
}

// Inbounds implements prefsync.Store.
func (db *DB) Inbounds(ctx context.Context) ([]*prefsync.Inbound, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT name, kind, config, secret, created_at FROM inbounds ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	defer rows.Close()
	out := []*prefsync.Inbound{}
	for rows.Next() {
		in := &prefsync.Inbound{}
		var config, created string
		if err := rows.Scan(&in.Name, &in.Kind, &config, &in.Secret, &created); err != nil {
			return nil, fmt.Errorf("read sources: %w", err)
		}
		in.Config = []byte(config)
		if in.CreatedAt, err = parseTime(created); err != nil {
			return nil, fmt.Errorf("source %s: %w", in.Name, err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// DeleteInbound implements prefsync.Store.
func (db *DB) DeleteInbound(ctx context.Context, name string) error {
	n, err := db.update(ctx, `DELETE FROM inbounds WHERE name = ?`, name)
	if err == nil && n == 0 {
		return prefsync.Errorf(prefsync.ENOTFOUND, "no source %q", name)
	}
	return err
}
