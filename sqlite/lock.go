package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on path (created if missing) for as long as the
// returned file stays open. The lock is advisory (flock), apart from SQLite's own
// locks on the database, and the system releases it when the process ends, however it
// ends: no stale lock outlives a crashed hub.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("another prefsync process is serving this database (only one hub may serve a database file; use PostgreSQL to run several)")
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

func closeLock(f *os.File) {
	if f != nil {
		f.Close()
	}
}
