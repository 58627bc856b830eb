package postgres_test

import (
	"context"
	"testing"
	"time"

	"prefsync"
	"prefsync/postgres"
	"prefsync/postgres/pgtest"
	"prefsync/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) prefsync.Store {
		db, err := postgres.Open(context.Background(), postgres.Config{DSN: pgtest.DSN(t), ConflictWindow: time.Second, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
