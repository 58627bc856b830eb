package ses_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"sync"
	"testing"
	"time"

	"prefsync"
	"prefsync/inbound"
	"prefsync/inbound/inboundtest"
	"prefsync/inbound/ses"
)

const (
	topic   = "arn:aws:sns:us-east-1:123456789012:ses-notifications"
	certURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"
)

// aws stands in for SNS: it signs messages with a certificate it serves at certURL and
// records the subscription confirmations it gets.
type aws struct {
	key       *rsa.PrivateKey
	pem       []byte
	mu        sync.Mutex
	fetched   []string
	confirmed []string
}

func newAWS(t *testing.T) *aws {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &aws{key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (a *aws) get(_ context.Context, url string) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch url {
	case certURL:
		a.fetched = append(a.fetched, url)
		return a.pem, nil
	case "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + topic + "&Token=tok":
		a.confirmed = append(a.confirmed, url)
		return []byte("<ConfirmSubscriptionResponse/>"), nil
	}
	return nil, errors.New("not found")
}

// sign signs m as SNS does with SignatureVersion v.
func (a *aws) sign(m *ses.Message, v string) {
	m.SignatureVersion, m.SigningCertURL = v, certURL
	var sig []byte
	if v == "1" {
		d := sha1.Sum([]byte(ses.StringToSign(m)))
		sig, _ = rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256([]byte(ses.StringToSign(m)))
		sig, _ = rsa.SignPKCS1v15(rand.Reader, a.key, crypto.SHA256, d[:])
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
}

var now = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*inboundtest.Hub, *aws, string) {
	a := newAWS(t)
	h := inboundtest.New(t, func() time.Time { return now }, func(d *prefsync.Dictionary) inbound.Adapters {
		return inbound.Adapters{"ses": ses.Adapter{Dict: d, Get: a.get}}
	})
	return h, a, h.Register("ses", "ses", map[string]any{"topic_arns": []string{topic}})
}

func post(t *testing.T, to string, m *ses.Message) int {
	t.Helper()
	b, _ := json.Marshal(m)
	req, _ := http.NewRequest("POST", to, bytes.NewReader(b))
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8") // as SNS sends it
	req.Header.Set("x-amz-sns-message-type", m.Type)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// notification wraps an SES notification (fields of SES's notification contents
// reference) in an SNS message.
func notification(id, sesJSON string) *ses.Message {
	return &ses.Message{Type: "Notification", MessageId: id, TopicArn: topic, Message: sesJSON,
		Timestamp: now.Add(-time.Minute).Format("2006-01-02T15:04:05.000Z")}
}

const (
	permanentBounce = `{"notificationType":"Bounce","bounce":{"feedbackId":"0100017a-bounce","bounceType":"Permanent","bounceSubType":"General",
		"bouncedRecipients":[{"emailAddress":"ana@example.com","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],
		"timestamp":"2026-11-02T08:58:00.000Z","reportingMTA":"dsn; a8-70.smtp-out.amazonses.com"},
		"mail":{"timestamp":"2026-11-02T08:57:58.000Z","source":"news@example.org","messageId":"0100017a-mail","destination":["ana@example.com"]}}`
	transientBounce = `{"notificationType":"Bounce","bounce":{"bounceType":"Transient","bounceSubType":"MailboxFull","bouncedRecipients":[{"emailAddress":"bo@example.com"}],"timestamp":"2026-11-02T08:58:00.000Z"},"mail":{}}`
	complaint       = `{"notificationType":"Complaint","complaint":{"feedbackId":"0100017a-complaint","complaintFeedbackType":"abuse",
		"complainedRecipients":[{"emailAddress":"cy@example.com"}],"timestamp":"2026-11-02T08:59:00.000Z","userAgent":"ExampleCorp Feedback Loop (V0.01)"},
		"mail":{"timestamp":"2026-11-02T08:57:58.000Z","source":"news@example.org","messageId":"0100017a-mail2","destination":["cy@example.com"]}}`
)

func TestNotifications(t *testing.T) {
	h, a, to := setup(t)
	for i, tc := range []struct{ v, body string }{{"1", permanentBounce}, {"2", transientBounce}, {"2", complaint}} {
		m := notification("msg-"+string(rune('a'+i)), tc.body)
		a.sign(m, tc.v)
		if code := post(t, to, m); code != 200 {
			t.Fatalf("notification %d: %d", i, code)
		}
	}
	for _, tc := range []struct{ email, topic, want string }{
		{"ana@example.com", "account", "suppressed:hard_bounce"},
		{"bo@example.com", "account", "transactional"},
		{"cy@example.com", "account", "suppressed:spam_complaint"},
	} {
		if _, got := h.Allowed(prefsync.Subject{Email: tc.email}, "email", tc.topic); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.email, got, tc.want)
		}
	}
	// An opt-out per marketing topic by email, then the suppression.
	if cy := h.History(prefsync.Subject{Email: "cy@example.com"}); len(cy) != 4 || cy[0].Reason != "reported as spam" ||
		cy[3].Kind != prefsync.KindSuppression || cy[3].Reason != prefsync.SuppressedSpamComplaint || cy[3].Source.Touchpoint != prefsync.ESPWebhook {
		t.Errorf("complaint: %+v", cy)
	}
	if len(a.fetched) != 1 {
		t.Errorf("certificate fetched %d times, want once", len(a.fetched))
	}
}

