// Package inboundtest runs a hub with source adapters on loopback, for the adapters'
// tests.
package inboundtest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"prefsync"
	"prefsync/hubtest"
	"prefsync/inbound"
)

// Hub is a hub on a fresh store whose source URLs are served on loopback.
type Hub struct {
	T      *testing.T
	Hub    *prefsync.Hub
	Server *httptest.Server
}

// New starts a hub with the adapters; now is its clock.
func New(t *testing.T, now func() time.Time, adapters func(*prefsync.Dictionary) inbound.Adapters) *Hub {
	t.Helper()
	hub := hubtest.New(t, now)
	h := &Hub{T: t, Hub: hub}
	var handler *inbound.Handler
	h.Server = httptest.NewUnstartedServer(nil)
	h.Server.Start()
	handler = inbound.NewHandler(hub, adapters(hub.Dict), h.Server.URL, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.Server.Config.Handler = handler
	t.Cleanup(h.Server.Close)
	return h
}

// Register registers a source and returns the URL its provider is to call.
func (h *Hub) Register(name, kind string, config any) string {
	h.T.Helper()
	raw, _ := json.Marshal(config)
	in, err := prefsync.NewInbound(prefsync.InboundInput{Name: name, Kind: kind, Config: raw}, rand.Reader, h.Hub.Now())
	if err != nil {
		h.T.Fatal(err)
	}
	if err := h.Hub.Store.CreateInbound(context.Background(), in); err != nil {
		h.T.Fatal(err)
	}
	return inbound.URL(h.Server.URL, in)
}

// History returns the audit trail of the contact an address finds, nil if none does.
func (h *Hub) History(s prefsync.Subject) []prefsync.AuditEntry {
	h.T.Helper()
	c, err := h.Hub.FindContact(context.Background(), s)
	if prefsync.ErrorCode(err) == prefsync.ENOTFOUND {
		return nil
	}
	if err != nil {
		h.T.Fatal(err)
	}
	es, err := h.Hub.Store.History(context.Background(), c.ID)
	if err != nil {
		h.T.Fatal(err)
	}
	return es
}

// Allowed reports whether a message on channel and topic may go to the subject.
func (h *Hub) Allowed(s prefsync.Subject, channel, topic string) (bool, string) {
	h.T.Helper()
	q, err := h.Hub.Dict.Query(channel, topic)
	if err != nil {
		h.T.Fatal(err)
	}
	d, err := h.Hub.Check(&q, &s, h.Hub.Now().Unix())
	if err != nil {
		h.T.Fatal(err)
	}
	return d.Allowed, d.Reason
}
