// Package inbound receives the callbacks of providers (email and SMS services) and
// turns them into events and suppressions. Each provider has an adapter in its own
// package; this one holds what they share: the URL they are called on, how a source is
// found and authenticated, and how what an adapter reads is recorded.
package inbound

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"prefsync"
	prefhttp "prefsync/http"
)

// Adapter reads one kind of provider's callbacks.
type Adapter interface {
	// Configure checks a source's config and returns the receiver it configures.
	// Errors name the config field at fault.
	Configure(config json.RawMessage) (Receiver, error)
}

// Receiver verifies and reads the callbacks of one configured source.
type Receiver interface {
	// Receive verifies a request (EUNAUTHORIZED or EFORBIDDEN when it does not) and
	// reads it (EINVALID when it cannot).
	Receive(r *Request) (*Result, error)
}

// Request is a provider's callback.
type Request struct {
	HTTP *http.Request
	Body []byte
	// URL is the full public URL the provider called, as it signed it.
	URL string
	Now time.Time
	// Source is the registered source's name: the source.system of its events.
	Source string
	Dict   *prefsync.Dictionary
}

// Result is what a callback says: changes to record, and the answer the provider
// expects.
type Result struct {
	Events       []prefsync.EventInput
	Suppressions []prefsync.Suppression
	// ContentType and Body answer the provider; empty, it gets 200 and no body.
	ContentType string
	Body        []byte
	// Ignored counts the provider's events that change nothing here (opens, clicks…).
	Ignored int
}

// Adapters are the adapters by kind.
type Adapters map[string]Adapter

