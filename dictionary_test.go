package prefsync_test

import (
	"strings"
	"testing"
	"time"

	"prefsync"
)

func TestDefaultDictionary(t *testing.T) {
	d := prefsync.DefaultDictionary()
	if len(d.Channels) != 7 || len(d.Topics) != 5 || d.ConflictWindowDuration() != time.Second {
		t.Fatalf("built-in dictionary: %d channels, %d topics", len(d.Channels), len(d.Topics))
	}
	for _, j := range []string{"DE", "FR", "GB", "CA", "CA-QC", "NO", ""} {
		if !d.OptInRequired(j) {
			t.Errorf("%q should need opt-in", j)
		}
	}
	for _, j := range []string{"US", "US-CA", "AU", "JP"} {
		if d.OptInRequired(j) {
			t.Errorf("%q should not need opt-in", j)
		}
	}
	if d.TopicKind("account") != prefsync.Transactional || d.TopicKind("promotions") != prefsync.Marketing {
		t.Error("topic kinds")
	}
	if err := d.ValidateScope(prefsync.Scope{Channel: "sms", Topic: "newsletter"}); prefsync.ErrorField(err) != "topic" {
		t.Errorf("newsletter is not sent by sms: %v", err)
	}
}

func TestParseDictionaryErrors(t *testing.T) {
	valid := `{"channels":[{"name":"email"}],"topics":[{"name":"news","kind":"marketing","channels":["email"]}],"jurisdictions":{"opt_in_required":["EU"],"groups":{"EU":["DE"]}}}`
	if _, err := prefsync.ParseDictionary(strings.NewReader(valid)); err != nil {
		t.Fatalf("valid dictionary: %v", err)
	}
	for _, tc := range []struct {
		name, in, field, msg string
	}{
		{"Syntax", "{\n\"channels\": [\n{\"name\": \"email\",,}]}", "", "line 3"},
		{"UnknownField", "{\n\"channels\": [],\n\"colour\": 1}", "", "unknown field \"colour\""},
		{"WrongType", "{\n\"channels\": [{\"name\": 5}]}", "channels.name", "line 2"},
		{"BadKind", `{"channels":[{"name":"email"}],"topics":[{"name":"news","kind":"spam","channels":["email"]}]}`, "topics[0].kind", "spam"},
		{"UnknownChannel", `{"channels":[{"name":"email"}],"topics":[{"name":"news","kind":"marketing","channels":["fax"]}]}`, "topics[0].channels[0]", "fax"},
		{"DuplicateChannel", `{"channels":[{"name":"email"},{"name":"email"}],"topics":[{"name":"n","kind":"marketing","channels":["email"]}]}`, "channels[1].name", "twice"},
		{"BadName", `{"channels":[{"name":"E Mail"}],"topics":[{"name":"n","kind":"marketing","channels":["email"]}]}`, "channels[0].name", "lower-case"},
		{"BadJurisdiction", `{"channels":[{"name":"email"}],"topics":[{"name":"n","kind":"marketing","channels":["email"]}],"jurisdictions":{"opt_in_required":["Europe"]}}`, "jurisdictions.opt_in_required[0]", "Europe"},
		{"BadExpiry", `{"channels":[{"name":"email"}],"topics":[{"name":"n","kind":"marketing","channels":["email"]}],"jurisdictions":{"implied_consent_expiry":{"CA":"two years"}}}`, "jurisdictions.implied_consent_expiry.CA", "duration"},
		{"BadWindow", `{"channels":[{"name":"email"}],"topics":[{"name":"n","kind":"marketing","channels":["email"]}],"conflict_window":"soon"}`, "conflict_window", "duration"},
		{"NoTopics", `{"channels":[{"name":"email"}]}`, "topics", "topics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := prefsync.ParseDictionary(strings.NewReader(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			if prefsync.ErrorField(err) != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v (field %q), want field %q and %q", err, prefsync.ErrorField(err), tc.field, tc.msg)
			}
		})
	}
}