func TestSubscriptionConfirmation(t *testing.T) {
	h, a, to := setup(t)
	m := &ses.Message{Type: "SubscriptionConfirmation", MessageId: "conf-1", Token: "tok", TopicArn: topic,
		Message:      "You have chosen to subscribe to the topic " + topic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + topic + "&Token=tok",
		Timestamp:    now.Add(-time.Minute).Format("2006-01-02T15:04:05.000Z")}
	a.sign(m, "1")
	if code := post(t, to, m); code != 200 || len(a.confirmed) != 1 {
		t.Errorf("confirmation: %d, confirmed %v", code, a.confirmed)
	}
	// A confirmation whose SubscribeURL is not Amazon's is not followed.
	evil := *m
	evil.MessageId, evil.SubscribeURL = "conf-2", "https://attacker.example/?Action=ConfirmSubscription"
	a.sign(&evil, "1")
	if code := post(t, to, &evil); code != 400 || len(a.confirmed) != 1 {
		t.Errorf("foreign SubscribeURL: %d, confirmed %v", code, a.confirmed)
	}
	_ = h
}

func TestRefused(t *testing.T) {
	h, a, to := setup(t)
	other := newAWS(t)
	for _, tc := range []struct {
		name string
		msg  func() *ses.Message
		want int
	}{
		{"ForeignKey", func() *ses.Message { m := notification("x1", permanentBounce); other.sign(m, "2"); return m }, 401},
		{"Tampered", func() *ses.Message {
			m := notification("x2", complaint)
			a.sign(m, "2")
			m.Message = permanentBounce
			return m
		}, 401},
		{"OtherTopic", func() *ses.Message {
			m := notification("x3", permanentBounce)
			m.TopicArn = "arn:aws:sns:us-east-1:999999999999:not-ours"
			a.sign(m, "2")
			return m
		}, 403},
		{"Stale", func() *ses.Message {
			m := notification("x4", permanentBounce)
			m.Timestamp = now.Add(-2 * time.Hour).Format("2006-01-02T15:04:05.000Z")
			a.sign(m, "2")
			return m
		}, 403},
		{"CertNotAmazon", func() *ses.Message {
			m := notification("x5", permanentBounce)
			a.sign(m, "2")
			m.SigningCertURL = "https://sns.us-east-1.amazonaws.com.attacker.example/cert.pem"
			return m
		}, 401},
		{"Unsigned", func() *ses.Message { m := notification("x6", permanentBounce); m.SignatureVersion = "2"; return m }, 401},
		{"NotSES", func() *ses.Message { m := notification("x7", `not json`); a.sign(m, "2"); return m }, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := post(t, to, tc.msg()); code != tc.want {
				t.Errorf("status %d, want %d", code, tc.want)
			}
			for _, e := range []string{"ana@example.com", "cy@example.com"} {
				if _, r := h.Allowed(prefsync.Subject{Email: e}, "email", "account"); r != "transactional" {
					t.Errorf("%s after a refused message: %s", e, r)
				}
			}
		})
	}
}

// TestUnreadableRecipient: a bounce naming an address that does not read is left out;
// the rest of the notification is recorded, and the answer is 200, so SNS does not
// retry it for ever.
func TestUnreadableRecipient(t *testing.T) {
	h, a, to := setup(t)
	m := notification("bad-1", `{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"not an address"},{"emailAddress":"ana@example.com"}],"timestamp":"2026-11-02T08:58:00.000Z"},"mail":{}}`)
	a.sign(m, "2")
	if code := post(t, to, m); code != 200 {
		t.Fatalf("status %d", code)
	}
	if _, r := h.Allowed(prefsync.Subject{Email: "ana@example.com"}, "email", "account"); r != "suppressed:hard_bounce" {
		t.Errorf("ana: %s", r)
	}
}
