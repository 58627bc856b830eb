// Package twilio reads Twilio's inbound SMS webhooks: STOP, START and HELP keywords.
//
// Twilio signs each request with X-Twilio-Signature: the base64 of HMAC-SHA1, keyed with
// the account's auth token, over the full URL it called followed by every POST parameter
// name and value, sorted by name (https://www.twilio.com/docs/usage/security#validating-requests).
// The keywords are those carriers and Twilio's Advanced Opt-Out honour: a single word,
// in any case, with surrounding spaces ignored.
package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"prefsync"
	"prefsync/inbound"
)

// Keywords.
var (
	stopWords  = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
	startWords = []string{"START", "YES", "UNSTOP"}
	helpWords  = []string{"HELP", "INFO"}
)

// Config configures a Twilio source.
type Config struct {
	AuthToken string `json:"auth_token"`
	// StopChannels are the channels a STOP opts out of; SMS only by default.
	StopChannels []string `json:"stop_channels"`
	// Replies are the texts answered to each keyword; an empty one sends no reply.
	Replies Replies `json:"replies"`
}

// Replies are the keyword answers. The defaults are the confirmation and help texts
// CTIA's messaging principles ask for.
type Replies struct {
	Stop  *string `json:"stop"`
	Start *string `json:"start"`
	Help  *string `json:"help"`
}

const (
	defaultStop  = "You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
	defaultStart = "You have been resubscribed and will receive messages again. Reply STOP to unsubscribe."
	defaultHelp  = "Reply STOP to unsubscribe, START to resubscribe. Msg & data rates may apply."
)

// Adapter is the Twilio adapter; Dict checks the channels a STOP covers.
type Adapter struct {
	Dict *prefsync.Dictionary
}

type receiver struct {
	token             []byte
	stopChannels      []string
	stop, start, help string
}

var _ inbound.Adapter = Adapter{}

// Configure implements inbound.Adapter.
func (a Adapter) Configure(raw json.RawMessage) (inbound.Receiver, error) {
	var c Config
	if err := inbound.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	if c.AuthToken == "" {
		return nil, prefsync.FieldErrorf("auth_token", "the account's auth token is required: Twilio signs requests with it")
	}
	if len(c.StopChannels) == 0 {
		c.StopChannels = []string{"sms"}
	}
	for i, ch := range c.StopChannels {
		if ch == prefsync.Any || a.Dict.ValidateScope(prefsync.Scope{Channel: ch, Topic: prefsync.Any}) != nil {
			return nil, prefsync.FieldErrorf(fmt.Sprintf("stop_channels[%d]", i), "unknown channel %q", ch)
		}
	}
	reply := func(p *string, def string) string {
		if p == nil {
			return def
		}
		return *p
	}
	return &receiver{token: []byte(c.AuthToken), stopChannels: c.StopChannels,
		stop: reply(c.Replies.Stop, defaultStop), start: reply(c.Replies.Start, defaultStart), help: reply(c.Replies.Help, defaultHelp)}, nil
}

// Signature is the X-Twilio-Signature of a request to url with form params.
func Signature(token []byte, url string, params url.Values) string {
	mac := hmac.New(sha1.New, token)
	mac.Write([]byte(url))
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vs := slices.Clone(params[k])
		slices.Sort(vs)
		for _, v := range vs {
			mac.Write([]byte(k))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Receive implements inbound.Receiver.
func (rc *receiver) Receive(r *inbound.Request) (*inbound.Result, error) {
	params, err := url.ParseQuery(string(r.Body))
	if err != nil {
		return nil, prefsync.FieldErrorf("body", "not a form: %v", err)
	}
	got := r.HTTP.Header.Get("X-Twilio-Signature")
	if got == "" || !hmac.Equal([]byte(got), []byte(Signature(rc.token, r.URL, params))) {
		return nil, inbound.Unauthorized("X-Twilio-Signature does not verify")
	}
	from, sid := params.Get("From"), params.Get("MessageSid")
	if from == "" || sid == "" {
		return nil, prefsync.FieldErrorf("From", "an inbound message names its sender (From) and itself (MessageSid)")
	}
	word := strings.ToUpper(strings.TrimSpace(params.Get("Body")))
	proof, _ := json.Marshal(map[string]string{"MessageSid": sid, "Body": params.Get("Body"), "To": params.Get("To")})
	res := &inbound.Result{}
	change := func(channel string, state prefsync.State) {
		res.Events = append(res.Events, r.Event(inbound.Change{
			Subject: prefsync.Subject{Phone: from}, Scope: prefsync.Scope{Channel: channel, Topic: prefsync.Any},
			State: state, At: r.Now, Touchpoint: prefsync.SMSKeyword, Key: sid + ":" + channel,
			Reason: "SMS keyword " + word, Proof: proof}))
	}
	reply := ""
	switch {
	case slices.Contains(stopWords, word):
		for _, ch := range rc.stopChannels {
			change(ch, prefsync.OptedOut)
		}
		reply = rc.stop
	case slices.Contains(startWords, word):
		change("sms", prefsync.OptedIn)
		reply = rc.start
	case slices.Contains(helpWords, word):
		reply = rc.help
	default:
		res.Ignored = 1
	}
	res.ContentType, res.Body = "text/xml", twiml(reply)
	return res, nil
}

// twiml is the TwiML answer that sends text back, or sends nothing.
func twiml(text string) []byte {
	var b strings.Builder
	b.WriteString(xml.Header)
	if text == "" {
		b.WriteString("<Response/>")
		return []byte(b.String())
	}
	b.WriteString("<Response><Message>")
	xml.EscapeText(&b, []byte(text))
	b.WriteString("</Message></Response>")
	return []byte(b.String())
}
