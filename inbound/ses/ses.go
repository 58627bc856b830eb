// Package ses reads Amazon SES bounce and complaint notifications delivered by Amazon
// SNS to an HTTPS subscription.
//
// SNS signs every message: the base64 Signature is RSA over a string made of some of the
// message's fields, "Name\nvalue\n" in a fixed order, with SHA1 (SignatureVersion 1) or
// SHA256 (2), verified with the certificate at SigningCertURL, an https URL on an
// sns.<region>.amazonaws.com host
// (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html). A new
// subscription is confirmed by fetching the SubscribeURL of its SubscriptionConfirmation.
// The notification's Message is SES's JSON (notificationType Bounce or Complaint, or
// eventType with event publishing) (https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html).
package ses

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"prefsync"
	"prefsync/inbound"
)

// Config configures an SES source.
type Config struct {
	// TopicARNs are the SNS topics whose messages are taken; messages of any other
	// topic (another AWS account's) are refused.
	TopicARNs []string `json:"topic_arns"`
	// MaxAge refuses messages older than this (default 1h).
	MaxAge string `json:"max_age"`
}

// Adapter is the SES adapter. Get fetches signing certificates and confirms
// subscriptions; tests inject it, and nil uses a plain HTTPS client.
type Adapter struct {
	Dict *prefsync.Dictionary
	Get  func(ctx context.Context, url string) ([]byte, error)
}

type receiver struct {
	topics    []string
	maxAge    time.Duration
	marketing []string
	get       func(ctx context.Context, url string) ([]byte, error)

	mu    sync.Mutex
	certs map[string]*x509.Certificate
}

var _ inbound.Adapter = Adapter{}

// Configure implements inbound.Adapter.
func (a Adapter) Configure(raw json.RawMessage) (inbound.Receiver, error) {
	var c Config
	if err := inbound.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	if len(c.TopicARNs) == 0 {
		return nil, prefsync.FieldErrorf("topic_arns", "name the SNS topics SES publishes to (arn:aws:sns:…)")
	}
	for i, arn := range c.TopicARNs {
		if !strings.HasPrefix(arn, "arn:aws") || strings.Count(arn, ":") != 5 {
			return nil, prefsync.FieldErrorf(fmt.Sprintf("topic_arns[%d]", i), "%q is not an SNS topic ARN", arn)
		}
	}
	rc := &receiver{topics: c.TopicARNs, maxAge: time.Hour, marketing: inbound.MarketingTopics(a.Dict, "email"),
		get: a.Get, certs: map[string]*x509.Certificate{}}
	if c.MaxAge != "" {
		var err error
		if rc.maxAge, err = prefsync.ParseDuration(c.MaxAge); err != nil || rc.maxAge <= 0 {
			return nil, prefsync.FieldErrorf("max_age", "want a duration such as 10m or 1h")
		}
	}
	if rc.get == nil {
		rc.get = httpsGet
	}
	return rc, nil
}

// Message is an SNS message, with the field names SNS gives them.
type Message struct {
	Type             string
	MessageId        string
	Token            string `json:",omitempty"`
	TopicArn         string
	Subject          *string `json:",omitempty"`
	Message          string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	SubscribeURL     string `json:",omitempty"`
}

// Receive implements inbound.Receiver.
func (rc *receiver) Receive(r *inbound.Request) (*inbound.Result, error) {
	var m Message
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return nil, prefsync.FieldErrorf("body", "not an SNS message: %v", err)
	}
	if err := rc.verify(r, &m); err != nil {
		return nil, err
	}
	res := &inbound.Result{}
	switch m.Type {
	case "SubscriptionConfirmation":
		if !awsURL(m.SubscribeURL) {
			return nil, prefsync.FieldErrorf("SubscribeURL", "not an https URL of Amazon SNS")
		}
		if _, err := rc.get(r.HTTP.Context(), m.SubscribeURL); err != nil {
			return nil, prefsync.Errorf(prefsync.EUNAVAILABLE, "confirming the subscription: %v", err)
		}
		res.Ignored++
	case "Notification":
		if err := rc.notification(r, &m, res); err != nil {
			return nil, err
		}
	default:
		res.Ignored++ // UnsubscribeConfirmation
	}
	return res, nil
}

