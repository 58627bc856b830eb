// Package postmark reads Postmark's SubscriptionChange, Bounce and SpamComplaint
// webhooks (https://postmarkapp.com/developer/webhooks/webhooks-overview). Postmark does
// not sign webhooks; it sends the basic-auth credentials set in the webhook's URL, which
// the inbound handler checks.
package postmark

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"prefsync"
	"prefsync/inbound"
)

// Config configures a Postmark source.
type Config struct {
	// Streams maps message streams to topics; a change in an unmapped stream is about
	// all email.
	Streams map[string]string `json:"streams"`
}

// Adapter is the Postmark adapter; Dict checks the topics streams map to.
type Adapter struct {
	Dict *prefsync.Dictionary
}

type receiver struct {
	streams   map[string]string
	marketing []string
}

var _ inbound.Adapter = Adapter{}

// Configure implements inbound.Adapter.
func (a Adapter) Configure(raw json.RawMessage) (inbound.Receiver, error) {
	var c Config
	if err := inbound.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	if err := inbound.CheckEmailTopics(a.Dict, "streams", c.Streams); err != nil {
		return nil, err
	}
	return &receiver{streams: c.Streams, marketing: inbound.MarketingTopics(a.Dict, "email")}, nil
}

// record is a webhook body, with the fields read here.
type record struct {
	RecordType        string
	ID                json.Number
	Type              string
	MessageID         string
	MessageStream     string
	Email             string
	Recipient         string
	Origin            string
	SuppressSending   *bool
	SuppressionReason string
	ChangedAt         time.Time
	BouncedAt         time.Time
}

// Receive implements inbound.Receiver.
func (rc *receiver) Receive(r *inbound.Request) (*inbound.Result, error) {
	var rec record
	if err := json.Unmarshal(r.Body, &rec); err != nil {
		return nil, prefsync.FieldErrorf("body", "not a Postmark webhook: %v", err)
	}
	res := &inbound.Result{}
	// A SubscriptionChange has no id of its own: its time and direction tell an
	// unsubscribe from a later reactivation of the same message's recipient.
	key := rec.RecordType + ":" + rec.MessageID + ":" + rec.ID.String()
	if rec.RecordType == "SubscriptionChange" && rec.SuppressSending != nil {
		key += rec.ChangedAt.UTC().Format(time.RFC3339Nano) + ":" + strconv.FormatBool(*rec.SuppressSending)
	}
	switch rec.RecordType {
	case "SubscriptionChange":
		if rec.Recipient == "" || rec.SuppressSending == nil || rec.MessageID == "" {
			return nil, prefsync.FieldErrorf("Recipient", "a SubscriptionChange names its Recipient, MessageID and SuppressSending")
		}
		topic, ok := rc.streams[rec.MessageStream]
		if !ok {
			topic = prefsync.Any
		}
		change := inbound.Change{Subject: prefsync.Subject{Email: rec.Recipient}, Scope: prefsync.Scope{Channel: "email", Topic: topic},
			At: rec.ChangedAt, Touchpoint: prefsync.ESPWebhook, Key: key, Proof: r.Body}
		switch {
		case *rec.SuppressSending && rec.SuppressionReason == "HardBounce":
			res.Suppressions = append(res.Suppressions, prefsync.Suppression{Address: rec.Recipient, Reason: prefsync.SuppressedHardBounce})
		case *rec.SuppressSending && rec.SuppressionReason == "SpamComplaint":
			rc.complaint(r, rec.Recipient, rec.ChangedAt, key, res)
		case *rec.SuppressSending: // ManualSuppression: the recipient unsubscribed
			change.State, change.Reason = prefsync.OptedOut, fmt.Sprintf("unsubscribed in Postmark stream %q", rec.MessageStream)
			res.Events = append(res.Events, r.Event(change))
		case rec.Origin == "Recipient":
			// Reactivated by the recipient themselves: their explicit consent.
			change.State, change.Reason = prefsync.OptedIn, fmt.Sprintf("resubscribed in Postmark stream %q", rec.MessageStream)
			res.Events = append(res.Events, r.Event(change))
		default:
			res.Ignored++ // reactivated by the sender's staff: that is nobody's consent
		}
	case "Bounce":
		if rec.Email == "" {
			return nil, prefsync.FieldErrorf("Email", "a Bounce names its Email")
		}
		if rec.Type == "HardBounce" {
			res.Suppressions = append(res.Suppressions, prefsync.Suppression{Address: rec.Email, Reason: prefsync.SuppressedHardBounce})
		} else {
			res.Ignored++ // soft bounces, auto-replies and the like are not a bad address
		}
	case "SpamComplaint":
		if rec.Email == "" {
			return nil, prefsync.FieldErrorf("Email", "a SpamComplaint names its Email")
		}
		rc.complaint(r, rec.Email, rec.BouncedAt, key, res)
	default:
		res.Ignored++ // Delivery, Open, Click…
	}
	return res, nil
}

// complaint records a spam complaint: out of every marketing topic by email, and the
// address suppressed.
func (rc *receiver) complaint(r *inbound.Request, email string, at time.Time, key string, res *inbound.Result) {
	for _, t := range rc.marketing {
		res.Events = append(res.Events, r.Event(inbound.Change{Subject: prefsync.Subject{Email: email},
			Scope: prefsync.Scope{Channel: "email", Topic: t}, State: prefsync.OptedOut, At: at, Touchpoint: prefsync.ESPWebhook,
			Key: key + ":" + t, Reason: "reported as spam", Proof: r.Body}))
	}
	res.Suppressions = append(res.Suppressions, prefsync.Suppression{Address: email, Reason: prefsync.SuppressedSpamComplaint})
}
