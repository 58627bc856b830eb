package twilio_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"prefsync"
	"prefsync/inbound"
	"prefsync/inbound/inboundtest"
	"prefsync/inbound/twilio"
)

const token = "12345"

// TestSignatureKnownAnswer is the example of Twilio's request validation documentation.
func TestSignatureKnownAnswer(t *testing.T) {
	params := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"}}
	if got := twilio.Signature([]byte(token), "https://mycompany.com/myapp.php?foo=1&bar=2", params); got != "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" {
		t.Errorf("Signature = %s", got)
	}
}

func newHub(t *testing.T) (*inboundtest.Hub, string) {
	// Each reading of the clock is a minute later: messages arrive one after another.
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		at = at.Add(time.Minute)
		return at
	}
	h := inboundtest.New(t, now, func(d *prefsync.Dictionary) inbound.Adapters {
		return inbound.Adapters{"twilio": twilio.Adapter{Dict: d}}
	})
	return h, h.Register("sms", "twilio", map[string]any{"auth_token": token})
}

// sms posts an inbound message as Twilio does, signed with key.
func sms(t *testing.T, to, key string, fields url.Values) (int, string) {
	t.Helper()
	body := fields.Encode()
	req, _ := http.NewRequest("POST", to, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature([]byte(key), to, fields))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return res.StatusCode, b.String()
}

// message is an inbound SMS webhook's fields, as Twilio's messaging webhook documents
// them (a subset).
func message(sid, from, body string) url.Values {
	return url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {"AC00000000000000000000000000000000"},
		"From": {from}, "To": {"+15005550006"}, "Body": {body}, "NumMedia": {"0"}, "ApiVersion": {"2010-04-01"}}
}

func TestKeywords(t *testing.T) {
	h, to := newHub(t)
	ana := prefsync.Subject{Phone: "+14155550100"}
	for _, word := range []string{"  stop ", "Quit", "OPTOUT", "stopall"} {
		code, body := sms(t, to, token, message("SM"+strings.TrimSpace(word), ana.Phone, word))
		if code != 200 || !strings.Contains(body, "<Message>You have been unsubscribed") {
			t.Fatalf("%q: %d %s", word, code, body)
		}
	}
	if ok, reason := h.Allowed(ana, "sms", "promotions"); ok || reason != "opted_out:(sms,*)" {
		t.Errorf("after STOP: %v %s", ok, reason)
	}
	// STOP covers SMS only: WhatsApp is as it was (no consent, in an unknown jurisdiction).
	if _, reason := h.Allowed(ana, "whatsapp", "promotions"); reason != "no_consent" {
		t.Errorf("whatsapp after STOP: %s", reason)
	}
	hist := h.History(ana)
	if first := hist[0]; first.Source.Touchpoint != prefsync.SMSKeyword || first.Source.System != "sms" ||
		first.Evidence.Method != prefsync.Explicit || first.Channel != "sms" || first.Topic != "*" {
		t.Errorf("recorded %+v", first)
	}

	// START is an explicit opt-in: it lifts the opt-out.
	code, body := sms(t, to, token, message("SMstart", ana.Phone, "Start"))
	if code != 200 || !strings.Contains(body, "resubscribed") {
		t.Fatalf("START: %d %s", code, body)
	}
	if ok, reason := h.Allowed(ana, "sms", "promotions"); !ok {
		t.Errorf("after START: %s", reason)
	}
	// HELP and anything else change nothing; HELP is answered.
	n := len(h.History(ana))
	if _, body := sms(t, to, token, message("SMhelp", ana.Phone, "help")); !strings.Contains(body, "Reply STOP") {
		t.Errorf("HELP answered %s", body)
	}
	if _, body := sms(t, to, token, message("SMtalk", ana.Phone, "stop it please")); body != `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Response/>" {
		t.Errorf("a sentence with STOP in it answered %q", body)
	}
	if got := len(h.History(ana)); got != n {
		t.Errorf("HELP or chat wrote %d entries", got-n)
	}
	// Twilio retries a webhook it got no answer to: the same MessageSid is a duplicate.
	sms(t, to, token, message("SMretry", ana.Phone, "STOP"))
	sms(t, to, token, message("SMretry", ana.Phone, "STOP"))
	hist = h.History(ana)
	if last := hist[len(hist)-1]; last.Status != prefsync.Duplicate {
		t.Errorf("retried STOP recorded as %s", last.Status)
	}
}

func TestStopPolicyAndReplies(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) }
	h := inboundtest.New(t, now, func(d *prefsync.Dictionary) inbound.Adapters {
		return inbound.Adapters{"twilio": twilio.Adapter{Dict: d}}
	})
	to := h.Register("sms", "twilio", map[string]any{"auth_token": token, "stop_channels": []string{"sms", "whatsapp"},
		"replies": map[string]string{"stop": "Bye & thanks <3"}})
	bo := prefsync.Subject{Phone: "+14155550101"}
	_, body := sms(t, to, token, message("SM1", bo.Phone, "STOP"))
	if !strings.Contains(body, "<Message>Bye &amp; thanks &lt;3</Message>") {
		t.Errorf("configured reply: %s", body)
	}
	for _, ch := range []string{"sms", "whatsapp"} {
		if _, reason := h.Allowed(bo, ch, "promotions"); reason != "opted_out:("+ch+",*)" {
			t.Errorf("STOP with policy sms+whatsapp: %s decided %s", ch, reason)
		}
	}
}

func TestRefused(t *testing.T) {
	h, to := newHub(t)
	ana := prefsync.Subject{Phone: "+14155550100"}
	for _, tc := range []struct {
		name string
		send func() int
		want int
	}{
		{"WrongToken", func() int { c, _ := sms(t, to, "other", message("SM1", ana.Phone, "STOP")); return c }, 401},
		{"Unsigned", func() int {
			res, _ := http.PostForm(to, message("SM1", ana.Phone, "STOP"))
			res.Body.Close()
			return res.StatusCode
		}, 401},
		{"Tampered", func() int {
			m := message("SM1", ana.Phone, "START")
			req, _ := http.NewRequest("POST", to, strings.NewReader(message("SM1", ana.Phone, "STOP").Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Twilio-Signature", twilio.Signature([]byte(token), to, m))
			res, _ := http.DefaultClient.Do(req)
			res.Body.Close()
			return res.StatusCode
		}, 401},
		{"WrongURLSecret", func() int { c, _ := sms(t, to+"x", token, message("SM1", ana.Phone, "STOP")); return c }, 404},
		{"NoSender", func() int { c, _ := sms(t, to, token, url.Values{"MessageSid": {"SM2"}, "Body": {"STOP"}}); return c }, 400},
		{"BadPhone", func() int { c, _ := sms(t, to, token, message("SM3", "not a phone", "STOP")); return c }, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.send(); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
			if hist := h.History(ana); hist != nil {
				t.Errorf("refused request wrote %+v", hist)
			}
		})
	}
}
