package http

import (
	"net/http"

	"prefsync"
)

// handleListUnsubscribe answers the List-Unsubscribe and List-Unsubscribe-Post header
// values (RFC 2369, RFC 8058) of a contact and scope, for a sender to put in its mail.
// ?channel= defaults to email and ?topic= to every topic (*).
func (s *Server) handleListUnsubscribe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scope := prefsync.Scope{Channel: q.Get("channel"), Topic: q.Get("topic")}
	if scope.Channel == "" {
		scope.Channel = "email"
	}
	if scope.Topic == "" {
		scope.Topic = prefsync.Any
	}
	token, err := s.Hub.UnsubscribeToken(r.Context(), r.PathValue("id"), scope)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// The https URI first: mail clients that do one-click take the first they can use.
	lu := "<" + s.UnsubscribeURL(token) + ">"
	if s.UnsubscribeMailto != nil {
		lu += ", <" + s.UnsubscribeMailto(token) + ">"
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"List-Unsubscribe":      lu,
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
	})
}

// handlePreferenceLink answers a signed link to the contact's preference page, valid for
// the server's PreferenceLinkTTL.
func (s *Server) handlePreferenceLink(w http.ResponseWriter, r *http.Request) {
	token, exp, err := s.Hub.PreferenceToken(r.Context(), r.PathValue("id"), s.PreferenceLinkTTL)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"url": s.PreferenceURL(token), "expires_at": exp})
}
