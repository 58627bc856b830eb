package prefsync

import (
	"bytes"
	crand "crypto/rand"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestNewDestination(t *testing.T) {
	dict := DefaultDictionary()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	d, err := NewDestination(DestinationInput{Name: "crm", URL: "https://crm.example.com/hooks/prefsync",
		Filter: DestinationFilter{Channels: []string{"email"}}}, dict, crand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != DestinationWebhook || d.Status != DestinationActive || len(d.Secrets) != 1 || ValidateSecret(d.Secrets[0].Value) != nil {
		t.Errorf("destination = %+v", d)
	}
	for _, tc := range []struct {
		name  string
		in    DestinationInput
		field string
	}{
		{"BadName", DestinationInput{Name: "CRM!", URL: "https://x.example"}, "name"},
		{"UnknownKind", DestinationInput{Name: "crm", Kind: "kafka", URL: "https://x.example"}, "kind"},
		{"RelativeURL", DestinationInput{Name: "crm", URL: "/hooks"}, "url"},
		{"FTP", DestinationInput{Name: "crm", URL: "ftp://x.example/"}, "url"},
		{"Credentials", DestinationInput{Name: "crm", URL: "https://u:p@x.example/"}, "url"},
		{"Space", DestinationInput{Name: "crm", URL: "https://x.example/?q=a b"}, "url"},
		{"ShortSecret", DestinationInput{Name: "crm", URL: "https://x.example", Secret: "whsec_c2hvcnQ="}, "secret"},
		{"NoPrefix", DestinationInput{Name: "crm", URL: "https://x.example", Secret: strings.Repeat("A", 44)}, "secret"},
		{"UnknownChannel", DestinationInput{Name: "crm", URL: "https://x.example", Filter: DestinationFilter{Channels: []string{"fax"}}}, "filter.channels[0]"},
		{"WildcardTopic", DestinationInput{Name: "crm", URL: "https://x.example", Filter: DestinationFilter{Topics: []string{"newsletter", "*"}}}, "filter.topics[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDestination(tc.in, dict, crand.Reader, now)
			if ErrorCode(err) != EINVALID || ErrorField(err) != tc.field {
				t.Errorf("err = %v, want invalid %s", err, tc.field)
			}
		})
	}
}

func TestWants(t *testing.T) {
	d := &Destination{Name: "esp", Filter: DestinationFilter{Channels: []string{"email"}, Topics: []string{"newsletter"}}}
	for _, tc := range []struct {
		scope  Scope
		system string
		want   bool
	}{
		{Scope{"email", "newsletter"}, "crm", true},
		{Scope{"email", "newsletter"}, "esp", false}, // no echo (rule 6)
		{Scope{"email", "*"}, "crm", true},           // covers newsletter
		{Scope{"*", "*"}, "crm", true},
		{Scope{"email", "promotions"}, "crm", false},
		{Scope{"sms", "*"}, "crm", false},
	} {
		if got := d.Wants(tc.scope, tc.system); got != tc.want {
			t.Errorf("Wants(%v from %s) = %v, want %v", tc.scope, tc.system, got, tc.want)
		}
	}
}

func TestRotate(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	d := &Destination{Secrets: []Secret{{Value: "whsec_a"}}}
	d.Rotate("whsec_b", time.Hour, now)
	if got := d.SigningSecrets(now.Add(59 * time.Minute)); len(got) != 2 || got[0] != "whsec_b" {
		t.Errorf("within the grace period: %v", got)
	}
	if got := d.SigningSecrets(now.Add(time.Hour)); len(got) != 1 || got[0] != "whsec_b" {
		t.Errorf("after the grace period: %v", got)
	}
	// A second rotation drops what expired and never extends an old secret's life.
	d.Rotate("whsec_c", 2*time.Hour, now.Add(90*time.Minute))
	if len(d.Secrets) != 2 || d.Secrets[1].Value != "whsec_b" || !d.Secrets[1].ExpiresAt.Equal(now.Add(210*time.Minute)) {
		t.Errorf("secrets = %+v", d.Secrets)
	}
}

func TestNextAttempt(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	jitter := rand.New(rand.NewPCG(1, 2))
	now, tries := from, 0
	for {
		next, ok := NextAttempt(from, now, jitter)
		if !ok {
			break
		}
		tries++
		if !next.After(now) {
			t.Fatalf("next attempt %v not after %v", next, now)
		}
		now = next
	}
	if tries != len(RetrySchedule) {
		t.Errorf("%d retries, want %d", tries, len(RetrySchedule))
	}
	if span := now.Sub(from); span < 70*time.Hour || span > 80*time.Hour {
		t.Errorf("retried for %v, want about three days", span)
	}
	// A failure at any time is retried at the next point, never more than a tenth of
	// the gap late.
	next, _ := NextAttempt(from, from.Add(time.Minute), jitter)
	if d := next.Sub(from); d < RetrySchedule[1] || d > RetrySchedule[1]+(RetrySchedule[1]-RetrySchedule[0])/10 {
		t.Errorf("after a failure at 1 min: next at +%v", d)
	}
}

func TestNewChange(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	src := Source{System: "support", Touchpoint: Support, Actor: "agent jane"}
	ev := &Event{Scope: Scope{"email", "*"}, State: OptedOut, OccurredAt: at, ReceivedAt: at, Source: src,
		Evidence: Evidence{Method: Explicit, IP: "192.0.2.1"}}
	c := &Contact{ID: "c_0000000000001", Emails: []string{"a@example.com"}, Version: 4}
	c.State.Scopes = []ScopeState{{Channel: "email", Topic: "*", State: OptedOut, Source: src, OccurredAt: at, Seq: 9}}
	b, err := NewChange(ev, c, 9)
	if err != nil {
		t.Fatal(err)
	}
	var ch Change
	if err := json.Unmarshal(b, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Type != ChangePreference || ch.Data.Version != 4 || ch.Data.Seq != 9 || ch.Data.Contact.Phones == nil ||
		ch.Data.Event.State != OptedOut || len(ch.Data.State.Scopes) != 1 {
		t.Errorf("change = %s", b)
	}
	// Personal data of the evidence and who acted stay in the hub.
	for _, s := range []string{"192.0.2.1", "agent jane"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("change carries %q: %s", s, b)
		}
	}
	if c.State.Scopes[0].Source.Actor == "" {
		t.Error("NewChange changed the contact's state")
	}
}
