package main

import (
	"testing"
	"time"
)

// A worker sends a check every 400µs. When an answer comes back after the next request
// was due, that request is sent at once and its latency counts from lateFrom.
func TestLateFrom(t *testing.T) {
	const interval = 400 * time.Microsecond
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	at := func(us int) time.Time { return t0.Add(time.Duration(us) * time.Microsecond) }
	for _, c := range []struct {
		name                 string
		prev, due, now, want int // µs after t0
	}{
		// The request before left on time and its answer took 600µs: the next counts
		// from when it was due, so the 200µs the server held it up are counted.
		{"slow answer", 0, 400, 600, 400},
		// A server stalled for 10ms: every request held up counts from when it was due,
		// the first and the ones after it, sent back to back.
		{"stall, first after", 0, 400, 10_000, 400},
		{"stall, second after", 400, 800, 10_050, 800},
		// The loader woke 900µs late for the request before, whose answer then took
		// 450µs: only the 50µs past one interval are the server's.
		{"loader late before", 900, 400, 1350, 1300},
		// An answer that came back late only because the loader sent its request late,
		// not in one interval: nothing is the server's.
		{"loader late, quick answer", 900, 400, 1100, 1100},
	} {
		if got := lateFrom(at(c.prev), at(c.due), at(c.now), interval); !got.Equal(at(c.want)) {
			t.Errorf("%s: counts from %v after t0, want %v", c.name, got.Sub(t0), at(c.want).Sub(t0))
		}
	}
	// A first request that could not be sent when due (the workers started late) has no
	// request before it: it counts from when it was due.
	if got := lateFrom(time.Time{}, at(400), at(700), interval); !got.Equal(at(400)) {
		t.Errorf("first request: counts from %v after t0, want 400µs", got.Sub(t0))
	}
}

// A worker that slept until its request was due counts from when it woke, within the
// millisecond Go's timers may be late; a later wake counts against the server.
func TestSleptFrom(t *testing.T) {
	due := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name       string
		late, want time.Duration // woke, counts from: after due
	}{
		{"on time", 50 * time.Microsecond, 50 * time.Microsecond},
		{"a timer's millisecond", time.Millisecond, time.Millisecond},
		{"held up 30ms", 30 * time.Millisecond, timerSlop},
	} {
		if got := sleptFrom(due, due.Add(c.late)); !got.Equal(due.Add(c.want)) {
			t.Errorf("%s: counts from %v after due, want %v", c.name, got.Sub(due), c.want)
		}
	}
}
