// Package http is prefsync's JSON API over HTTP: routing, authentication with API keys,
// the error table, metrics, and the OpenAPI document that describes it.
package http

import (
	"context"
	_ "embed"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"prefsync"
)

//go:embed openapi.json
var openAPI []byte

// Server serves the API for one hub.
type Server struct {
	Hub          *prefsync.Hub
	Logger       *slog.Logger
	Metrics      *Metrics
	MaxBodyBytes int64
	// KeyCacheTTL is how long a looked-up API key is trusted before it is read again,
	// so a revoked key stops working within it.
	KeyCacheTTL time.Duration
	// UnsubscribeURL turns an unsubscribe token into the public URL that serves it;
	// UnsubscribeMailto, when set, into a mailto: URI that works too.
	UnsubscribeURL    func(token string) string
	UnsubscribeMailto func(token string) string
	// PreferenceURL turns a preference token into its page's public URL; links last
	// PreferenceLinkTTL.
	PreferenceURL     func(token string) string
	PreferenceLinkTTL time.Duration
	// SourceKinds checks the kind and config of sources; InboundURL is the URL a
	// source's provider is to call.
	SourceKinds SourceKinds
	InboundURL  func(*prefsync.Inbound) string

	mux     *http.ServeMux
	routes  []Route
	queries []prefsync.Query // every scope of the dictionary, for contact views

	keysMu sync.Mutex
	keys   map[string]cachedKey
}

type cachedKey struct {
	key     *prefsync.APIKey
	expires time.Time
}

// Route is one registered operation.
type Route struct {
	Method, Path string
	// Scope is the API key scope the route needs; "" for public routes, "*" for any key.
	Scope string
}

// NewServer returns a server with its routes registered.
func NewServer(hub *prefsync.Hub, logger *slog.Logger, metrics *Metrics) *Server {
	s := &Server{Hub: hub, Logger: logger, Metrics: metrics, MaxBodyBytes: 8 << 20,
		KeyCacheTTL: 5 * time.Second, mux: http.NewServeMux(), keys: map[string]cachedKey{}, queries: hub.Dict.Queries(),
		UnsubscribeURL: func(token string) string { return "/u/" + token },
		PreferenceURL:  func(token string) string { return "/p/" + token }, PreferenceLinkTTL: 30 * 24 * time.Hour,
		InboundURL: func(in *prefsync.Inbound) string { return "/in/" + in.Name + "/" + in.Secret }}
	s.handle("GET", "/healthz", "", s.handleHealth)
	s.handle("GET", "/metrics", "", metrics.handler().ServeHTTP)
	s.handle("GET", "/v1/openapi.json", "", s.handleOpenAPI)
	s.handle("GET", "/v1/dictionary", "*", s.handleDictionary)
	s.handle("POST", "/v1/events", prefsync.ScopeEventsWrite, s.handleEvents)
	s.handle("POST", "/v1/check", prefsync.ScopeCheck, s.handleCheck)
	s.handle("POST", "/v1/contacts", prefsync.ScopeContactsWrite, s.handleUpsertContact)
	s.handle("GET", "/v1/contacts", prefsync.ScopeContactsRead, s.handleLookupContact)
	s.handle("GET", "/v1/contacts/{id}", prefsync.ScopeContactsRead, s.handleGetContact)
	s.handle("GET", "/v1/contacts/{id}/history", prefsync.ScopeContactsRead, s.handleHistory)
	s.handle("POST", "/v1/contacts/{id}/merge", prefsync.ScopeContactsWrite, s.handleMerge)
	// Links let their holder write changes, so making them takes the right to write.
	s.handle("GET", "/v1/contacts/{id}/list-unsubscribe", prefsync.ScopeEventsWrite, s.handleListUnsubscribe)
	s.handle("GET", "/v1/contacts/{id}/preference-link", prefsync.ScopeEventsWrite, s.handlePreferenceLink)
	s.handle("POST", "/v1/suppressions", prefsync.ScopeEventsWrite, s.handleAddSuppression)
	s.handle("GET", "/v1/suppressions", prefsync.ScopeContactsRead, s.handleSuppressions)
	s.handle("DELETE", "/v1/suppressions/{address}", prefsync.ScopeAdmin, s.handleLiftSuppression)
	s.handle("POST", "/v1/sources", prefsync.ScopeAdmin, s.handleCreateSource)
	s.handle("GET", "/v1/sources", prefsync.ScopeAdmin, s.handleSources)
	s.handle("GET", "/v1/sources/{name}", prefsync.ScopeAdmin, s.handleGetSource)
	s.handle("DELETE", "/v1/sources/{name}", prefsync.ScopeAdmin, s.handleDeleteSource)
	s.handle("POST", "/v1/keys", prefsync.ScopeAdmin, s.handleCreateKey)
	s.handle("GET", "/v1/keys", prefsync.ScopeAdmin, s.handleKeys)
	s.handle("DELETE", "/v1/keys/{id}", prefsync.ScopeAdmin, s.handleRevokeKey)
	s.handle("POST", "/v1/destinations", prefsync.ScopeAdmin, s.handleCreateDestination)
	s.handle("GET", "/v1/destinations", prefsync.ScopeAdmin, s.handleDestinations)
	s.handle("GET", "/v1/destinations/{name}", prefsync.ScopeAdmin, s.handleGetDestination)
	s.handle("DELETE", "/v1/destinations/{name}", prefsync.ScopeAdmin, s.handleDeleteDestination)
	s.handle("POST", "/v1/destinations/{name}/secret", prefsync.ScopeAdmin, s.handleRotateSecret)
	s.handle("POST", "/v1/destinations/{name}/enable", prefsync.ScopeAdmin, s.handleEnableDestination)
	s.handle("GET", "/v1/destinations/{name}/deliveries", prefsync.ScopeAdmin, s.handleDeliveries)
	s.handle("POST", "/v1/destinations/{name}/deliveries/replay", prefsync.ScopeAdmin, s.handleReplay)
	return s
}

