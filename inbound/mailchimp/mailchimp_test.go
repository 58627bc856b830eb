package mailchimp_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"prefsync"
	"prefsync/inbound"
	"prefsync/inbound/inboundtest"
	"prefsync/inbound/mailchimp"
)

func newHub(t *testing.T, config map[string]any) (*inboundtest.Hub, string) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	h := inboundtest.New(t, func() time.Time { return at }, func(d *prefsync.Dictionary) inbound.Adapters {
		return inbound.Adapters{"mailchimp": mailchimp.Adapter{Dict: d}}
	})
	return h, h.Register("mc", "mailchimp", config)
}

func post(t *testing.T, to string, f url.Values) int {
	t.Helper()
	res, err := http.PostForm(to, f)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// hook is a webhook's form, with the fields of Mailchimp's webhook guide.
func hook(typ, email, list, firedAt string, extra ...string) url.Values {
	f := url.Values{"type": {typ}, "fired_at": {firedAt}, "data[id]": {"8a25ff1d98"}, "data[list_id]": {list},
		"data[email]": {email}, "data[email_type]": {"html"}, "data[merges][EMAIL]": {email}, "data[merges][FNAME]": {"Ana"},
		"data[ip_opt]": {"10.20.10.30"}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

func TestWebhooks(t *testing.T) {
	h, to := newHub(t, map[string]any{"lists": map[string]string{"a6b5da1054": "newsletter"}})
	// Mailchimp checks the URL with a GET before it saves the webhook.
	res, err := http.Get(to)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("validation GET: %v %v", err, res)
	}
	res.Body.Close()
	for _, f := range []url.Values{
		hook("unsubscribe", "ana@example.com", "a6b5da1054", "2026-11-01 21:35:57", "data[action]", "unsub", "data[reason]", "manual", "data[campaign_id]", "cb398d21d2"),
		hook("unsubscribe", "bo@example.com", "ffffffffff", "2026-11-01 21:36:00", "data[action]", "unsub", "data[reason]", "manual"),
		hook("cleaned", "cy@example.com", "a6b5da1054", "2026-11-01 21:37:00", "data[reason]", "hard", "data[campaign_id]", "4fjk2ma9xd"),
		hook("unsubscribe", "di@example.com", "a6b5da1054", "2026-11-01 21:38:00", "data[action]", "unsub", "data[reason]", "abuse"),
		hook("profile", "ed@example.com", "a6b5da1054", "2026-11-01 21:39:00"),
	} {
		if code := post(t, to, f); code != 200 {
			t.Fatalf("%s: %d", f.Get("type"), code)
		}
	}
	for _, tc := range []struct{ email, topic, want string }{
		{"ana@example.com", "newsletter", "opted_out:(email,newsletter)"},
		{"bo@example.com", "product_updates", "opted_out:(email,*)"},
		{"cy@example.com", "account", "suppressed:hard_bounce"},
		{"di@example.com", "account", "suppressed:spam_complaint"},
	} {
		if _, got := h.Allowed(prefsync.Subject{Email: tc.email}, "email", tc.topic); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.email, tc.topic, got, tc.want)
		}
	}
	if ana := h.History(prefsync.Subject{Email: "ana@example.com"}); len(ana) != 1 ||
		!ana[0].OccurredAt.Equal(time.Date(2026, 11, 1, 21, 35, 57, 0, time.UTC)) || ana[0].Source.System != "mc" {
		t.Errorf("ana: %+v", ana)
	}
	if ed := h.History(prefsync.Subject{Email: "ed@example.com"}); ed != nil {
		t.Errorf("a profile update wrote %+v", ed)
	}
	// A subscribe is implicit unless the source says subscribes are consent: it never
	// undoes the member's own unsubscribe (rule 2).
	post(t, to, hook("subscribe", "ana@example.com", "a6b5da1054", "2026-11-02 08:00:00"))
	ana := h.History(prefsync.Subject{Email: "ana@example.com"})
	if last := ana[len(ana)-1]; last.Status != prefsync.Rejected || last.Evidence.Method != prefsync.Implicit {
		t.Errorf("subscribe after unsubscribe: %+v", last)
	}
}

func TestSubscribesAreConsent(t *testing.T) {
	h, to := newHub(t, map[string]any{"lists": map[string]string{"a6b5da1054": "newsletter"}, "subscribes_are_consent": true})
	post(t, to, hook("unsubscribe", "ana@example.com", "a6b5da1054", "2026-11-01 21:35:57", "data[reason]", "manual"))
	post(t, to, hook("subscribe", "ana@example.com", "a6b5da1054", "2026-11-02 08:00:00"))
	if ok, reason := h.Allowed(prefsync.Subject{Email: "ana@example.com"}, "email", "newsletter"); !ok {
		t.Errorf("after a consented subscribe: %s", reason)
	}
}

func TestRefused(t *testing.T) {
	h, to := newHub(t, map[string]any{})
	for name, tc := range map[string]struct {
		to   string
		form url.Values
		want int
	}{
		"WrongSecret": {strings.TrimSuffix(to, to[len(to)-4:]) + "0000", hook("unsubscribe", "ana@example.com", "x", "2026-11-01 21:35:57"), 404},
		"NoEmail":     {to, hook("unsubscribe", "", "x", "2026-11-01 21:35:57"), 400},
		"BadTime":     {to, hook("unsubscribe", "ana@example.com", "x", "yesterday"), 400},
	} {
		t.Run(name, func(t *testing.T) {
			if code := post(t, tc.to, tc.form); code != tc.want {
				t.Errorf("status %d, want %d", code, tc.want)
			}
		})
	}
	if hist := h.History(prefsync.Subject{Email: "ana@example.com"}); hist != nil {
		t.Errorf("refused requests wrote %+v", hist)
	}
	// The wrong secret's GET is refused too.
	res, _ := http.Get(strings.TrimSuffix(to, to[len(to)-4:]) + "0000")
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("validation GET with a wrong secret: %d", res.StatusCode)
	}
}
