package prefsync

import (
	"context"
	"crypto/rand"
	"io"
	"time"
)

// Dispatcher is told of writes that concern outbound delivery. The hub calls it after
// the write is committed.
type Dispatcher interface {
	// DeliveriesAdded says new deliveries may be due.
	DeliveriesAdded()
	// DestinationsChanged says destinations were added, removed or changed.
	DestinationsChanged()
}

// DefaultSecretGrace is how long a rotated-out secret keeps signing.
const DefaultSecretGrace = 24 * time.Hour

// CreateDestination validates and stores a destination. The answer holds its secret,
// generated when the input has none: the only time the hub returns it.
func (h *Hub) CreateDestination(ctx context.Context, in DestinationInput) (*Destination, error) {
	d, err := NewDestination(in, h.Dict, h.random(), h.Now().UTC())
	if err != nil {
		return nil, err
	}
	if err := h.Store.CreateDestination(ctx, d); err != nil {
		return nil, err
	}
	h.destinationsChanged()
	return d, nil
}

// Destination returns the destination with the name, or ENOTFOUND.
func (h *Hub) Destination(ctx context.Context, name string) (*Destination, error) {
	ds, err := h.Store.Destinations(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.Name == name {
			return d, nil
		}
	}
	return nil, Errorf(ENOTFOUND, "no destination %q", name)
}

// DeleteDestination removes a destination; its pending deliveries are cancelled.
func (h *Hub) DeleteDestination(ctx context.Context, name string) error {
	if err := h.Store.DeleteDestination(ctx, name); err != nil {
		return err
	}
	h.destinationsChanged()
	return nil
}

// RotateSecret gives a destination a new signing secret (generated when secret is
// empty); its old secrets keep signing for grace, so the receiver can switch over.
func (h *Hub) RotateSecret(ctx context.Context, name, secret string, grace time.Duration) (*Destination, error) {
	if secret == "" {
		secret = NewSecret(h.random())
	} else if err := ValidateSecret(secret); err != nil {
		return nil, err
	}
	if grace < 0 || grace > 30*24*time.Hour {
		return nil, FieldErrorf("grace", "the grace period is between 0 and 30 days")
	}
	d, err := h.Destination(ctx, name)
	if err != nil {
		return nil, err
	}
	d.Rotate(secret, grace, h.Now().UTC())
	if err := h.Store.UpdateDestination(ctx, name, DestinationUpdate{Secrets: &d.Secrets}); err != nil {
		return nil, err
	}
	h.destinationsChanged()
	return d, nil
}

// EnableDestination makes a failing or disabled destination active again: its waiting
// deliveries are released at once.
func (h *Hub) EnableDestination(ctx context.Context, name string) (*Destination, error) {
	d, err := h.Destination(ctx, name)
	if err != nil {
		return nil, err
	}
	now := h.Now().UTC()
	d.Status, d.StatusReason, d.StatusSince = DestinationActive, "", now
	if err := h.Store.UpdateDestination(ctx, name, StatusUpdate(d.Status, "", now)); err != nil {
		return nil, err
	}
	if _, err := h.Store.ReleaseDeliveries(ctx, name, now); err != nil {
		return nil, err
	}
	h.destinationsChanged()
	return d, nil
}

// ReplayDeliveries makes dead deliveries of a destination pending again: one (f.ID) or
// all since f.Since. It returns how many.
func (h *Hub) ReplayDeliveries(ctx context.Context, f DeliveryFilter) (int, error) {
	if _, err := h.Destination(ctx, f.Destination); err != nil {
		return 0, err
	}
	n, err := h.Store.ReplayDeliveries(ctx, f, h.Now().UTC())
	if err != nil {
		return 0, err
	}
	if n > 0 && h.Dispatcher != nil {
		h.Dispatcher.DeliveriesAdded()
	}
	return n, nil
}

func (h *Hub) random() io.Reader {
	if h.Random == nil {
		return rand.Reader
	}
	return h.Random
}

func (h *Hub) destinationsChanged() {
	if h.Dispatcher != nil {
		h.Dispatcher.DestinationsChanged()
	}
}
