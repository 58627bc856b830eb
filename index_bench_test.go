package prefsync_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"prefsync"
)

// seedIndex fills an index with n contacts, each with an email and a few scopes, as a
// typical installation has them.
func seedIndex(d *prefsync.Dictionary, n int) *prefsync.Index {
	x := prefsync.NewIndex(d)
	x.Reserve(n)
	juris := []string{"US", "DE", "CA", "GB", "FR", ""}
	for i := range n {
		st := prefsync.ContactState{Scopes: []prefsync.ScopeState{
			{Channel: "email", Topic: "newsletter", State: prefsync.OptedIn, Method: prefsync.Explicit, OccurredAt: t0},
			{Channel: "sms", Topic: "*", State: prefsync.OptedOut, OccurredAt: t0},
		}}
		if i%3 == 0 {
			st.Scopes = append(st.Scopes, prefsync.ScopeState{Channel: "email", Topic: "promotions", State: prefsync.OptedIn, Method: prefsync.Implicit, OccurredAt: t0})
		}
		x.Put(&prefsync.Contact{ID: prefsync.ContactIDFromNumber(uint64(i + 1)), Emails: []string{fmt.Sprintf("user%07d@example.com", i)},
			Jurisdiction: juris[i%len(juris)], Version: 3, State: st})
	}
	return x
}

// BenchmarkDecide is the in-process decision on a contact's facts.
func BenchmarkDecide(b *testing.B) {
	d := prefsync.DefaultDictionary()
	q, _ := d.Query("email", "promotions")
	st := prefsync.ContactState{Scopes: []prefsync.ScopeState{
		{Channel: "email", Topic: "newsletter", State: prefsync.OptedIn, Method: prefsync.Explicit, OccurredAt: t0},
		{Channel: "email", Topic: "promotions", State: prefsync.OptedIn, Method: prefsync.Implicit, OccurredAt: t0},
		{Channel: "sms", Topic: "*", State: prefsync.OptedOut, OccurredAt: t0},
	}}
	f := d.Facts(&st, 3, "CA")
	now := t0.Add(time.Hour).Unix()
	b.ReportAllocs()
	for b.Loop() {
		if !d.Decide(&f, &q, now).Allowed {
			b.Fatal("denied")
		}
	}
}

// BenchmarkIndexCheck is one check by email against an index of 1M contacts: lookup,
// read lock and decision.
func BenchmarkIndexCheck(b *testing.B) {
	d := prefsync.DefaultDictionary()
	x := seedIndex(d, 1_000_000)
	q, _ := d.Query("email", "promotions")
	subjects := make([]prefsync.Subject, 4096)
	for i := range subjects {
		subjects[i].Email = fmt.Sprintf("user%07d@example.com", (i*7919)%1_000_000)
	}
	now := t0.Unix()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		x.Check(&q, &subjects[i&4095], now)
		i++
	}
}

// BenchmarkIndexMemory reports the heap the check index holds for 1M contacts with two
// or three scopes each.
func BenchmarkIndexMemory(b *testing.B) {
	d := prefsync.DefaultDictionary()
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x := seedIndex(d, 1_000_000)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB/1M-contacts")
		runtime.KeepAlive(x)
	}
}