type plainNormalizer struct{}

func (plainNormalizer) Email(s string) (string, error) {
	if !strings.Contains(s, "@") {
		return "", prefsync.FieldErrorf("", "not an address")
	}
	return strings.ToLower(strings.TrimSpace(s)), nil
}
func (plainNormalizer) Phone(s string) (string, error) { return s, nil }

func TestEventValidate(t *testing.T) {
	d := prefsync.DefaultDictionary()
	base := func() prefsync.EventInput {
		return prefsync.EventInput{Subject: prefsync.Subject{Email: "A@Example.com"}, Channel: "email", Topic: "*",
			State: prefsync.OptedOut, Source: prefsync.Source{System: "crm"}}
	}
	ev, err := base().Validate(d, plainNormalizer{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Subject.Email != "a@example.com" || !ev.OccurredAt.Equal(t0) || ev.Source.Touchpoint != prefsync.API || ev.Evidence.Method != prefsync.Explicit {
		t.Errorf("defaults: %+v", ev)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*prefsync.EventInput)
		field string
	}{
		{"EmptySubject", func(e *prefsync.EventInput) { e.Subject = prefsync.Subject{} }, "subject"},
		{"BadEmail", func(e *prefsync.EventInput) { e.Subject.Email = "nope" }, "subject.email"},
		{"BadContactID", func(e *prefsync.EventInput) { e.Subject = prefsync.Subject{ContactID: "123"} }, "subject.contact_id"},
		{"UnknownChannel", func(e *prefsync.EventInput) { e.Channel = "fax" }, "channel"},
		{"UnknownTopic", func(e *prefsync.EventInput) { e.Topic = "gossip" }, "topic"},
		{"MissingChannel", func(e *prefsync.EventInput) { e.Channel = "" }, "channel"},
		{"BadState", func(e *prefsync.EventInput) { e.State = "maybe" }, "state"},
		{"NoState", func(e *prefsync.EventInput) { e.State = "" }, "state"},
		{"BadTime", func(e *prefsync.EventInput) { e.OccurredAt = "yesterday" }, "occurred_at"},
		{"FutureTime", func(e *prefsync.EventInput) { e.OccurredAt = t0.Add(time.Hour).Format(time.RFC3339) }, "occurred_at"},
		{"OptInWithoutMethod", func(e *prefsync.EventInput) { e.State = prefsync.OptedIn }, "evidence.method"},
		{"BadMethod", func(e *prefsync.EventInput) { e.Evidence.Method = "telepathy" }, "evidence.method"},
		{"BadTouchpoint", func(e *prefsync.EventInput) { e.Source.Touchpoint = "pigeon" }, "source.touchpoint"},
		{"NoSystem", func(e *prefsync.EventInput) { e.Source.System = " " }, "source.system"},
		{"PauseOnTopic", func(e *prefsync.EventInput) {
			e.State, e.Topic, e.PausedUntil = "", "newsletter", t0.Format(time.RFC3339)
		}, "topic"},
		{"PauseAndState", func(e *prefsync.EventInput) { e.PausedUntil = t0.Format(time.RFC3339) }, "paused_until"},
		{"PauseForever", func(e *prefsync.EventInput) { e.State, e.PausedUntil = "", "9999-12-31T00:00:00Z" }, "paused_until"},
		{"AncientTime", func(e *prefsync.EventInput) { e.OccurredAt = "1000-01-01T00:00:00Z" }, "occurred_at"},
		{"BadProof", func(e *prefsync.EventInput) { e.Evidence.Proof = []byte("{") }, "evidence.proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.edit(&in)
			_, err := in.Validate(d, plainNormalizer{}, t0)
			if prefsync.ErrorCode(err) != prefsync.EINVALID || prefsync.ErrorField(err) != tc.field {
				t.Errorf("err = %v, field %q; want EINVALID on %q", err, prefsync.ErrorField(err), tc.field)
			}
		})
	}
}
