// Package sqlite is prefsync's embedded store: one SQLite file, written by a single
// goroutine that commits concurrent requests together (group commit), each durable
// (fsync) before its caller returns.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"prefsync"
)

// Two drivers, for the writer's connection and the others. The writer's sets the page
// size of a new file before WAL mode fixes it (an existing file keeps its own). 4 KiB,
// the file system's block, beat 1 KiB though a random update logs four times the bytes:
// with 1 KiB pages the kernel spent 7 % of the hub's CPU preparing the partial blocks
// they were written into (4 % with 4 KiB pages, whose log frames, 24 bytes longer,
// still straddle blocks), and the file of 1M contacts was 2.2 GB against 1.6 GB
// (BENCHMARKS.md has the speed it measured, with a larger log limit). It never
// checkpoints: the checkpointer does, on its own connection.
const (
	writerDriver = "sqlite3_prefsync_writer"
	readerDriver = "sqlite3_prefsync_reader"
)

func init() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA mmap_size = 4294967296; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0", nil)
		return err
	}})
	sql.Register(readerDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA mmap_size = 4294967296", nil)
		return err
	}})
}

//go:embed migration/*.sql
var migrations embed.FS

// Config configures the store.
type Config struct {
	// Path is the database file; it is created when missing.
	Path string
	// ConflictWindow is rule 1's tie window.
	ConflictWindow time.Duration
	// Now is injected for tests; it defaults to the clock.
	Now func() time.Time
	// MaxBatch caps how many write requests one transaction commits together.
	MaxBatch int
	// MustExist refuses to create a new file: for commands that inspect a store.
	MustExist bool
	// Exclusive keeps other processes that ask for it out of the file while the store
	// is open: a hub keeps the head of the audit chain and its check index in memory,
	// so a second hub on the same file would fork the chain and miss the first's writes.
	// Commands that only read, or write no events (keys, deliveries), do not ask.
	Exclusive bool
	// WALBytes is how many bytes of pages the write-ahead log may hold before the writer
	// makes it start again from its beginning; it defaults to 256 MiB. Each restart
	// holds the writer for the last pages' copy and the database file's fsync: at a
	// 16 MiB limit, random-contact batches restarted the log every 0.3 s, for 55-81 ms
	// each, a fifth of the writer's time; at 256 MiB every 2.4 s, for 66-137 ms.
	WALBytes int64
}

// DB is the embedded store.
type DB struct {
	cfg    Config
	read   *sql.DB
	write  *sql.DB
	lock   *os.File // held while the store is open, when cfg.Exclusive
	reqs   chan *request
	closed chan struct{}
	done   chan struct{}

	// The checkpointer's connection, its wake-up after each commit, and its request
	// that the writer restart the log.
	ckpt       *sql.DB
	ckptWake   chan struct{}
	ckptDone   chan struct{}
	restartWAL atomic.Bool

	// Owned by the writer goroutine (readStmts and storeID are set once at open).
	head       []byte
	nextSeq    int64
	lastNumber uint64
	stmts      map[string]*sql.Stmt
	// readStmts are prepared on the read pool: the dispatcher's frequent queries.
	readStmts  map[string]*sql.Stmt
	dests      []*prefsync.Destination
	destsStale bool

	// storeID makes the webhook ids of this store's deliveries unique across stores.
	storeID string
	// pageSize is the file's page size in bytes, the unit of the log's length.
	pageSize int64
}

var _ prefsync.Store = (*DB)(nil)

type request struct {
	fn  func(*tx) error
	err chan error
}

