package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"prefsync"
	"prefsync/sqlite"
	"prefsync/storetest"
)

// MustOpenDB opens a store in a fresh file that is closed when the test ends.
func MustOpenDB(tb testing.TB, now func() time.Time) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{
		Path: filepath.Join(tb.TempDir(), "prefsync.db"), ConflictWindow: time.Second, Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) prefsync.Store { return MustOpenDB(t, now) })
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	t.Run("ErrCorrupt", func(t *testing.T) {
		path := filepath.Join(dir, "corrupt.db")
		os.WriteFile(path, []byte(strings.Repeat("not a database ", 500)), 0o600)
		_, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("corrupt file: %v", err)
		}
	})
	t.Run("ErrMissingFolder", func(t *testing.T) {
		_, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "no", "such", "x.db")})
		if err == nil || !strings.Contains(err.Error(), "folder") {
			t.Errorf("missing folder: %v", err)
		}
	})
	t.Run("ErrDirectory", func(t *testing.T) {
		_, err := sqlite.Open(context.Background(), sqlite.Config{Path: dir})
		if err == nil || !strings.Contains(err.Error(), "directory") {
			t.Errorf("directory: %v", err)
		}
	})
	t.Run("ErrNewerLayout", func(t *testing.T) {
		path := filepath.Join(dir, "newer.db")
		db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		raw, err := sql.Open("sqlite3", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (999, '2030-01-01T00:00:00Z')`); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		for _, exclusive := range []bool{false, true} {
			_, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, Exclusive: exclusive})
			if err == nil || !strings.Contains(err.Error(), "newer than this prefsync") || !strings.Contains(err.Error(), "version 999") {
				t.Errorf("a store migrated by a newer prefsync (exclusive %v): %v; want it refused, naming its version", exclusive, err)
			}
		}
	})
	t.Run("ErrMustExist", func(t *testing.T) {
		path := filepath.Join(dir, "typo.db")
		_, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, MustExist: true})
		if _, serr := os.Stat(path); err == nil || serr == nil {
			t.Errorf("opening a missing file that must exist: %v, and the file exists: %v", err, serr == nil)
		}
	})
	t.Run("WriteAfterClose", func(t *testing.T) {
		for range 20 {
			db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "closed.db"), ConflictWindow: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			done := make(chan error, 1)
			go func() {
				_, _, err := db.AddSuppression(context.Background(), prefsync.Suppression{Kind: "email", Address: "a@example.com", Reason: "manual"})
				done <- err
			}()
			select {
			case err := <-done:
				if prefsync.ErrorCode(err) != prefsync.EUNAVAILABLE {
					t.Fatalf("write after close: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("write after close hangs")
			}
		}
	})
	t.Run("ErrSecondHub", func(t *testing.T) {
		path := filepath.Join(dir, "served.db")
		open := func() (*sqlite.DB, error) {
			return sqlite.Open(context.Background(), sqlite.Config{Path: path, ConflictWindow: time.Second, Exclusive: true})
		}
		first, err := open()
		if err != nil {
			t.Fatal(err)
		}
		if second, err := open(); err == nil || !strings.Contains(err.Error(), "another prefsync process") {
			if second != nil {
				second.Close()
			}
			t.Fatalf("a second hub on the same file: %v", err)
		}
		// A command that does not serve (keys, deliveries) may still open it.
		other, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, MustExist: true})
		if err != nil {
			t.Fatalf("a command beside the hub: %v", err)
		}
		other.Close()
		first.Close()
		again, err := open()
		if err != nil {
			t.Fatalf("after the first hub stopped: %v", err)
		}
		again.Close()
	})
	t.Run("ReopenKeepsChain", func(t *testing.T) {
		path := filepath.Join(dir, "reopen.db")
		for i := range 3 {
			db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, ConflictWindow: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ev := storetest.Event("a@example.com", prefsync.Scope{Channel: "email", Topic: "*"}, prefsync.OptedOut, time.Now().Add(time.Duration(i)*time.Hour))
			if _, _, err := db.ApplyEvents(context.Background(), []prefsync.Event{ev}); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}
		db, _ := sqlite.Open(context.Background(), sqlite.Config{Path: path})
		defer db.Close()
		if rep, err := db.VerifyAudit(context.Background()); err != nil || !rep.OK || rep.Entries != 3 {
			t.Errorf("after reopening: %+v %v", rep, err)
		}
	})
}

// TestAuditTamper edits the file behind the store's back, as an attacker with write
// access would, and expects verification to name the entry.
func TestAuditTamper(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, ConflictWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	scope := prefsync.Scope{Channel: "email", Topic: "*"}
	now := time.Now()
	db.ApplyEvents(context.Background(), []prefsync.Event{
		storetest.Event("a@example.com", scope, prefsync.OptedOut, now),
		storetest.Event("b@example.com", scope, prefsync.OptedOut, now),
		storetest.Event("c@example.com", scope, prefsync.OptedOut, now),
		storetest.Event("a@example.com", scope, prefsync.OptedIn, now.Add(time.Second)),
	})
	db.Close()
	for _, tc := range []struct {
		name, sql string
		bad       int64
	}{
		{"EditedState", `UPDATE audit SET body = replace(body, '"opted_out"', '"opted_in"') WHERE seq = 2`, 2},
		{"EditedPersonal", `UPDATE audit SET personal = replace(personal, '192.0.2.1', '10.0.0.1') WHERE seq = 3`, 3},
		{"EditedStatusColumn", `UPDATE audit SET status = 'rejected' WHERE seq = 2`, 2},
		{"Deleted", `DELETE FROM audit WHERE seq = 2`, 2},
		{"EditedIdempotencyKeyColumn", `UPDATE audit SET idempotency_key = 'crm' || char(31) || 'k1' WHERE seq = 2`, 2},
		{"MovedToOtherContact", `UPDATE audit SET contact_id = contact_id + 1 WHERE seq = 1`, 1},
		// History follows these links: cutting one would hide entries from it.
		{"UnlinkedFromPrevious", `UPDATE audit_links SET prev_seq = 0 WHERE seq = 4`, 4},
		{"LinkDeleted", `DELETE FROM audit_links WHERE seq = 4`, 4},
		{"ContactLinksToOlderEntry", `UPDATE contacts SET last_seq = 1 WHERE last_seq = 4`, 4},
		{"ErasedPersonalIsFine", `UPDATE audit SET salt = NULL, personal = NULL WHERE seq = 1`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			copyPath := filepath.Join(t.TempDir(), "copy.db")
			data, _ := os.ReadFile(path)
			os.WriteFile(copyPath, data, 0o600)
			raw, _ := sql.Open("sqlite3", copyPath)
			if _, err := raw.Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			raw.Close()
			db, err := sqlite.Open(context.Background(), sqlite.Config{Path: copyPath})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			rep, err := db.VerifyAudit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tc.bad == 0 && !rep.OK {
				t.Errorf("verify failed: %+v", rep)
			}
			if tc.bad != 0 && (rep.OK || rep.BadSeq != tc.bad) {
				t.Errorf("verify = %+v, want entry %d named", rep, tc.bad)
			}
		})
	}
}

// A store written before entries were linked gets its links from migration 4, and
// reads the same histories, which verify.
func TestMigrationLinksEntries(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sqlite.Open(ctx, sqlite.Config{Path: path, ConflictWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	scope := prefsync.Scope{Channel: "email", Topic: "*"}
	now := time.Now()
	res, _, err := db.ApplyEvents(ctx, []prefsync.Event{
		storetest.Event("a@example.com", scope, prefsync.OptedOut, now),
		storetest.Event("b@example.com", scope, prefsync.OptedOut, now),
		storetest.Event("a@example.com", scope, prefsync.OptedIn, now.Add(time.Second)),
		storetest.Event("c@example.com", scope, prefsync.OptedIn, now),
		storetest.Event("b@example.com", scope, prefsync.OptedIn, now.Add(2*time.Second)),
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b := res[0].ContactID, res[1].ContactID
	if _, err := db.MergeContacts(ctx, a, b, prefsync.Source{System: "test", Touchpoint: prefsync.API}, now); err != nil {
		t.Fatal(err)
	}
	seqs := func(db *sqlite.DB) []int64 {
		t.Helper()
		h, err := db.History(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, e := range h {
			out = append(out, e.Seq)
		}
		return out
	}
	want := seqs(db)
	if len(want) != 6 {
		t.Fatalf("history of the survivor has entries %v; want 6 (4 events and 2 merge entries)", want)
	}
	db.Close()
	// Back to the layout before migration 4.
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE INDEX audit_by_contact ON audit (contact_id, seq)`,
		`DROP TABLE audit_links`,
		`ALTER TABLE contacts DROP COLUMN last_seq`,
		`DELETE FROM schema_migrations WHERE version = 4`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	// A command beside the hub (keys, audit verify) does not migrate: the hub serving the
	// file may be the older one.
	if _, err := sqlite.Open(ctx, sqlite.Config{Path: path, MustExist: true}); err == nil || !strings.Contains(err.Error(), "prefsync migrate") {
		t.Fatalf("a command's open of an older store: %v; want it refused, naming prefsync migrate", err)
	}
	db, err = sqlite.Open(ctx, sqlite.Config{Path: path, ConflictWindow: time.Second, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := seqs(db); !slices.Equal(got, want) {
		t.Errorf("history after the migration has entries %v; want %v", got, want)
	}
	rep, err := db.VerifyAudit(ctx)
	if err != nil || !rep.OK {
		t.Errorf("verify after the migration: %+v, %v", rep, err)
	}
	// New entries link on from the migrated ones.
	if _, _, err := db.ApplyEvents(ctx, []prefsync.Event{storetest.Event("b@example.com", scope, prefsync.OptedOut, now.Add(3*time.Second))}); err != nil {
		t.Fatal(err)
	}
	if got := seqs(db); len(got) != len(want)+1 {
		t.Errorf("history after one more event has entries %v; want %v and one more", got, want)
	}
	if rep, err := db.VerifyAudit(ctx); err != nil || !rep.OK {
		t.Errorf("verify after one more event: %+v, %v", rep, err)
	}
}

// A store written before contacts' rows held their identifiers gets them from migration
// 6, and reads the same contacts: by id, by identifier and at start-up.
func TestMigrationContactIdentifiers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sqlite.Open(ctx, sqlite.Config{Path: path, ConflictWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	src := prefsync.Source{System: "test", Touchpoint: prefsync.API}
	full, err := db.UpsertContact(ctx, prefsync.ContactInput{Email: "full@example.com", Phone: "+14155552671",
		ExternalIDs: []prefsync.ExternalID{{System: "crm", ID: "0031"}}, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	scope := prefsync.Scope{Channel: "email", Topic: "*"}
	res, _, err := db.ApplyEvents(ctx, []prefsync.Event{
		storetest.Event("a@example.com", scope, prefsync.OptedOut, time.Now()),
		storetest.Event("b@example.com", scope, prefsync.OptedIn, time.Now()),
		storetest.Event("lone@example.com", scope, prefsync.OptedIn, time.Now()),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.MergeContacts(ctx, res[0].ContactID, res[1].ContactID, src, time.Now()); err != nil {
		t.Fatal(err)
	}
	contacts := func(db *sqlite.DB) map[string]*prefsync.Contact {
		t.Helper()
		out := map[string]*prefsync.Contact{}
		if err := db.EachContact(ctx, func(c *prefsync.Contact) error { out[c.ID] = c; return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := contacts(db)
	if c := want[full.ID]; len(want) != 3 || c == nil || len(c.Emails)+len(c.Phones)+len(c.ExternalIDs) != 3 {
		t.Fatalf("contacts before the migration: %v; want 3, %s with three identifiers", want, full.ID)
	}
	db.Close()
	// Back to the layout before migration 6.
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE INDEX identifiers_by_contact ON identifiers (contact_id)`,
		`ALTER TABLE contacts DROP COLUMN identifiers`,
		`DELETE FROM schema_migrations WHERE version = 6`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	db, err = sqlite.Open(ctx, sqlite.Config{Path: path, ConflictWindow: time.Second, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := contacts(db)
	for id, w := range want {
		if g := got[id]; g == nil || !slices.Equal(g.Identifiers(), w.Identifiers()) {
			t.Errorf("contact %s after the migration: %+v; want identifiers %v", id, g, w.Identifiers())
		}
		var filters []prefsync.ContactFilter
		for _, e := range w.Emails {
			filters = append(filters, prefsync.ContactFilter{Email: &e})
		}
		for _, p := range w.Phones {
			filters = append(filters, prefsync.ContactFilter{Phone: &p})
		}
		for _, x := range w.ExternalIDs {
			filters = append(filters, prefsync.ContactFilter{ExternalID: &x})
		}
		for _, f := range filters {
			if c, err := db.FindContact(ctx, f); err != nil || c.ID != id || !slices.Equal(c.Identifiers(), w.Identifiers()) {
				ident, _ := f.Identifier()
				t.Errorf("%s %q after the migration finds %+v, %v; want %s", ident.Kind, ident.Value, c, err, id)
			}
		}
	}
}

// A merge moves only identifiers stored as the merged contact's: a row that names one of
// another contact's (edited by hand, say) stops the merge, and nothing moves.
func TestMergeRefusesRowThatDisagrees(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	db, err := sqlite.Open(ctx, sqlite.Config{Path: path, ConflictWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scope := prefsync.Scope{Channel: "email", Topic: "*"}
	res, _, err := db.ApplyEvents(ctx, []prefsync.Event{
		storetest.Event("a@example.com", scope, prefsync.OptedOut, time.Now()),
		storetest.Event("b@example.com", scope, prefsync.OptedOut, time.Now()),
		storetest.Event("c@example.com", scope, prefsync.OptedOut, time.Now()),
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	n, _ := prefsync.ContactNumber(res[1].ContactID)
	if _, err := raw.Exec(`UPDATE contacts SET identifiers = 'email' || char(31) || 'a@example.com' WHERE id = ?`, int64(n)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.MergeContacts(ctx, res[2].ContactID, res[1].ContactID, prefsync.Source{System: "test", Touchpoint: prefsync.API}, time.Now()); err == nil {
		t.Error("merge of a contact whose row names another's address: no error")
	}
	a := "a@example.com"
	if c, err := db.FindContact(ctx, prefsync.ContactFilter{Email: &a}); err != nil || c.ID != res[0].ContactID {
		t.Errorf("a@example.com after the refused merge finds %+v, %v; want %s", c, err, res[0].ContactID)
	}
}

// audit verify may run beside a hub that is writing: it checks one moment of the store,
// so a write between reading the entries and reading the contacts is not a break.
func TestVerifyAuditWhileWriting(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t, time.Now)
	scope := prefsync.Scope{Channel: "email", Topic: "*"}
	done := make(chan error, 1)
	go func() {
		for i := range 300 {
			ev := storetest.Event(fmt.Sprintf("u%d@example.com", i%7), scope, prefsync.OptedOut, time.Now())
			if _, _, err := db.ApplyEvents(ctx, []prefsync.Event{ev}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for verified := 0; ; verified++ {
		rep, err := db.VerifyAudit(ctx)
		if err != nil || !rep.OK {
			t.Fatalf("verify while writing: %+v, %v", rep, err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("verified %d times while writing", verified+1)
			return
		default:
		}
	}
}
