package postmark_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"prefsync"
	"prefsync/inbound"
	"prefsync/inbound/inboundtest"
	"prefsync/inbound/postmark"
)

func newHub(t *testing.T) (*inboundtest.Hub, string) {
	now := func() time.Time { return time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) }
	h := inboundtest.New(t, now, func(d *prefsync.Dictionary) inbound.Adapters {
		return inbound.Adapters{"postmark": postmark.Adapter{Dict: d}}
	})
	return h, h.Register("pm", "postmark", map[string]any{"streams": map[string]string{"broadcast": "newsletter"}})
}

func post(t *testing.T, to, body string) int {
	t.Helper()
	res, err := http.Post(to, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// The bodies follow the examples of Postmark's webhook documentation.
const (
	unsubscribed = `{"RecordType":"SubscriptionChange","MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","ServerID":123456,
		"MessageStream":"broadcast","ChangedAt":"2026-11-01T10:53:34.416071Z","Recipient":"ana@example.com","Origin":"Recipient",
		"SuppressSending":true,"SuppressionReason":"ManualSuppression","Tag":"welcome","Metadata":{"example":"value"}}`
	unsubscribedAll = `{"RecordType":"SubscriptionChange","MessageID":"a1","ServerID":123456,"MessageStream":"outbound",
		"ChangedAt":"2026-11-01T10:53:34Z","Recipient":"bo@example.com","Origin":"Recipient","SuppressSending":true,"SuppressionReason":"ManualSuppression"}`
	hardBounce = `{"RecordType":"Bounce","ID":4323372036854775807,"Type":"HardBounce","TypeCode":1,"Name":"Hard bounce","Tag":"Test",
		"MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","ServerID":23,"MessageStream":"outbound","Description":"The server was unable to deliver your message (ex: unknown user, mailbox not found).",
		"Details":"Test bounce details","Email":"cy@example.com","From":"sender@example.com","BouncedAt":"2026-11-01T16:33:54.9070259Z",
		"DumpAvailable":true,"Inactive":true,"CanActivate":true,"Subject":"Test subject"}`
	softBounce = `{"RecordType":"Bounce","ID":42,"Type":"SoftBounce","TypeCode":4096,"MessageID":"b2","Email":"di@example.com","BouncedAt":"2026-11-01T16:33:54Z"}`
	complaint  = `{"RecordType":"SpamComplaint","ID":42,"Type":"SpamComplaint","TypeCode":512,"Name":"Spam complaint","MessageID":"c3",
		"ServerID":1234,"MessageStream":"outbound","Email":"ed@example.com","From":"sender@example.com","BouncedAt":"2026-11-01T16:33:54Z","Subject":"Test subject"}`
	reactivatedByStaff = `{"RecordType":"SubscriptionChange","MessageID":"d4","MessageStream":"broadcast","ChangedAt":"2026-11-01T11:00:00Z",
		"Recipient":"ana@example.com","Origin":"Customer","SuppressSending":false,"SuppressionReason":null}`
)

func TestRecords(t *testing.T) {
	h, to := newHub(t)
	for _, b := range []string{unsubscribed, unsubscribedAll, hardBounce, softBounce, complaint, reactivatedByStaff,
		`{"RecordType":"Open","MessageID":"e5","Recipient":"fay@example.com"}`} {
		if code := post(t, to, b); code != 200 {
			t.Fatalf("POST %.60s… = %d", b, code)
		}
	}
	for _, tc := range []struct{ email, topic, want string }{
		{"ana@example.com", "newsletter", "opted_out:(email,newsletter)"}, // broadcast is mapped; staff reactivation ignored
		{"bo@example.com", "product_updates", "opted_out:(email,*)"},      // outbound is not mapped
		{"cy@example.com", "account", "suppressed:hard_bounce"},
		{"di@example.com", "account", "transactional"},
		{"ed@example.com", "account", "suppressed:spam_complaint"},
	} {
		if _, got := h.Allowed(prefsync.Subject{Email: tc.email}, "email", tc.topic); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.email, tc.topic, got, tc.want)
		}
	}
	ana := h.History(prefsync.Subject{Email: "ana@example.com"})
	if len(ana) != 1 || ana[0].Source.Touchpoint != prefsync.ESPWebhook || ana[0].Source.System != "pm" ||
		!ana[0].OccurredAt.Equal(time.Date(2026, 11, 1, 10, 53, 34, 416071000, time.UTC)) || len(ana[0].Evidence.Proof) == 0 {
		t.Errorf("ana: %+v", ana)
	}
	// A retry of the same webhook is a duplicate.
	post(t, to, unsubscribed)
	if ana := h.History(prefsync.Subject{Email: "ana@example.com"}); len(ana) != 2 || ana[1].Status != prefsync.Duplicate {
		t.Errorf("retry: %+v", ana)
	}
}

func TestCredentials(t *testing.T) {
	h, to := newHub(t)
	u, _ := url.Parse(to)
	if u.User == nil {
		t.Fatalf("inbound_url %s carries no credentials", to)
	}
	wrong := *u
	wrong.User = url.UserPassword("prefsync", "guess")
	none := *u
	none.User = nil
	for name, target := range map[string]string{"WrongPassword": wrong.String(), "NoCredentials": none.String()} {
		if code := post(t, target, unsubscribed); code != 404 {
			t.Errorf("%s: %d, want 404", name, code)
		}
	}
	if code := post(t, to, `{"RecordType":"SubscriptionChange","Recipient":"ana@example.com"}`); code != 400 {
		t.Errorf("incomplete change: %d", code)
	}
	if code := post(t, to, `not json`); code != 400 {
		t.Errorf("not JSON: %d", code)
	}
	if hist := h.History(prefsync.Subject{Email: "ana@example.com"}); hist != nil {
		t.Errorf("refused requests wrote %+v", hist)
	}
}

// TestReactivation: an unsubscribe and the recipient's later reactivation of the same
// message are two changes, not a duplicate.
func TestReactivation(t *testing.T) {
	h, to := newHub(t)
	post(t, to, unsubscribed)
	post(t, to, `{"RecordType":"SubscriptionChange","MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","MessageStream":"broadcast",
		"ChangedAt":"2026-11-01T12:00:00Z","Recipient":"ana@example.com","Origin":"Recipient","SuppressSending":false}`)
	hist := h.History(prefsync.Subject{Email: "ana@example.com"})
	if len(hist) != 2 || hist[1].Status != prefsync.Applied || hist[1].State != prefsync.OptedIn {
		t.Errorf("history = %+v", hist)
	}
}
