package http

import (
	"encoding/json"
	"net/http"

	"prefsync"
)

// SourceKinds checks a source's kind and config: the inbound adapters.
type SourceKinds interface {
	Validate(kind string, config json.RawMessage) error
}

// sourceView is a source as the API shows it: with the URL to paste into the
// provider's console, which holds its secret (admin keys only).
type sourceView struct {
	*prefsync.Inbound
	InboundURL string `json:"inbound_url"`
}

func (s *Server) sourceView(in *prefsync.Inbound) sourceView {
	return sourceView{Inbound: in, InboundURL: s.InboundURL(in)}
}

func (s *Server) handleCreateSource(w http.ResponseWriter, r *http.Request) {
	var in prefsync.InboundInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.Error(w, r, err)
		return
	}
	if s.SourceKinds == nil {
		s.Error(w, r, prefsync.FieldErrorf("kind", "no source adapters are configured"))
		return
	}
	src, err := s.Hub.CreateInbound(r.Context(), in, s.SourceKinds.Validate)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.sourceView(src))
}

func (s *Server) handleSources(w http.ResponseWriter, r *http.Request) {
	all, err := s.Hub.Store.Inbounds(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := make([]sourceView, len(all))
	for i, in := range all {
		out[i] = s.sourceView(in)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sources": out})
}

func (s *Server) handleGetSource(w http.ResponseWriter, r *http.Request) {
	all, err := s.Hub.Store.Inbounds(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	for _, in := range all {
		if in.Name == r.PathValue("name") {
			writeJSON(w, http.StatusOK, s.sourceView(in))
			return
		}
	}
	s.Error(w, r, prefsync.Errorf(prefsync.ENOTFOUND, "no source %q", r.PathValue("name")))
}

func (s *Server) handleDeleteSource(w http.ResponseWriter, r *http.Request) {
	if err := s.Hub.Store.DeleteInbound(r.Context(), r.PathValue("name")); err != nil {
		s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