// Validate checks a source's kind and config before it is registered.
func (a Adapters) Validate(kind string, config json.RawMessage) error {
	ad, ok := a[kind]
	if !ok {
		kinds := make([]string, 0, len(a))
		for k := range a {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		return prefsync.FieldErrorf("kind", "unknown source kind %q: want one of %s", kind, strings.Join(kinds, ", "))
	}
	_, err := ad.Configure(config)
	return prefsync.WithFieldPrefix(err, "config")
}

// URL is the URL a source's provider is to call. A Postmark source carries its secret
// as basic-auth credentials, as Postmark's webhook settings take them; the others carry
// it in the path.
func URL(publicURL string, in *prefsync.Inbound) string {
	base := strings.TrimRight(publicURL, "/")
	if in.Kind == "postmark" {
		if scheme, rest, ok := strings.Cut(base, "://"); ok {
			return scheme + "://prefsync:" + in.Secret + "@" + rest + "/in/" + in.Name
		}
	}
	return base + "/in/" + in.Name + "/" + in.Secret
}

// Handler serves the URLs providers call: /in/{name}/{secret}, or /in/{name} with the
// secret as the basic-auth password.
type Handler struct {
	Hub       *prefsync.Hub
	Adapters  Adapters
	PublicURL string
	Logger    *slog.Logger
	// MaxBody caps a callback's body.
	MaxBody int64

	mux     *http.ServeMux
	mu      sync.Mutex
	sources map[string]cached // every source by name, as read at loaded
	loaded  time.Time
}

type cached struct {
	source   *prefsync.Inbound
	receiver Receiver
}

// NewHandler returns the handler of the sources' URLs.
func NewHandler(hub *prefsync.Hub, adapters Adapters, publicURL string, logger *slog.Logger) *Handler {
	h := &Handler{Hub: hub, Adapters: adapters, PublicURL: strings.TrimRight(publicURL, "/"), Logger: logger,
		MaxBody: 1 << 20, mux: http.NewServeMux()}
	for _, p := range []string{"/in/{name}", "/in/{name}/{secret}"} {
		h.mux.HandleFunc("POST "+p, h.receive)
		// Some providers (Mailchimp) check a URL with a GET before they use it.
		h.mux.HandleFunc("GET "+p, h.check)
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// source finds the source a request names and checks its secret; every failure is the
// same 404, so a URL reveals nothing about which sources exist.
func (h *Handler) source(r *http.Request) (*prefsync.Inbound, Receiver, error) {
	secret := r.PathValue("secret")
	if secret == "" {
		_, secret, _ = r.BasicAuth()
	}
	all, err := h.load(r.Context())
	if err != nil {
		return nil, nil, err
	}
	c, ok := all[r.PathValue("name")]
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(c.source.Secret)) != 1 {
		return nil, nil, prefsync.Errorf(prefsync.ENOTFOUND, "no such source")
	}
	return c.source, c.receiver, nil
}

// load returns every source with its receiver, read from the store at most every few
// seconds whatever names requests make up: a callback does not cost a query.
func (h *Handler) load(ctx context.Context) (map[string]cached, error) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sources != nil && now.Sub(h.loaded) < 5*time.Second {
		return h.sources, nil
	}
	all, err := h.Hub.Store.Inbounds(ctx)
	if err != nil {
		return nil, err
	}
	sources := map[string]cached{}
	for _, in := range all {
		ad, ok := h.Adapters[in.Kind]
		if !ok {
			h.Logger.Error("source of an unknown kind", "source", in.Name, "kind", in.Kind)
			continue
		}
		rc, err := ad.Configure(in.Config)
		if err != nil {
			h.Logger.Error("source config", "source", in.Name, "err", err)
			continue
		}
		sources[in.Name] = cached{source: in, receiver: rc}
	}
	h.sources, h.loaded = sources, now
	return sources, nil
}

func (h *Handler) check(w http.ResponseWriter, r *http.Request) {
	if _, _, err := h.source(r); err != nil {
		h.fail(w, r, "", err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) receive(w http.ResponseWriter, r *http.Request) {
	src, rc, err := h.source(r)
	if err != nil {
		h.fail(w, r, "", err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxBody))
	if err != nil {
		h.fail(w, r, src.Name, prefsync.Errorf(prefsync.ETOOLARGE, "the body is over %d bytes", h.MaxBody))
		return
	}
	res, err := rc.Receive(&Request{HTTP: r, Body: body, URL: h.PublicURL + r.URL.RequestURI(), Now: h.Hub.Now(),
		Source: src.Name, Dict: h.Hub.Dict})
	if err != nil {
		h.fail(w, r, src.Name, err)
		return
	}
	if err := h.record(r.Context(), src.Name, res); err != nil {
		h.fail(w, r, src.Name, err)
		return
	}
	h.Logger.Info("source callback", "source", src.Name, "events", len(res.Events), "suppressions", len(res.Suppressions), "ignored", res.Ignored)
	if res.ContentType != "" {
		w.Header().Set("Content-Type", res.ContentType)
	}
	w.WriteHeader(http.StatusOK)
	w.Write(res.Body)
}

// record writes what a callback said: its events in one batch, all or none, then its
// suppressions. A suppression whose address does not read is left out (and logged)
// before anything is written, so a provider's retry never meets a half-written batch.
func (h *Handler) record(ctx context.Context, source string, res *Result) error {
	var sups []prefsync.Suppression
	for _, s := range res.Suppressions {
		if _, err := h.Hub.Normalizer.Email(s.Address); err != nil {
			if _, err := h.Hub.Normalizer.Phone(s.Address); err != nil {
				h.Logger.Warn("suppression of an address that does not read, left out", "source", source)
				res.Ignored++
				continue
			}
		}
		s.Source, s.Touchpoint = source, prefsync.ESPWebhook
		sups = append(sups, s)
	}
	if len(res.Events) > 0 {
		if _, err := h.Hub.Ingest(ctx, res.Events, source); err != nil {
			return err
		}
	}
	for _, s := range sups {
		if _, err := h.Hub.Suppress(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// fail answers an error with its status and logs why (never the body: it holds
// addresses).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, source string, err error) {
	status := prefhttp.StatusOf(err)
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	h.Logger.Log(r.Context(), level, "source callback refused", "source", source, "status", status, "reason", prefsync.ErrorMessage(err))
	http.Error(w, http.StatusText(status)+": "+prefsync.ErrorMessage(err), status)
}

// Change is one event a callback reports, in terms adapters share.
type Change struct {
	Subject prefsync.Subject
	Scope   prefsync.Scope
	State   prefsync.State
	At      time.Time
	// Touchpoint is where the person acted; Key makes a provider's retry a duplicate.
	Touchpoint prefsync.Touchpoint
	Key        string
	Reason     string
	// Proof is the provider's own record of the event, kept as evidence.
	Proof json.RawMessage
}

// Event is the event of a change reported through source r.
func (r *Request) Event(c Change) prefsync.EventInput {
	ev := prefsync.EventInput{Subject: c.Subject, Channel: c.Scope.Channel, Topic: c.Scope.Topic, State: c.State,
		Source: prefsync.Source{System: r.Source, Touchpoint: c.Touchpoint}, Reason: c.Reason,
		Evidence: prefsync.Evidence{Method: prefsync.Explicit, Proof: c.Proof}, IdempotencyKey: c.Key}
	if !c.At.IsZero() {
		// A provider's clock may run a little ahead; an event is never dated after it arrived.
		ev.OccurredAt = minTime(c.At, r.Now).UTC().Format(time.RFC3339Nano)
	}
	return ev
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Unauthorized is the error of a request whose signature or credentials do not verify.
func Unauthorized(format string, args ...any) error {
	return prefsync.Errorf(prefsync.EUNAUTHORIZED, format, args...)
}

// DecodeConfig reads a source's config strictly: an unknown field is an error naming it.
func DecodeConfig(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		raw = json.RawMessage(`{}`)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		field := ""
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			field = strings.Trim(f, `"`)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field = te.Field
		}
		return &prefsync.Error{Code: prefsync.EINVALID, Field: field, Message: "the config does not read: " + err.Error()}
	}
	return nil
}

// CheckEmailTopics checks a config's map of a provider's ids (groups, lists, streams)
// to topics: each must be a topic sent by email. field names the map in errors.
func CheckEmailTopics(dict *prefsync.Dictionary, field string, topics map[string]string) error {
	for id, topic := range topics {
		if err := dict.ValidateScope(prefsync.Scope{Channel: "email", Topic: topic}); err != nil || topic == prefsync.Any {
			return prefsync.FieldErrorf(field+"."+id, "%q is not a topic sent by email", topic)
		}
	}
	return nil
}

// MarketingTopics are the dictionary's marketing topics sent on channel: what a spam
// complaint stops.
func MarketingTopics(dict *prefsync.Dictionary, channel string) []string {
	var out []string
	for _, t := range dict.Topics {
		if t.Kind == prefsync.Marketing && dict.ValidateScope(prefsync.Scope{Channel: channel, Topic: t.Name}) == nil {
			out = append(out, t.Name)
		}
	}
	return out
}
