package prefsync

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// DestinationWebhook is the kind of destination that receives signed webhooks.
const DestinationWebhook = "webhook"

// Destination statuses. A failing destination is probed until it answers again; a
// disabled one is not sent to until it is enabled, but its deliveries are still recorded.
const (
	DestinationActive   = "active"
	DestinationFailing  = "failing"
	DestinationDisabled = "disabled"
)

// Destination is a connected system that learns about every change it wants.
type Destination struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	URL  string `json:"url"`
	// Secrets sign deliveries, newest first. A rotated-out secret signs too until it
	// expires, so a receiver can switch over within the grace period.
	Secrets []Secret          `json:"-"`
	Filter  DestinationFilter `json:"filter"`
	Status  string            `json:"status"`
	// StatusReason says why a destination is failing or disabled; StatusSince is when it
	// entered its status.
	StatusReason string    `json:"status_reason,omitempty"`
	StatusSince  time.Time `json:"status_since"`
	CreatedAt    time.Time `json:"created_at"`
}

// Secret is a destination's signing secret in Standard Webhooks form ("whsec_" and the
// base64 of the key).
type Secret struct {
	Value     string     `json:"secret"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// SigningSecrets returns the secrets still valid at now, newest first.
func (d *Destination) SigningSecrets(now time.Time) []string {
	var out []string
	for _, s := range d.Secrets {
		if s.ExpiresAt == nil || now.Before(*s.ExpiresAt) {
			out = append(out, s.Value)
		}
	}
	return out
}

// DestinationUpdate changes a destination: each field that is not nil. Status changes
// and secret rotations come from different places (the dispatcher, an admin) and must
// not undo each other.
type DestinationUpdate struct {
	Secrets *[]Secret
	// Status, with its reason and since when.
	Status       *string
	StatusReason string
	StatusSince  time.Time
}

// StatusUpdate is the update that sets a destination's status.
func StatusUpdate(status, reason string, since time.Time) DestinationUpdate {
	return DestinationUpdate{Status: &status, StatusReason: reason, StatusSince: since}
}

// DestinationFilter names the channels and topics a destination wants; empty wants all.
type DestinationFilter struct {
	Channels []string `json:"channels,omitempty"`
	Topics   []string `json:"topics,omitempty"`
}

// DestinationInput creates a destination.
type DestinationInput struct {
	Name   string            `json:"name"`
	Kind   string            `json:"kind"`
	URL    string            `json:"url"`
	Secret string            `json:"secret"`
	Filter DestinationFilter `json:"filter"`
}

var destinationName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// NewDestination validates the input and returns the destination it describes, with a
// secret generated from random when the input has none.
func NewDestination(in DestinationInput, dict *Dictionary, random io.Reader, now time.Time) (*Destination, error) {
	if !destinationName.MatchString(in.Name) {
		return nil, FieldErrorf("name", "a destination name is 1 to 63 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	if in.Kind == "" {
		in.Kind = DestinationWebhook
	}
	if in.Kind != DestinationWebhook {
		return nil, FieldErrorf("kind", "unknown destination kind %q: want webhook", in.Kind)
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		strings.ContainsAny(in.URL, " \t") {
		return nil, FieldErrorf("url", "want an absolute http or https URL without credentials or spaces")
	}
	if in.Secret == "" {
		in.Secret = NewSecret(random)
	} else if err := ValidateSecret(in.Secret); err != nil {
		return nil, err
	}
	for i, c := range in.Filter.Channels {
		if err := dict.ValidateScope(Scope{Channel: c, Topic: Any}); err != nil || c == Any {
			return nil, FieldErrorf(fmt.Sprintf("filter.channels[%d]", i), "unknown channel %q", c)
		}
	}
	for i, t := range in.Filter.Topics {
		if err := dict.ValidateScope(Scope{Channel: Any, Topic: t}); err != nil || t == Any {
			return nil, FieldErrorf(fmt.Sprintf("filter.topics[%d]", i), "unknown topic %q", t)
		}
	}
	return &Destination{Name: in.Name, Kind: in.Kind, URL: in.URL, Secrets: []Secret{{Value: in.Secret}},
		Filter: in.Filter, Status: DestinationActive, StatusSince: now, CreatedAt: now}, nil
}

// NewSecret returns a new signing secret: 32 random bytes.
func NewSecret(random io.Reader) string {
	b := make([]byte, 32)
	if _, err := io.ReadFull(random, b); err != nil {
		panic(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// ValidateSecret checks a secret's form: "whsec_" and the base64 of 24 to 64 bytes.
func ValidateSecret(s string) error {
	key, ok := strings.CutPrefix(s, "whsec_")
	if b, err := base64.StdEncoding.DecodeString(key); !ok || err != nil || len(b) < 24 || len(b) > 64 {
		return FieldErrorf("secret", "a secret is \"whsec_\" and the base64 of 24 to 64 random bytes")
	}
	return nil
}

// Rotate makes secret the destination's signing secret; the secrets it had stay valid
// for grace after now.
func (d *Destination) Rotate(secret string, grace time.Duration, now time.Time) {
	until := now.Add(grace)
	kept := []Secret{{Value: secret}}
	for _, s := range d.Secrets {
		if s.ExpiresAt == nil || s.ExpiresAt.After(until) {
			s.ExpiresAt = &until
		}
		if now.Before(*s.ExpiresAt) {
			kept = append(kept, s)
		}
	}
	d.Secrets = kept
}

// Wants reports whether the destination is to learn of a change to scope reported by
// system. A change never goes back to the system it came from (rule 6), and a
// wildcard scope reaches every destination that wants some scope it covers.
func (d *Destination) Wants(s Scope, system string) bool {
	if system == d.Name {
		return false
	}
	f := d.Filter
	return (len(f.Channels) == 0 || s.Channel == Any || slices.Contains(f.Channels, s.Channel)) &&
		(len(f.Topics) == 0 || s.Topic == Any || slices.Contains(f.Topics, s.Topic))
}