// verify checks the message's topic, age and signature.
func (rc *receiver) verify(r *inbound.Request, m *Message) error {
	if !slices.Contains(rc.topics, m.TopicArn) {
		return prefsync.Errorf(prefsync.EFORBIDDEN, "the message is from SNS topic %q, which this source does not take", m.TopicArn)
	}
	var h crypto.Hash
	switch m.SignatureVersion {
	case "1":
		h = crypto.SHA1
	case "2":
		h = crypto.SHA256
	default:
		return inbound.Unauthorized("unknown SignatureVersion %q", m.SignatureVersion)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(sig) == 0 {
		return inbound.Unauthorized("the message is not signed")
	}
	cert, err := rc.cert(r.HTTP.Context(), m.SigningCertURL)
	if err != nil {
		return err
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return inbound.Unauthorized("the signing certificate holds no RSA key")
	}
	var digest []byte
	if h == crypto.SHA1 {
		d := sha1.Sum([]byte(StringToSign(m)))
		digest = d[:]
	} else {
		d := sha256.Sum256([]byte(StringToSign(m)))
		digest = d[:]
	}
	if rsa.VerifyPKCS1v15(key, h, digest, sig) != nil {
		return inbound.Unauthorized("the SNS signature does not verify")
	}
	at, err := time.Parse(time.RFC3339Nano, m.Timestamp)
	if err != nil {
		return prefsync.FieldErrorf("Timestamp", "not a time: %q", m.Timestamp)
	}
	if age := r.Now.Sub(at); age > rc.maxAge || age < -5*time.Minute {
		return prefsync.Errorf(prefsync.EFORBIDDEN, "the message is from %s, outside the replay window of %s", m.Timestamp, rc.maxAge)
	}
	return nil
}

// StringToSign is what SNS signs of a message: the fields' values exactly as sent.
func StringToSign(m *Message) string {
	var b strings.Builder
	add := func(name, value string) {
		b.WriteString(name)
		b.WriteByte('\n')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	add("Message", m.Message)
	add("MessageId", m.MessageId)
	if m.Type == "Notification" {
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
	} else {
		add("SubscribeURL", m.SubscribeURL)
	}
	add("Timestamp", m.Timestamp)
	if m.Type != "Notification" {
		add("Token", m.Token)
	}
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

var snsHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

func awsURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https" && snsHost.MatchString(u.Hostname())
}

// cert returns the certificate at an SNS signing URL, fetched once.
func (rc *receiver) cert(ctx context.Context, at string) (*x509.Certificate, error) {
	if !awsURL(at) {
		return nil, inbound.Unauthorized("SigningCertURL is not an https URL of Amazon SNS")
	}
	rc.mu.Lock()
	c, ok := rc.certs[at]
	rc.mu.Unlock()
	if ok {
		return c, nil
	}
	data, err := rc.get(ctx, at)
	if err != nil {
		return nil, prefsync.Errorf(prefsync.EUNAVAILABLE, "fetching the signing certificate: %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, inbound.Unauthorized("the signing certificate does not parse")
	}
	if c, err = x509.ParseCertificate(block.Bytes); err != nil {
		return nil, inbound.Unauthorized("the signing certificate does not parse")
	}
	rc.mu.Lock()
	rc.certs[at] = c
	rc.mu.Unlock()
	return c, nil
}

// notification is SES's content.
type notification struct {
	NotificationType string
	EventType        string
	Bounce           *struct {
		BounceType        string
		BouncedRecipients []struct{ EmailAddress string }
		Timestamp         time.Time
	}
	Complaint *struct {
		ComplainedRecipients  []struct{ EmailAddress string }
		ComplaintFeedbackType string
		Timestamp             time.Time
	}
}

func (rc *receiver) notification(r *inbound.Request, m *Message, res *inbound.Result) error {
	var n notification
	if err := json.Unmarshal([]byte(m.Message), &n); err != nil {
		return prefsync.FieldErrorf("Message", "not an SES notification: %v", err)
	}
	kind := n.NotificationType
	if kind == "" {
		kind = n.EventType
	}
	switch {
	case kind == "Bounce" && n.Bounce != nil:
		if n.Bounce.BounceType != "Permanent" {
			res.Ignored++ // a transient bounce is not a bad address
			return nil
		}
		for _, rcpt := range n.Bounce.BouncedRecipients {
			res.Suppressions = append(res.Suppressions, prefsync.Suppression{Address: rcpt.EmailAddress, Reason: prefsync.SuppressedHardBounce})
		}
	case kind == "Complaint" && n.Complaint != nil:
		if n.Complaint.ComplaintFeedbackType == "not-spam" {
			res.Ignored++
			return nil
		}
		for _, rcpt := range n.Complaint.ComplainedRecipients {
			for _, t := range rc.marketing {
				res.Events = append(res.Events, r.Event(inbound.Change{Subject: prefsync.Subject{Email: rcpt.EmailAddress},
					Scope: prefsync.Scope{Channel: "email", Topic: t}, State: prefsync.OptedOut, At: n.Complaint.Timestamp,
					Touchpoint: prefsync.ESPWebhook, Key: m.MessageId + ":" + rcpt.EmailAddress + ":" + t, Reason: "reported as spam",
					Proof: json.RawMessage(m.Message)}))
			}
			res.Suppressions = append(res.Suppressions, prefsync.Suppression{Address: rcpt.EmailAddress, Reason: prefsync.SuppressedSpamComplaint})
		}
	default:
		res.Ignored++ // deliveries, and other event types
	}
	return nil
}

// httpsGet fetches a URL with a bounded client.
func httpsGet(ctx context.Context, at string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, at, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", at, res.StatusCode)
	}
	return io.ReadAll(io.LimitReader(res.Body, 1<<20))
}
