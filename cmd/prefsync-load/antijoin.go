package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// antijoin compares filtering an audience through prefsync's NDJSON check with what a
// user would write instead: a plain SQL anti-join of the audience against a table of
// opt-outs, on the same PostgreSQL. Both get the same data: contacts antijoin-N, every
// third opted out of all email; the audience is all of them, for email/product_updates
// (a relationship topic: sent unless opted out, so both filters mean the same).
func (l *loader) antijoin() error {
	if l.pg == "" {
		return fmt.Errorf("-mode antijoin needs -pg, a PostgreSQL URL for the SQL side")
	}
	ctx := context.Background()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	email := func(i int) string { return "aj-" + run + "-" + strconv.Itoa(i) + "@example.com" }

	// The same opt-outs, in prefsync (batches of 500) and in the user's table.
	conn, err := pgx.Connect(ctx, l.pg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE audience (email TEXT NOT NULL);
		CREATE TEMP TABLE optouts (email TEXT NOT NULL, channel TEXT NOT NULL, topic TEXT NOT NULL)`); err != nil {
		return err
	}
	var aud, outs [][]any
	events := make([][]byte, 0, l.batch)
	for i := range l.count {
		aud = append(aud, []any{email(i)})
		if i%3 != 0 {
			continue
		}
		outs = append(outs, []any{email(i), "email", "*"})
		events = append(events, fmt.Appendf(nil, `{"subject":{"email":%q},"channel":"email","topic":"*","state":"opted_out"}`, email(i)))
		if len(events) == l.batch {
			if err := l.send("/v1/events", batchBody(events)); err != nil {
				return err
			}
			events = events[:0]
		}
	}
	if len(events) > 0 {
		if err := l.send("/v1/events", batchBody(events)); err != nil {
			return err
		}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"audience"}, []string{"email"}, pgx.CopyFromRows(aud)); err != nil {
		return err
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"optouts"}, []string{"email", "channel", "topic"}, pgx.CopyFromRows(outs)); err != nil {
		return err
	}
	// The index a user would add, and fresh statistics.
	if _, err := conn.Exec(ctx, `CREATE INDEX ON optouts (email); ANALYZE audience; ANALYZE optouts`); err != nil {
		return err
	}

	// prefsync: one NDJSON stream of the whole audience.
	start := time.Now()
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 64<<10)
		for i := range l.count {
			fmt.Fprintf(w, "{\"email\":%q}\n", email(i))
		}
		w.Flush()
		pw.Close()
	}()
	res, err := l.post("/v1/check?channel=email&topic=product_updates", "application/x-ndjson", pr)
	if err != nil {
		return err
	}
	allowedHub := 0
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"allowed":true`)) {
			allowedHub++
		}
	}
	res.Body.Close()
	hub := time.Since(start)

	// SQL: the anti-join, its rows read by the client as prefsync's answers are.
	start = time.Now()
	rows, err := conn.Query(ctx, `SELECT a.email FROM audience a WHERE NOT EXISTS (
		SELECT 1 FROM optouts o WHERE o.email = a.email AND o.channel IN ('email', '*') AND o.topic IN ('product_updates', '*'))`)
	if err != nil {
		return err
	}
	allowedSQL := 0
	for rows.Next() {
		allowedSQL++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	sql := time.Since(start)
	fmt.Printf("antijoin: audience of %d, %d opted out: prefsync NDJSON stream %s (%d allowed), SQL anti-join %s (%d allowed): SQL/prefsync %.2f\n",
		l.count, len(outs), hub.Round(time.Millisecond), allowedHub, sql.Round(time.Millisecond), allowedSQL, sql.Seconds()/hub.Seconds())
	if allowedHub != allowedSQL {
		return fmt.Errorf("the two filters disagree: %d against %d", allowedHub, allowedSQL)
	}
	return nil
}
