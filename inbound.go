package prefsync

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Inbound is a registered source of changes: a provider (an email or SMS service) that
// calls prefsync back when people unsubscribe, bounce or complain. Its Kind names the
// adapter that verifies and reads the provider's callbacks; Config is that adapter's.
type Inbound struct {
	Name   string          `json:"name"`
	Kind   string          `json:"kind"`
	Config json.RawMessage `json:"config"`
	// Secret is the unguessable part of the URL the provider calls.
	Secret    string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// InboundInput registers a source.
type InboundInput struct {
	Name   string          `json:"name"`
	Kind   string          `json:"kind"`
	Config json.RawMessage `json:"config"`
}

// NewInbound validates the input's name and returns the source, with a new secret.
// The adapter of its kind checks the config.
func NewInbound(in InboundInput, random io.Reader, now time.Time) (*Inbound, error) {
	if !destinationName.MatchString(in.Name) {
		return nil, FieldErrorf("name", "a source name is 1 to 63 lower-case letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	if in.Name == SystemPrefsync {
		return nil, FieldErrorf("name", "%q is the name of prefsync's own changes", in.Name)
	}
	if len(in.Config) == 0 {
		in.Config = json.RawMessage(`{}`)
	}
	b := make([]byte, 24)
	if _, err := io.ReadFull(random, b); err != nil {
		return nil, fmt.Errorf("new source secret: %w", err)
	}
	return &Inbound{Name: in.Name, Kind: in.Kind, Config: in.Config, Secret: fmt.Sprintf("%x", b), CreatedAt: now}, nil
}

// CreateInbound registers a source of changes; check validates its kind and config
// (the adapters know them, not the hub).
func (h *Hub) CreateInbound(ctx context.Context, in InboundInput, check func(kind string, config json.RawMessage) error) (*Inbound, error) {
	src, err := NewInbound(in, h.random(), h.Now().UTC())
	if err != nil {
		return nil, err
	}
	if err := check(src.Kind, src.Config); err != nil {
		return nil, err
	}
	if err := h.Store.CreateInbound(ctx, src); err != nil {
		return nil, err
	}
	return src, nil
}
