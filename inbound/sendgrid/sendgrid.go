// Package sendgrid reads SendGrid's Event Webhook: unsubscribes, group unsubscribes and
// resubscribes, spam reports and bounces.
//
// With "Signed Event Webhook Requests" on, SendGrid signs each POST with ECDSA P-256 over
// the X-Twilio-Email-Event-Webhook-Timestamp header's value followed by the raw body; the
// signature (base64 ASN.1) is in X-Twilio-Email-Event-Webhook-Signature, and the settings
// page shows the verification key as the base64 of its DER SubjectPublicKeyInfo
// (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features).
// The body is a JSON array of events (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event).
package sendgrid

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"prefsync"
	"prefsync/inbound"
)

// Config configures a SendGrid source.
type Config struct {
	// VerificationKey is the key exactly as SendGrid's Mail Settings show it.
	VerificationKey string `json:"verification_key"`
	// Groups maps unsubscribe group ids (asm_group_id) to topics.
	Groups map[string]string `json:"groups"`
	// MaxAge refuses requests signed longer ago than this ("10m"; default 1h): a
	// replayed request is stale.
	MaxAge string `json:"max_age"`
}

// Adapter is the SendGrid adapter; Dict checks the topics groups map to.
type Adapter struct {
	Dict *prefsync.Dictionary
}

var _ inbound.Adapter = Adapter{}

type receiver struct {
	key       *ecdsa.PublicKey
	groups    map[int64]string
	maxAge    time.Duration
	marketing []string // the marketing topics sent by email: what a spam report stops
}

// Configure implements inbound.Adapter.
func (a Adapter) Configure(raw json.RawMessage) (inbound.Receiver, error) {
	var c Config
	if err := inbound.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(c.VerificationKey))
	if err != nil || c.VerificationKey == "" {
		return nil, prefsync.FieldErrorf("verification_key", "the verification key is required, in base64 as SendGrid shows it")
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	key, ok := pub.(*ecdsa.PublicKey)
	if err != nil || !ok {
		return nil, prefsync.FieldErrorf("verification_key", "not an ECDSA public key")
	}
	rc := &receiver{key: key, groups: map[int64]string{}, maxAge: time.Hour}
	if c.MaxAge != "" {
		if rc.maxAge, err = prefsync.ParseDuration(c.MaxAge); err != nil || rc.maxAge <= 0 {
			return nil, prefsync.FieldErrorf("max_age", "want a duration such as 10m or 1h")
		}
	}
	if err := inbound.CheckEmailTopics(a.Dict, "groups", c.Groups); err != nil {
		return nil, err
	}
	for id, topic := range c.Groups {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil, prefsync.FieldErrorf("groups."+id, "an unsubscribe group id is a number")
		}
		rc.groups[n] = topic
	}
	rc.marketing = inbound.MarketingTopics(a.Dict, "email")
	return rc, nil
}

// event is one entry of the body, with the fields read here.
type event struct {
	Email      string `json:"email"`
	Timestamp  int64  `json:"timestamp"`
	Event      string `json:"event"`
	SGEventID  string `json:"sg_event_id"`
	ASMGroupID *int64 `json:"asm_group_id"`
	Type       string `json:"type"`
	Reason     string `json:"reason"`
}

// Receive implements inbound.Receiver.
func (rc *receiver) Receive(r *inbound.Request) (*inbound.Result, error) {
	if err := rc.verify(r); err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(r.Body, &raws); err != nil {
		return nil, prefsync.FieldErrorf("body", "not a JSON array of events: %v", err)
	}
	res := &inbound.Result{}
	for i, raw := range raws {
		var e event
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, prefsync.FieldErrorf(fmt.Sprintf("[%d]", i), "not an event: %v", err)
		}
		if e.Email == "" || e.SGEventID == "" {
			return nil, prefsync.FieldErrorf(fmt.Sprintf("[%d]", i), "an event names its email and sg_event_id")
		}
		rc.read(r, &e, raw, res)
	}
	return res, nil
}

