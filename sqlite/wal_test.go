package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"prefsync"
	"prefsync/sqlite"
	"prefsync/storetest"
)

// The writer never checkpoints; the checkpointer does, and the log starts again from its
// beginning once it passes its limit, however steadily the writer writes. The limit is
// in bytes, whatever the file's page size: 4 KiB for a new file, 1 KiB for a file made
// by an earlier prefsync, which keeps it.
func TestWriteAheadLogStaysBounded(t *testing.T) {
	const limit = 8 << 20
	for _, pageSize := range []int{4096, 1024} {
		t.Run(fmt.Sprint(pageSize), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "prefsync.db")
			if pageSize != 4096 {
				raw, err := sql.Open("sqlite3", path)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := raw.Exec(fmt.Sprintf("PRAGMA page_size = %d; PRAGMA journal_mode = WAL; CREATE TABLE earlier (x); DROP TABLE earlier", pageSize)); err != nil {
					t.Fatal(err)
				}
				raw.Close()
			}
			db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, ConflictWindow: time.Second, WALBytes: limit})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			scope := prefsync.Scope{Channel: "email", Topic: "newsletter"}
			var largest int64
			for b := range 60 {
				events := make([]prefsync.Event, 500)
				for i := range events {
					events[i] = storetest.Event(fmt.Sprintf("u%d.%d@example.com", b, i), scope, prefsync.OptedOut, time.Now())
				}
				if _, _, err := db.ApplyEvents(context.Background(), events); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(path + "-wal")
				if err != nil {
					t.Fatal(err)
				}
				largest = max(largest, fi.Size())
			}
			// 60 batches of new contacts write about 30 MB of pages: without the restart
			// the log holds them all. The checkpointer looks every 50 ms, so the log
			// passes the limit by a few batches before it restarts; a limit counted in
			// pages of the wrong size would be 4 times too high or too low.
			if largest <= limit || largest > 2*limit {
				t.Errorf("the log reached %d bytes; want it past its limit of %d and restarted before twice that", largest, limit)
			}
			main, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if main.Size() < 20<<20 {
				t.Errorf("the database file holds %d bytes while the store is open; want the pages checkpointed into it", main.Size())
			}
			raw, err := sql.Open("sqlite3", path)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var got int
			if err := raw.QueryRow("PRAGMA page_size").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != pageSize {
				t.Errorf("page size %d, want %d", got, pageSize)
			}
		})
	}
}
