// Package postgres is prefsync's PostgreSQL store: the same contract as the embedded
// store, for several hub processes sharing one database. Writers that append to the
// audit trail serialize on the chain's head row, so the chain, contact versions and
// idempotency keys stay exact across processes.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"prefsync"
)

//go:embed migration/*.sql
var migrations embed.FS

// Config configures the store.
type Config struct {
	// DSN is the database's postgres:// URL.
	DSN string
	// ConflictWindow is rule 1's tie window.
	ConflictWindow time.Duration
	// Now is injected for tests; it defaults to the clock.
	Now func() time.Time
	// ClaimLease is how long a delivery a process took stays its own [1m]: a process
	// that dies with deliveries in hand leaves them to the others after it. It must
	// outlast an attempt.
	ClaimLease time.Duration
	// StartupWait is how long Open keeps trying a database that does not answer, with
	// growing pauses, before it gives up [30s].
	StartupWait time.Duration
	// StatementTimeout bounds every statement [30s], unless the URL sets
	// statement_timeout; the pool's size comes from the URL (pool_max_conns).
	StatementTimeout time.Duration
	// ReloadAfter is how many audit entries behind makes Follow ask for a reload of the
	// whole index [100000] instead of catching up one contact at a time.
	ReloadAfter int64
}

// DB is the PostgreSQL store.
type DB struct {
	cfg     Config
	pool    *pgxpool.Pool
	storeID string
}

var _ prefsync.Store = (*DB)(nil)

// Open connects and migrates. Two processes starting together migrate one at a time.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClaimLease <= 0 {
		cfg.ClaimLease = time.Minute
	}
	if cfg.StartupWait <= 0 {
		cfg.StartupWait = 30 * time.Second
	}
	if cfg.ReloadAfter <= 0 {
		cfg.ReloadAfter = 100_000
	}
	if cfg.StatementTimeout <= 0 {
		cfg.StatementTimeout = 30 * time.Second
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if _, ok := pc.ConnConfig.RuntimeParams["statement_timeout"]; !ok {
		pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		// A database that is gone fails requests fast (503) rather than hanging them.
		pc.ConnConfig.ConnectTimeout = 3 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	db := &DB{cfg: cfg, pool: pool}
	// A database that is starting (or restarting) gets time to answer.
	deadline := time.Now().Add(cfg.StartupWait)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err = pool.Ping(ctx)
		if err == nil || time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("the database does not answer after %s: %w", cfg.StartupWait, err)
	}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'store_id'`).Scan(&db.storeID); err != nil {
		pool.Close()
		return nil, fmt.Errorf("read store id: %w", err)
	}
	return db, nil
}

// Close releases the connections.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// migrationLock is the advisory lock migrations hold.
const migrationLock = 0x70726566 // "pref"

func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migration/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		for _, name := range names {
			v, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "migration/"), "_", 2)[0])
			if err != nil {
				return fmt.Errorf("migration %s: name must start with its number", name)
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, v).Scan(&done); err != nil {
				return err
			}
			if done {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, v, db.cfg.Now()); err != nil {
				return err
			}
		}
		return nil
	})
}

// write runs fn in a transaction and commits it. An unreachable database is
// EUNAVAILABLE: the request fails fast and can be retried.
func (db *DB) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, db.pool, fn)
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case err == nil, prefsync.ErrorCode(err) != prefsync.EINTERNAL:
		return err
	case errors.As(err, &ce), errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return prefsync.Errorf(prefsync.EUNAVAILABLE, "the database is unreachable")
	case errors.As(err, &pe) && pe.Code == "23505":
		return &prefsync.Error{Code: prefsync.ECONFLICT, Message: "it exists already"}
	}
	return err
}

// reading classifies a read's error: a database that cannot be reached is
// EUNAVAILABLE (503), not an internal error.
func reading(err error) error {
	var ce *pgconn.ConnectError
	if err != nil && prefsync.ErrorCode(err) == prefsync.EINTERNAL && (errors.As(err, &ce) || pgconn.SafeToRetry(err)) {
		return &prefsync.Error{Code: prefsync.EUNAVAILABLE, Message: "the database is unreachable"}
	}
	return err
}

func num(id string) int64 {
	n, _ := prefsync.ContactNumber(id)
	return int64(n)
}

func idOf(n int64) string { return prefsync.ContactIDFromNumber(uint64(n)) }