func (rc *receiver) verify(r *inbound.Request) error {
	sig, err := base64.StdEncoding.DecodeString(r.HTTP.Header.Get("X-Twilio-Email-Event-Webhook-Signature"))
	ts := r.HTTP.Header.Get("X-Twilio-Email-Event-Webhook-Timestamp")
	if err != nil || len(sig) == 0 || ts == "" {
		return inbound.Unauthorized("the request is not signed (X-Twilio-Email-Event-Webhook-Signature and -Timestamp)")
	}
	h := sha256.New()
	h.Write([]byte(ts))
	h.Write(r.Body)
	if !ecdsa.VerifyASN1(rc.key, h.Sum(nil), sig) {
		return inbound.Unauthorized("the signature does not verify with the source's verification key")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return inbound.Unauthorized("the signed timestamp is not a number")
	}
	if age := r.Now.Sub(time.Unix(sec, 0)); age > rc.maxAge || age < -5*time.Minute {
		return prefsync.Errorf(prefsync.EFORBIDDEN, "the request was signed %s ago, outside the replay window of %s", age.Round(time.Second), rc.maxAge)
	}
	return nil
}

// read adds what one event says to res.
func (rc *receiver) read(r *inbound.Request, e *event, raw json.RawMessage, res *inbound.Result) {
	var at time.Time // an event without a time is dated when it arrives
	if e.Timestamp > 0 {
		at = time.Unix(e.Timestamp, 0)
	}
	subject := prefsync.Subject{Email: e.Email}
	optOut := func(topic, key, reason string) {
		res.Events = append(res.Events, r.Event(inbound.Change{Subject: subject, Scope: prefsync.Scope{Channel: "email", Topic: topic},
			State: prefsync.OptedOut, At: at, Touchpoint: prefsync.ESPWebhook, Key: key, Reason: reason, Proof: raw}))
	}
	switch e.Event {
	case "unsubscribe":
		optOut(prefsync.Any, e.SGEventID, "unsubscribed through SendGrid")
	case "group_unsubscribe", "group_resubscribe":
		topic, mapped := "", false
		if e.ASMGroupID != nil {
			topic, mapped = rc.groups[*e.ASMGroupID]
		}
		switch {
		case e.Event == "group_unsubscribe" && mapped:
			optOut(topic, e.SGEventID, fmt.Sprintf("unsubscribed from SendGrid group %d", *e.ASMGroupID))
		case e.Event == "group_unsubscribe":
			// Least privilege: a group nobody mapped may be any email.
			optOut(prefsync.Any, e.SGEventID, fmt.Sprintf("unsubscribed from SendGrid group %s, which is mapped to no topic: all email stopped", groupID(e)))
		case mapped:
			res.Events = append(res.Events, r.Event(inbound.Change{Subject: subject, Scope: prefsync.Scope{Channel: "email", Topic: topic},
				State: prefsync.OptedIn, At: at, Touchpoint: prefsync.ESPWebhook, Key: e.SGEventID,
				Reason: fmt.Sprintf("resubscribed to SendGrid group %d", *e.ASMGroupID), Proof: raw}))
		default:
			res.Ignored++ // a resubscription to a group no topic stands for grants nothing
		}
	case "spamreport":
		for _, t := range rc.marketing {
			optOut(t, e.SGEventID+":"+t, "reported as spam")
		}
		res.Suppressions = append(res.Suppressions, prefsync.Suppression{Address: e.Email, Reason: prefsync.SuppressedSpamComplaint})
	case "bounce":
		if e.Type == "bounce" { // "blocked" is a temporary refusal, not a bad address
			res.Suppressions = append(res.Suppressions, prefsync.Suppression{Address: e.Email, Reason: prefsync.SuppressedHardBounce})
		} else {
			res.Ignored++
		}
	default:
		res.Ignored++ // delivered, open, click, deferred…: not preferences
	}
}

func groupID(e *event) string {
	if e.ASMGroupID == nil {
		return "(none given)"
	}
	return strconv.FormatInt(*e.ASMGroupID, 10)
}
