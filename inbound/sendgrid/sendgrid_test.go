package sendgrid_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"prefsync"
	"prefsync/inbound"
	"prefsync/inbound/inboundtest"
	"prefsync/inbound/sendgrid"
)

type fixture struct {
	*inboundtest.Hub
	url  string
	key  *ecdsa.PrivateKey
	now  func() time.Time
	step func(time.Duration)
}

func newFixture(t *testing.T) *fixture {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	f := &fixture{
		now:  func() time.Time { mu.Lock(); defer mu.Unlock(); return at },
		step: func(d time.Duration) { mu.Lock(); at = at.Add(d); mu.Unlock() },
	}
	f.Hub = inboundtest.New(t, f.now, func(d *prefsync.Dictionary) inbound.Adapters {
		return inbound.Adapters{"sendgrid": sendgrid.Adapter{Dict: d}}
	})
	var err error
	if f.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	// The verification key as SendGrid's settings page shows it: base64 of the DER
	// SubjectPublicKeyInfo, no PEM framing.
	der, _ := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
	f.url = f.Register("esp", "sendgrid", map[string]any{"verification_key": base64.StdEncoding.EncodeToString(der),
		"groups": map[string]string{"4242": "newsletter"}})
	return f
}

// post sends body signed as SendGrid signs it, at ts, with key.
func (f *fixture) post(key *ecdsa.PrivateKey, ts time.Time, body string) int {
	f.T.Helper()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	digest := sha256.Sum256([]byte(stamp + body))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		f.T.Fatal(err)
	}
	req, _ := http.NewRequest("POST", f.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
	req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", stamp)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.T.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// The events below use the fields of SendGrid's Event Webhook reference.
const batch = `[
 {"email":"ana@example.com","timestamp":1793600000,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"unsubscribe","category":"cat facts","sg_event_id":"sg_unsub_1","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"},
 {"email":"bo@example.com","timestamp":1793600001,"event":"group_unsubscribe","sg_event_id":"sg_gu_1","sg_message_id":"m2","asm_group_id":4242,"useragent":"Mozilla/5.0","ip":"255.255.255.255"},
 {"email":"cy@example.com","timestamp":1793600002,"event":"group_unsubscribe","sg_event_id":"sg_gu_2","sg_message_id":"m3","asm_group_id":7},
 {"email":"di@example.com","timestamp":1793600003,"event":"spamreport","sg_event_id":"sg_spam_1","sg_message_id":"m4"},
 {"email":"ed@example.com","timestamp":1793600004,"event":"bounce","type":"bounce","reason":"500 unknown recipient","status":"5.0.0","sg_event_id":"sg_b_1","sg_message_id":"m5"},
 {"email":"fay@example.com","timestamp":1793600005,"event":"bounce","type":"blocked","reason":"temporarily refused","status":"4.0.0","sg_event_id":"sg_b_2","sg_message_id":"m6"},
 {"email":"gus@example.com","timestamp":1793600006,"event":"open","sg_event_id":"sg_o_1","sg_message_id":"m7","useragent":"Mozilla/5.0","ip":"192.0.2.1"}
]`

func TestEvents(t *testing.T) {
	f := newFixture(t)
	if code := f.post(f.key, f.now(), batch); code != 200 {
		t.Fatalf("POST = %d", code)
	}
	reason := func(email, channel, topic string) string {
		_, r := f.Allowed(prefsync.Subject{Email: email}, channel, topic)
		return r
	}
	// Contacts are in an unknown jurisdiction, so marketing is no_consent anyway; the
	// reasons show which opt-out decided.
	for _, tc := range []struct{ email, topic, want string }{
		{"ana@example.com", "product_updates", "opted_out:(email,*)"},
		{"bo@example.com", "newsletter", "opted_out:(email,newsletter)"},
		{"bo@example.com", "product_updates", "allowed"},
		{"cy@example.com", "product_updates", "opted_out:(email,*)"}, // group 7 is mapped to nothing
		{"di@example.com", "account", "suppressed:spam_complaint"},
		{"ed@example.com", "account", "suppressed:hard_bounce"},
		{"fay@example.com", "account", "transactional"},
		{"gus@example.com", "account", "transactional"},
	} {
		got := reason(tc.email, "email", tc.topic)
		if tc.want == "allowed" {
			if ok, r := f.Allowed(prefsync.Subject{Email: tc.email}, "email", tc.topic); !ok {
				t.Errorf("%s %s: %s, want allowed", tc.email, tc.topic, r)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.email, tc.topic, got, tc.want)
		}
	}
	cy := f.History(prefsync.Subject{Email: "cy@example.com"})
	if len(cy) != 1 || !strings.Contains(cy[0].Reason, "mapped to no topic") || cy[0].Source.Touchpoint != prefsync.ESPWebhook ||
		cy[0].Source.System != "esp" || !cy[0].OccurredAt.Equal(time.Unix(1793600002, 0)) {
		t.Errorf("unmapped group: %+v", cy)
	}
	// newsletter, promotions, events; then the suppression
	if di := f.History(prefsync.Subject{Email: "di@example.com"}); len(di) != 4 || di[3].Kind != prefsync.KindSuppression ||
		di[3].Reason != prefsync.SuppressedSpamComplaint || di[3].Source != (prefsync.Source{System: "esp", Touchpoint: prefsync.ESPWebhook}) {
		t.Errorf("spam report recorded %+v; want an opt-out per marketing topic by email, then the suppression", di)
	}
	if gus := f.History(prefsync.Subject{Email: "gus@example.com"}); gus != nil {
		t.Errorf("an open wrote %+v", gus)
	}
	// SendGrid retries a batch it got no 2xx for: sg_event_id makes it a duplicate.
	f.step(time.Minute)
	if code := f.post(f.key, f.now(), batch); code != 200 {
		t.Fatal(code)
	}
	if ana := f.History(prefsync.Subject{Email: "ana@example.com"}); len(ana) != 2 || ana[1].Status != prefsync.Duplicate {
		t.Errorf("retried batch: %+v", ana)
	}
	// A resubscription to a mapped group is an explicit opt-in to its topic.
	f.step(time.Minute)
	resub := `[{"email":"bo@example.com","timestamp":` + strconv.FormatInt(f.now().Unix(), 10) + `,"event":"group_resubscribe","sg_event_id":"sg_gr_1","asm_group_id":4242}]`
	if code := f.post(f.key, f.now(), resub); code != 200 {
		t.Fatal(code)
	}
	if ok, r := f.Allowed(prefsync.Subject{Email: "bo@example.com"}, "email", "newsletter"); !ok || r != "opted_in:(email,newsletter)" {
		t.Errorf("after group_resubscribe: %v %s", ok, r)
	}
}

func TestRefused(t *testing.T) {
	f := newFixture(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	one := `[{"email":"ana@example.com","timestamp":1793600000,"event":"unsubscribe","sg_event_id":"x1"}]`
	for _, tc := range []struct {
		name string
		send func() int
		want int
	}{
		{"OtherKey", func() int { return f.post(other, f.now(), one) }, 401},
		{"Stale", func() int { return f.post(f.key, f.now().Add(-2*time.Hour), one) }, 403},
		{"Tampered", func() int {
			stamp := strconv.FormatInt(f.now().Unix(), 10)
			digest := sha256.Sum256([]byte(stamp + one))
			sig, _ := ecdsa.SignASN1(rand.Reader, f.key, digest[:])
			req, _ := http.NewRequest("POST", f.url, strings.NewReader(strings.Replace(one, "ana", "bob", 1)))
			req.Header.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
			req.Header.Set("X-Twilio-Email-Event-Webhook-Timestamp", stamp)
			res, _ := http.DefaultClient.Do(req)
			res.Body.Close()
			return res.StatusCode
		}, 401},
		{"Unsigned", func() int {
			res, _ := http.Post(f.url, "application/json", strings.NewReader(one))
			res.Body.Close()
			return res.StatusCode
		}, 401},
		{"NotAnArray", func() int { return f.post(f.key, f.now(), `{"email":"ana@example.com"}`) }, 400},
		// One bad event refuses the whole batch: nothing half-written.
		{"PartlyBad", func() int {
			return f.post(f.key, f.now(), `[{"email":"ana@example.com","timestamp":1,"event":"unsubscribe","sg_event_id":"x2"},{"event":"unsubscribe"}]`)
		}, 400},
		{"BadAddress", func() int {
			return f.post(f.key, f.now(), `[{"email":"ana@example.com","timestamp":1,"event":"unsubscribe","sg_event_id":"x3"},{"email":"not an address","timestamp":1,"event":"unsubscribe","sg_event_id":"x4"}]`)
		}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.send(); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
			if h := f.History(prefsync.Subject{Email: "ana@example.com"}); h != nil {
				t.Errorf("refused request wrote %+v", h)
			}
		})
	}
}