// Open opens (creating if needed) and migrates the database at cfg.Path.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.WALBytes <= 0 {
		cfg.WALBytes = 256 << 20
	}
	fi, err := os.Stat(cfg.Path)
	switch {
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("open database %s: it is a directory", cfg.Path)
	case err != nil && cfg.MustExist:
		return nil, fmt.Errorf("open database %s: %w", cfg.Path, err)
	}
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("open database %s: its folder: %w", cfg.Path, err)
		}
	}
	var lock *os.File
	if cfg.Exclusive {
		if lock, err = lockFile(cfg.Path + "-lock"); err != nil {
			return nil, fmt.Errorf("open database %s: %w", cfg.Path, err)
		}
	}
	// synchronous(FULL) fsyncs the WAL at every commit: an acknowledged write is on disk.
	// A large page cache, memory-mapped reads and in-memory statement journals keep the
	// writer out of syscalls other than the WAL append and its fsync.
	// Readers only read: setting the journal mode on each new reader would wait for the
	// writer's lock.
	file := "file:" + cfg.Path + "?_busy_timeout=10000"
	write, err := sql.Open(writerDriver, file+"&_synchronous=FULL&_cache_size=-131072&_txlock=immediate")
	if err != nil {
		closeLock(lock)
		return nil, fmt.Errorf("open database %s: %w", cfg.Path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open(readerDriver, file+"&_query_only=1")
	if err != nil {
		write.Close()
		closeLock(lock)
		return nil, fmt.Errorf("open database %s: %w", cfg.Path, err)
	}
	read.SetMaxOpenConns(8)
	ckpt, err := sql.Open(readerDriver, file)
	if err != nil {
		write.Close()
		read.Close()
		closeLock(lock)
		return nil, fmt.Errorf("open database %s: %w", cfg.Path, err)
	}
	ckpt.SetMaxOpenConns(1)
	db := &DB{cfg: cfg, read: read, write: write, lock: lock, reqs: make(chan *request, 1024),
		closed: make(chan struct{}), done: make(chan struct{}), destsStale: true,
		ckpt: ckpt, ckptWake: make(chan struct{}, 1), ckptDone: make(chan struct{})}
	fail := func(err error) (*DB, error) {
		db.read.Close()
		db.write.Close()
		db.ckpt.Close()
		closeLock(lock)
		return nil, fmt.Errorf("open database %s: %w", cfg.Path, err)
	}
	if err := db.migrate(ctx); err != nil {
		return fail(err)
	}
	if err := db.loadHead(ctx); err != nil {
		return fail(err)
	}
	// The writer's one connection is busy inside every transaction, so its hot
	// statements are prepared now, while it is free. The read pool's are the
	// dispatcher's frequent queries.
	if db.stmts, err = prepare(ctx, db.write, hotQueries); err != nil {
		return fail(err)
	}
	if db.readStmts, err = prepare(ctx, db.read, []string{qDueOldest, qDueNewest}); err != nil {
		return fail(err)
	}
	go db.writer()
	go db.checkpointer()
	return db, nil
}

func prepare(ctx context.Context, pool *sql.DB, queries []string) (map[string]*sql.Stmt, error) {
	out := map[string]*sql.Stmt{}
	for _, q := range queries {
		st, err := pool.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		out[q] = st
	}
	return out, nil
}

// Close stops the writer after the requests it holds and closes the file.
func (db *DB) Close() error {
	close(db.closed)
	<-db.done
	<-db.ckptDone
	err := errors.Join(db.read.Close(), db.ckpt.Close(), db.write.Close())
	closeLock(db.lock)
	return err
}

// checkpointInterval spaces the checkpointer's runs, so that one run (and one fsync of
// the database file) covers many commits.
const checkpointInterval = 50 * time.Millisecond

// checkpointer copies committed pages from the write-ahead log into the database file,
// on the other core, so the writer never pauses for it: on 1 KiB pages under random
// updates, checkpointing in the writer took a third of its time. Readers and the writer
// go on meanwhile.
//
// The log starts again from its beginning only when a write transaction begins with
// every page copied. Under steady writes that moment rarely comes by itself, so once the
// log passes cfg.WALBytes the writer copies the few pages left itself, before its
// next transaction (see restart).
func (db *DB) checkpointer() {
	defer close(db.ckptDone)
	for {
		select {
		case <-db.ckptWake:
		case <-db.done:
			return
		}
		// While the writer is asked to finish a checkpoint, this one stands aside: two
		// checkpoints cannot run at once, and the writer's would be refused.
		if !db.restartWAL.Load() {
			var busy, pages, copied int
			err := db.ckpt.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &pages, &copied)
			if err != nil || int64(pages)*db.pageSize > db.cfg.WALBytes {
				db.restartWAL.Store(true)
			}
		}
		select {
		case <-time.After(checkpointInterval):
		case <-db.done:
			return
		}
	}
}

