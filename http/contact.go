package http

import (
	"net/http"

	"prefsync"
)

// contactView is a contact as the API shows it: identifiers, the state of every scope it
// has, pauses, and the effective decision for every (channel, topic) of the dictionary.
type contactView struct {
	*prefsync.Contact
	Scopes    []prefsync.ScopeState `json:"scopes"`
	Pauses    []prefsync.Pause      `json:"pauses"`
	Decisions []scopeDecision       `json:"decisions"`
}

type scopeDecision struct {
	Channel string `json:"channel"`
	Topic   string `json:"topic"`
	prefsync.Decision
}

func (s *Server) view(c *prefsync.Contact) contactView {
	v := contactView{Contact: c, Scopes: nonNil(c.State.Scopes), Pauses: nonNil(c.State.Pauses)}
	c.Emails, c.Phones, c.ExternalIDs = nonNil(c.Emails), nonNil(c.Phones), nonNil(c.ExternalIDs)
	now := s.Hub.Now().Unix()
	subj := prefsync.Subject{ContactID: c.ID}
	for i := range s.queries {
		q := &s.queries[i]
		v.Decisions = append(v.Decisions, scopeDecision{Channel: q.Scope.Channel, Topic: q.Scope.Topic, Decision: s.Hub.Index.Check(q, &subj, now)})
	}
	return v
}

func (s *Server) handleUpsertContact(w http.ResponseWriter, r *http.Request) {
	var in prefsync.ContactInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.Error(w, r, err)
		return
	}
	in.Source = sourceOf(r, in.Source)
	c, err := s.Hub.UpsertContact(r.Context(), in)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(c))
}

func (s *Server) handleGetContact(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !prefsync.ValidContactID(id) {
		s.Error(w, r, prefsync.Errorf(prefsync.ENOTFOUND, "no contact %s", id))
		return
	}
	c, err := s.Hub.FindContact(r.Context(), prefsync.Subject{ContactID: id})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(c))
}

// handleLookupContact finds a contact by ?email=, ?phone= or ?external_system=&external_id=.
func (s *Server) handleLookupContact(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var subj prefsync.Subject
	switch {
	case q.Has("email"):
		subj.Email = q.Get("email")
	case q.Has("phone"):
		subj.Phone = q.Get("phone")
	case q.Has("external_system") || q.Has("external_id"):
		subj.ExternalID = &prefsync.ExternalID{System: q.Get("external_system"), ID: q.Get("external_id")}
	default:
		s.Error(w, r, prefsync.FieldErrorf("email", "look a contact up by email, phone, or external_system and external_id"))
		return
	}
	c, err := s.Hub.FindContact(r.Context(), subj)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(c))
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !prefsync.ValidContactID(id) {
		s.Error(w, r, prefsync.Errorf(prefsync.ENOTFOUND, "no contact %s", id))
		return
	}
	events, err := s.Hub.Store.History(r.Context(), id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events})
}

type mergeRequest struct {
	ContactID string          `json:"contact_id"`
	Source    prefsync.Source `json:"source"`
}

// handleMerge folds the contact named in the body into the one in the path.
func (s *Server) handleMerge(w http.ResponseWriter, r *http.Request) {
	var in mergeRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.Error(w, r, err)
		return
	}
	if !prefsync.ValidContactID(in.ContactID) {
		s.Error(w, r, prefsync.FieldErrorf("contact_id", "%q is not a contact id", in.ContactID))
		return
	}
	in.Source = sourceOf(r, in.Source)
	c, err := s.Hub.Merge(r.Context(), r.PathValue("id"), in.ContactID, in.Source)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(c))
}

// sourceOf fills what a change's source leaves out: the system is the API key's name,
// the touchpoint the API.
func sourceOf(r *http.Request, src prefsync.Source) prefsync.Source {
	if src.System == "" {
		src.System = apiKeyFrom(r.Context()).Name
	}
	if src.Touchpoint == "" {
		src.Touchpoint = prefsync.API
	}
	return src
}

// nonNil makes empty lists render as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
