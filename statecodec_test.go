package prefsync_test

import (
	"reflect"
	"testing"
	"time"

	"prefsync"
)

func TestStateCodec(t *testing.T) {
	st := prefsync.ContactState{
		Scopes: []prefsync.ScopeState{
			{Channel: "*", Topic: "*", State: prefsync.OptedOut, Method: prefsync.Explicit, OccurredAt: t0.Add(123456789),
				Source: prefsync.Source{System: "support desk", Touchpoint: prefsync.Support, Actor: "agent \"Bo\"\n\tç"}, Seq: 7},
			{Channel: "email", Topic: "newsletter", State: prefsync.OptedIn, Method: prefsync.Implicit, OccurredAt: t0,
				Source: prefsync.Source{System: "crm", Touchpoint: prefsync.CRMSync}, Seq: 9},
		},
		Pauses: []prefsync.Pause{{Channel: "sms", Until: t0.Add(14 * 24 * time.Hour), OccurredAt: t0, Seq: 10}},
	}
	got, err := prefsync.ParseState(prefsync.AppendState(nil, &st))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
	}
	if empty, err := prefsync.ParseState(nil); err != nil || len(empty.Scopes)+len(empty.Pauses) != 0 {
		t.Errorf("empty state: %+v %v", empty, err)
	}
	for _, bad := range []string{"x 1 2\n", "s email *\n", "s email * opted_out explicit api notanumber 1 \"a\" \"\"\n", "p sms 1 2 x\n"} {
		if _, err := prefsync.ParseState([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseState: any input is refused or read; what is read writes back to a form that
// reads the same.
func FuzzParseState(f *testing.F) {
	st := prefsync.ContactState{Scopes: []prefsync.ScopeState{{Channel: "email", Topic: "*", State: prefsync.OptedOut,
		Method: prefsync.Explicit, OccurredAt: t0, Source: prefsync.Source{System: "a b", Touchpoint: prefsync.API}, Seq: 1}},
		Pauses: []prefsync.Pause{{Channel: "*", Until: t0, OccurredAt: t0, Seq: 2}}}
	f.Add(prefsync.AppendState(nil, &st))
	f.Add([]byte("s x y z w v 1 2 \"\\\"\" \"\"\n"))
	f.Add([]byte("p sms 1 2 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := prefsync.ParseState(data)
		if err != nil {
			return
		}
		again, err := prefsync.ParseState(prefsync.AppendState(nil, &st))
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("%q read as %+v, written and read again as %+v (%v)", data, st, again, err)
		}
	})
}