// restart, run by the writer between transactions when the checkpointer asks, finishes
// the checkpoint so that the next transaction starts the log again. One that could not
// copy everything (a checkpoint already running, or readers on old pages) is tried again
// before the next transaction; meanwhile the log only grows: every page in it is still
// committed.
func (db *DB) restart() {
	if !db.restartWAL.Load() {
		return
	}
	var busy, pages, copied int
	err := db.write.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &pages, &copied)
	if err == nil && busy == 0 && copied == pages {
		db.restartWAL.Store(false)
	}
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("not a usable prefsync database (%w)", err)
	}
	names, err := fs.Glob(migrations, "migration/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	// Only a store's one writer migrates a store in use: an older hub serving it would go
	// on writing the old way. A new store is made by whoever opens it.
	var applied, newest int
	if err := db.write.QueryRowContext(ctx, `SELECT count(*), coalesce(max(version), 0) FROM schema_migrations`).Scan(&applied, &newest); err != nil {
		return err
	}
	versions := make([]int, len(names))
	for i, name := range names {
		if versions[i], err = strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0]); err != nil {
			return fmt.Errorf("migration %s: name must start with its number", filepath.Base(name))
		}
	}
	// An older prefsync would read and write a newer layout the old way, wrongly and
	// without a word (since migration 6, contacts' identifiers are in their rows).
	if known := slices.Max(versions); newest > known {
		return fmt.Errorf("the database is newer than this prefsync (its layout is version %d, this prefsync knows up to %d): run the prefsync that last migrated it, or a newer one", newest, known)
	}
	mayMigrate := db.cfg.Exclusive || applied == 0
	for i, name := range names {
		if err := db.migrateOne(ctx, versions[i], name, mayMigrate); err != nil {
			return fmt.Errorf("migration %s: %w", filepath.Base(name), err)
		}
	}
	return nil
}

func (db *DB) migrateOne(ctx context.Context, version int, name string, mayMigrate bool) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if !mayMigrate {
		return errors.New("the database is older than this prefsync: stop the hub that serves it, then run `prefsync migrate` (or start this version's hub, which migrates)")
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		version, formatTime(db.cfg.Now())); err != nil {
		return err
	}
	return tx.Commit()
}

