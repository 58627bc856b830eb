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
