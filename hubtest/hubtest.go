// Package hubtest gives tests a hub on a fresh SQLite store, loaded and ready.
package hubtest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"prefsync"
	"prefsync/identifier"
	"prefsync/sqlite"
)

// New returns a hub with the built-in dictionary on a new store in t's temporary
// folder; now is its clock. The store closes when the test ends.
func New(t testing.TB, now func() time.Time) *prefsync.Hub {
	t.Helper()
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "prefsync.db"), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dict := prefsync.DefaultDictionary()
	hub := &prefsync.Hub{Store: store, Index: prefsync.NewIndex(dict), Dict: dict, Normalizer: identifier.Normalizer{}, Now: now}
	if err := hub.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return hub
}
