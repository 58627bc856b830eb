// Package pgtest gives tests an empty PostgreSQL schema of the server named by
// PREFSYNC_TEST_POSTGRES_DSN, and skips them, saying so, when it is unset.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// DSN returns the URL of a new, empty schema, dropped when the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("PREFSYNC_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("PREFSYNC_TEST_POSTGRES_DSN is not set: no PostgreSQL to test against (.ci/run sets it)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at PREFSYNC_TEST_POSTGRES_DSN: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), base); err == nil {
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