func (db *DB) loadHead(ctx context.Context) error {
	err := db.write.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&db.nextSeq, &db.head)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		db.nextSeq, db.head = 0, nil
	case err != nil:
		return fmt.Errorf("read audit head: %w", err)
	}
	db.nextSeq++
	var last sql.NullInt64
	if err := db.write.QueryRowContext(ctx, `SELECT max(id) FROM contacts`).Scan(&last); err != nil {
		return fmt.Errorf("read last contact: %w", err)
	}
	db.lastNumber = uint64(last.Int64)
	if err := db.write.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'store_id'`).Scan(&db.storeID); err != nil {
		return fmt.Errorf("read store id: %w", err)
	}
	if err := db.write.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&db.pageSize); err != nil {
		return fmt.Errorf("read page size: %w", err)
	}
	return nil
}

// do runs fn in the writer's next transaction and returns once that transaction is
// committed (or fn's changes rolled back). fn may be run more than once, each time in a
// fresh transaction: it must set its results anew on every run.
func (db *DB) do(ctx context.Context, fn func(*tx) error) error {
	r := &request{fn: fn, err: make(chan error, 1)}
	select {
	case db.reqs <- r:
	case <-db.closed:
		return prefsync.Errorf(prefsync.EUNAVAILABLE, "the store is closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the request is committed or refused as a whole; waiting for that
	// keeps a cancelled caller from believing a committed write failed. A request queued
	// as the store closed may never be taken: the writer answers every request it takes
	// before it stops, so after that an unanswered request was not written.
	select {
	case err := <-r.err:
		return err
	case <-db.done:
		select {
		case err := <-r.err:
			return err
		default:
			return prefsync.Errorf(prefsync.EUNAVAILABLE, "the store is closed")
		}
	}
}

// writer is the only goroutine that writes. It takes every request that is waiting and
// commits them in one transaction, with one fsync.
func (db *DB) writer() {
	defer close(db.done)
	batch := make([]*request, 0, db.cfg.MaxBatch)
	for {
		select {
		case r := <-db.reqs:
			batch = append(batch[:0], r)
		case <-db.closed:
			for {
				select {
				case r := <-db.reqs:
					db.commit([]*request{r})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case r := <-db.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		db.restart()
		db.commit(batch)
		select {
		case db.ckptWake <- struct{}{}:
		default:
		}
	}
}

// commit runs the batch's requests in one transaction. Requests rarely fail (input is
// validated before it reaches the store), so none pays for a savepoint: when one does
// fail, the transaction is rolled back and each request is run again in its own, so
// one request's failure never undoes another's write.
func (db *DB) commit(batch []*request) {
	if len(batch) > 1 {
		if err := db.run(batch); err == nil {
			for _, r := range batch {
				r.err <- nil
			}
			return
		}
	}
	for _, r := range batch {
		r.err <- db.run([]*request{r})
	}
}

// run runs requests in one transaction and commits it if all succeed.
func (db *DB) run(reqs []*request) error {
	head, next := db.head, db.nextSeq
	ctx := context.Background()
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &tx{Tx: sqlTx, db: db, ctx: ctx, last: map[int64]int64{}, lastUnsaved: map[int64]bool{}, stmts: map[string]*sql.Stmt{}}
	for _, r := range reqs {
		if err = r.fn(t); err != nil {
			break
		}
	}
	if err == nil {
		err = t.saveLastSeqs()
	}
	if err == nil {
		if err = sqlTx.Commit(); err != nil {
			err = fmt.Errorf("commit: %w", err)
		}
	} else {
		sqlTx.Rollback()
	}
	if err != nil {
		// Undo what the transaction did to the writer's own state; the destinations it
		// may have read are read again.
		db.head, db.nextSeq, db.destsStale = head, next, true
	}
	return err
}

// tx is a write transaction inside the writer. Its statements are prepared once on the
// writer's connection and reused: parsing SQL was a quarter of the write path.
type tx struct {
	*sql.Tx
	db  *DB
	ctx context.Context
	// ahead is what the running request read ahead, if anything.
	ahead ahead
	// last holds the latest audit entry of each contact the transaction has read or
	// audited, by number; lastUnsaved, those audited since the contact was saved.
	last        map[int64]int64
	lastUnsaved map[int64]bool
	// stmts are the prepared statements the transaction has used, bound to it.
	stmts map[string]*sql.Stmt
}

// stmt returns the transaction's use of a prepared statement, or nil for a query that
// is not prepared ahead (it is then parsed each time). Binding one to the transaction
// costs an allocation and locks, once per transaction rather than at every use.
func (t *tx) stmt(query string) *sql.Stmt {
	if s, ok := t.stmts[query]; ok {
		return s
	}
	if s, ok := t.db.stmts[query]; ok {
		s = t.Tx.StmtContext(t.ctx, s)
		t.stmts[query] = s
		return s
	}
	return nil
}

// Exec runs a statement in the transaction.
func (t *tx) Exec(query string, args ...any) (sql.Result, error) {
	if s := t.stmt(query); s != nil {
		return s.ExecContext(t.ctx, args...)
	}
	return t.Tx.ExecContext(t.ctx, query, args...)
}

// QueryRowContext runs a query expected to return at most one row.
func (t *tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.stmt(query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// QueryContext runs a query.
func (t *tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

const timeFormat = time.RFC3339Nano

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) { return time.Parse(timeFormat, s) }

// parseNullTime reads a time that may be NULL (nil).
func parseNullTime(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseTime(s.String)
	return &t, err
}
