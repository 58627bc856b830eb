package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"prefsync"
	"prefsync/storetest"
)

// BenchmarkApplyBatch measures the store alone: batches of 500 events, each committed
// durably, over 100k contacts.
func BenchmarkApplyBatch(b *testing.B) {
	db := MustOpenDB(b, time.Now)
	scope := prefsync.Scope{Channel: "email", Topic: "newsletter"}
	events := make([]prefsync.Event, 500)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		for i := range events {
			events[i] = storetest.Event(fmt.Sprintf("user%07d@example.com", (n*7919)%100000), scope, prefsync.OptedOut, time.Now())
			n++
		}
		if _, _, err := db.ApplyEvents(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkApplyBatchUpdates measures the store alone on batches of 500 events for
// random existing contacts of 100k, as a CRM sync sends them: every event finds its
// contact and changes its state.
func BenchmarkApplyBatchUpdates(b *testing.B) {
	db := MustOpenDB(b, time.Now)
	scope := prefsync.Scope{Channel: "email", Topic: "newsletter"}
	const contacts = 100_000
	at := time.Now().Add(-time.Hour)
	events := make([]prefsync.Event, 500)
	for n := 0; n < contacts; n += len(events) {
		for i := range events {
			events[i] = storetest.Event(fmt.Sprintf("user%07d@example.com", n+i), scope, prefsync.OptedOut, at)
		}
		if _, _, err := db.ApplyEvents(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	states := []prefsync.State{prefsync.OptedIn, prefsync.OptedOut}
	k := 0
	b.ResetTimer()
	for b.Loop() {
		k++
		for i := range events {
			events[i] = storetest.Event(fmt.Sprintf("user%07d@example.com", r.IntN(contacts)), scope, states[k%2], at.Add(time.Duration(k)*time.Second))
		}
		if _, _, err := db.ApplyEvents(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}