// Routes lists the registered operations.
func (s *Server) Routes() []Route { return s.routes }

// ServeHTTP implements http.Handler. Requests no route takes get JSON errors too: 405
// with Allow for a known path and another method, 404 otherwise.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	var allow []string
	for _, m := range []string{"GET", "POST", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeJSON(w, http.StatusNotFound, errorBody{errorDetail{Code: prefsync.ENOTFOUND, Message: "no route " + r.URL.Path}})
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{errorDetail{Code: prefsync.EINVALID,
		Message: r.Method + " is not allowed on " + r.URL.Path + "; use " + strings.Join(allow, " or ")}})
}

type keyContext struct{}

func (s *Server) handle(method, path, scope string, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Scope: scope})
	pattern := method + " " + path
	observe := s.Metrics.route(pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() { observe(sw.status, time.Since(start)) }()
		if scope != "" {
			k, err := s.authenticate(r)
			if err == nil && scope != "*" && !k.Allows(scope) {
				err = prefsync.Errorf(prefsync.EFORBIDDEN, "key %q lacks the scope %s", k.Name, scope)
			}
			if err != nil {
				if prefsync.ErrorCode(err) == prefsync.EUNAUTHORIZED {
					sw.Header().Set("WWW-Authenticate", `Bearer realm="prefsync"`)
				}
				s.Error(sw, r, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), keyContext{}, k))
		}
		h(sw, r)
	})
}

func apiKeyFrom(ctx context.Context) *prefsync.APIKey {
	k, _ := ctx.Value(keyContext{}).(*prefsync.APIKey)
	return k
}

func (s *Server) authenticate(r *http.Request) (*prefsync.APIKey, error) {
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		return nil, prefsync.Errorf(prefsync.EUNAUTHORIZED, "send an API key as Authorization: Bearer <key>")
	}
	hash := prefsync.HashAPIKey(secret)
	id := hex.EncodeToString(hash)
	now := s.Hub.Now()
	s.keysMu.Lock()
	c, ok := s.keys[id]
	s.keysMu.Unlock()
	if ok && now.Before(c.expires) {
		return c.key, nil
	}
	k, err := s.Hub.Store.FindAPIKey(r.Context(), hash)
	if prefsync.ErrorCode(err) == prefsync.ENOTFOUND {
		return nil, prefsync.Errorf(prefsync.EUNAUTHORIZED, "the API key is not valid")
	}
	if err != nil {
		return nil, err
	}
	s.keysMu.Lock()
	if len(s.keys) > 10000 {
		clear(s.keys)
	}
	s.keys[id] = cachedKey{key: k, expires: now.Add(s.KeyCacheTTL)}
	s.keysMu.Unlock()
	return k, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (flushing, full duplex).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "contacts": s.Hub.Index.Len()})
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}

func (s *Server) handleDictionary(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Hub.Dict)
}
