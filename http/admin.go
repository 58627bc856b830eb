package http

import (
	"net/http"

	"prefsync"
)

type suppressionRequest struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
	Source  string `json:"source,omitempty"`
}

func (s *Server) handleAddSuppression(w http.ResponseWriter, r *http.Request) {
	var in suppressionRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.Error(w, r, err)
		return
	}
	if in.Source == "" {
		in.Source = apiKeyFrom(r.Context()).Name
	}
	sup, err := s.Hub.Suppress(r.Context(), prefsync.Suppression{Address: in.Address, Reason: in.Reason, Source: in.Source, Touchpoint: prefsync.API})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, sup)
}

// handleLiftSuppression ends an address's suppression, recorded as lifted by the key.
func (s *Server) handleLiftSuppression(w http.ResponseWriter, r *http.Request) {
	sup, err := s.Hub.LiftSuppression(r.Context(), r.PathValue("address"), apiKeyFrom(r.Context()).Name)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sup)
}

func (s *Server) handleSuppressions(w http.ResponseWriter, r *http.Request) {
	sups, err := s.Hub.Store.Suppressions(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"suppressions": sups})
}

type keyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

type keyCreated struct {
	*prefsync.APIKey
	Secret string `json:"secret"`
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request) {
	var in keyRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.Error(w, r, err)
		return
	}
	k, secret, err := prefsync.NewAPIKey(in.Name, in.Scopes, s.Hub.Now())
	if err == nil {
		_, err = s.Hub.Store.CreateAPIKey(r.Context(), k, false)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, keyCreated{APIKey: k, Secret: secret})
}

func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.Hub.Store.APIKeys(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	if err := s.Hub.Store.RevokeAPIKey(r.Context(), r.PathValue("id"), s.Hub.Now()); err != nil {
		s.Error(w, r, err)
		return
	}
	s.keysMu.Lock()
	clear(s.keys)
	s.keysMu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
