package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"prefsync"
	"prefsync/postgres"
	"prefsync/storetest"
)

// dsn is the test database, from PREFSYNC_TEST_POSTGRES_DSN (.ci/run sets it).
func dsn(t *testing.T) string {
	d := os.Getenv("PREFSYNC_TEST_POSTGRES_DSN")
	if d == "" {
		t.Skip("PREFSYNC_TEST_POSTGRES_DSN is not set: no PostgreSQL to test against (.ci/run sets it)")
	}
	return d
}

// fresh returns the DSN of a new, empty schema, dropped when the test ends.
func fresh(t *testing.T) string {
	t.Helper()
	base := dsn(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestContract(t *testing.T) {
	dsn(t)
	storetest.Run(t, func(t *testing.T, now func() time.Time) prefsync.Store {
		db, err := postgres.Open(context.Background(), postgres.Config{DSN: fresh(t), ConflictWindow: time.Second, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
