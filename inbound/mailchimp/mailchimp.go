// Package mailchimp reads Mailchimp's list webhooks: form-encoded POSTs with a type
// (subscribe, unsubscribe, profile, upemail, cleaned, campaign) and data[...] fields
// (https://mailchimp.com/developer/marketing/guides/sync-audience-data-webhooks/).
// Mailchimp does not sign them: the unguessable secret in the inbound URL authenticates
// them, and Mailchimp's check of the URL (a GET) is answered 200 by the inbound handler.
package mailchimp

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"prefsync"
	"prefsync/inbound"
)

// Config configures a Mailchimp source.
type Config struct {
	// Lists maps audience (list) ids to topics; a change to an unmapped list is about
	// all email.
	Lists map[string]string `json:"lists"`
	// SubscribesAreConsent records a subscribe as explicit consent. Set it only when
	// the webhook sends subscribes made by subscribers themselves (not by an admin or
	// the API); otherwise a subscribe is implicit and never undoes an opt-out.
	SubscribesAreConsent bool `json:"subscribes_are_consent"`
}

// Adapter is the Mailchimp adapter; Dict checks the topics lists map to.
type Adapter struct {
	Dict *prefsync.Dictionary
}

type receiver struct {
	cfg       Config
	marketing []string
}

var _ inbound.Adapter = Adapter{}

// Configure implements inbound.Adapter.
func (a Adapter) Configure(raw json.RawMessage) (inbound.Receiver, error) {
	var c Config
	if err := inbound.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	if err := inbound.CheckEmailTopics(a.Dict, "lists", c.Lists); err != nil {
		return nil, err
	}
	return &receiver{cfg: c, marketing: inbound.MarketingTopics(a.Dict, "email")}, nil
}

// Receive implements inbound.Receiver.
func (rc *receiver) Receive(r *inbound.Request) (*inbound.Result, error) {
	f, err := url.ParseQuery(string(r.Body))
	if err != nil {
		return nil, prefsync.FieldErrorf("body", "not a form: %v", err)
	}
	typ, email, list := f.Get("type"), f.Get("data[email]"), f.Get("data[list_id]")
	// fired_at is in GMT, as "2009-03-26 21:35:57".
	at, err := time.ParseInLocation("2006-01-02 15:04:05", f.Get("fired_at"), time.UTC)
	if err != nil {
		return nil, prefsync.FieldErrorf("fired_at", "want a time such as 2009-03-26 21:35:57")
	}
	res := &inbound.Result{}
	if typ != "subscribe" && typ != "unsubscribe" && typ != "cleaned" {
		res.Ignored++ // profile, upemail, campaign: not preferences
		return res, nil
	}
	if email == "" {
		return nil, prefsync.FieldErrorf("data[email]", "a %s names the member's email", typ)
	}
	topic, mapped := rc.cfg.Lists[list]
	if !mapped {
		topic = prefsync.Any
	}
	proof, _ := json.Marshal(f)
	key := typ + ":" + list + ":" + email + ":" + f.Get("fired_at")
	change := inbound.Change{Subject: prefsync.Subject{Email: email}, Scope: prefsync.Scope{Channel: "email", Topic: topic},
		At: at, Touchpoint: prefsync.ESPWebhook, Key: key, Proof: proof}
	reason := f.Get("data[reason]")
	switch {
	case reason == "abuse": // an unsubscribe or a clean because the member reported spam
		for _, t := range rc.marketing {
			c := change
			c.Scope.Topic, c.State, c.Key, c.Reason = t, prefsync.OptedOut, key+":"+t, "reported as spam"
			res.Events = append(res.Events, r.Event(c))
		}
		res.Suppressions = append(res.Suppressions, prefsync.Suppression{Address: email, Reason: prefsync.SuppressedSpamComplaint})
	case typ == "cleaned":
		if reason == "hard" {
			res.Suppressions = append(res.Suppressions, prefsync.Suppression{Address: email, Reason: prefsync.SuppressedHardBounce})
		} else {
			res.Ignored++
		}
	case typ == "unsubscribe":
		change.State, change.Reason = prefsync.OptedOut, fmt.Sprintf("unsubscribed from Mailchimp audience %s", list)
		if !mapped {
			change.Reason += ", which is mapped to no topic: all email stopped"
		}
		res.Events = append(res.Events, r.Event(change))
	case !mapped:
		res.Ignored++ // a subscribe to an audience no topic stands for grants nothing
	default:
		change.State, change.Reason = prefsync.OptedIn, fmt.Sprintf("subscribed to Mailchimp audience %s", list)
		ev := r.Event(change)
		if !rc.cfg.SubscribesAreConsent {
			ev.Evidence.Method = prefsync.Implicit
		}
		res.Events = append(res.Events, ev)
	}
	return res, nil
}
