package sqlite_test

import (
	"context"
	"fmt"
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
