package http

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"prefsync"
)

// destinationWithSecret is a destination as created or rotated: the only answers that
// carry its signing secret.
type destinationWithSecret struct {
	*prefsync.Destination
	Secret string `json:"secret"`
}

func (s *Server) handleCreateDestination(w http.ResponseWriter, r *http.Request) {
	var in prefsync.DestinationInput
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.Error(w, r, err)
		return
	}
	d, err := s.Hub.CreateDestination(r.Context(), in)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, destinationWithSecret{Destination: d, Secret: d.Secrets[0].Value})
}

func (s *Server) handleDestinations(w http.ResponseWriter, r *http.Request) {
	ds, err := s.Hub.Store.Destinations(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"destinations": nonNil(ds)})
}

func (s *Server) handleGetDestination(w http.ResponseWriter, r *http.Request) {
	d, err := s.Hub.Destination(r.Context(), r.PathValue("name"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleDeleteDestination(w http.ResponseWriter, r *http.Request) {
	if err := s.Hub.DeleteDestination(r.Context(), r.PathValue("name")); err != nil {
		s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type rotateRequest struct {
	Secret string `json:"secret"`
	Grace  string `json:"grace"`
}

// handleRotateSecret gives a destination a new secret. Every field is optional, so an
// empty body is accepted too.
func (s *Server) handleRotateSecret(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	var in rotateRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := unmarshalStrict(body, &in); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	grace := prefsync.DefaultSecretGrace
	if in.Grace != "" {
		if grace, err = prefsync.ParseDuration(in.Grace); err != nil {
			s.Error(w, r, prefsync.FieldErrorf("grace", "%q is not a duration such as 24h, 90m or 7d", in.Grace))
			return
		}
	}
	d, err := s.Hub.RotateSecret(r.Context(), r.PathValue("name"), in.Secret, grace)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, destinationWithSecret{Destination: d, Secret: d.Secrets[0].Value})
}

func (s *Server) handleEnableDestination(w http.ResponseWriter, r *http.Request) {
	d, err := s.Hub.EnableDestination(r.Context(), r.PathValue("name"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// deliveryPage is one page of a destination's deliveries. NextAfter is the after= of the
// next page; it is absent on the last one.
type deliveryPage struct {
	Deliveries []prefsync.Delivery `json:"deliveries"`
	NextAfter  int64               `json:"next_after,omitempty"`
}

func (s *Server) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f, err := deliveryFilter(name, r.URL.Query())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if _, err := s.Hub.Destination(r.Context(), name); err != nil {
		s.Error(w, r, err)
		return
	}
	ds, err := s.Hub.Store.Deliveries(r.Context(), f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	page := deliveryPage{Deliveries: nonNil(ds)}
	if len(ds) == f.Limit {
		page.NextAfter = ds[len(ds)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

// deliveryFilter reads ?status=, ?after= and ?limit= (1 to 1000, default 100).
func deliveryFilter(destination string, q url.Values) (prefsync.DeliveryFilter, error) {
	f := prefsync.DeliveryFilter{Destination: destination, Limit: 100}
	if f.Status = prefsync.DeliveryStatus(q.Get("status")); f.Status != "" && !f.Status.Known() {
		return f, prefsync.FieldErrorf("status", "unknown delivery status %q: want pending, delivered, dead or cancelled", f.Status)
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return f, prefsync.FieldErrorf("after", "after is a delivery id, not %q", v)
		}
		f.After = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, prefsync.FieldErrorf("limit", "limit is a number from 1 to 1000, not %q", v)
		}
		f.Limit = n
	}
	return f, nil
}

type replayRequest struct {
	DeliveryID *int64 `json:"delivery_id"`
	Since      string `json:"since"`
}

// handleReplay makes dead deliveries pending again: one, or all since a time.
func (s *Server) handleReplay(w http.ResponseWriter, r *http.Request) {
	var in replayRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.Error(w, r, err)
		return
	}
	f := prefsync.DeliveryFilter{Destination: r.PathValue("name")}
	switch {
	case in.DeliveryID != nil && in.Since != "":
		s.Error(w, r, prefsync.FieldErrorf("since", "send delivery_id or since, not both"))
		return
	case in.DeliveryID != nil:
		if *in.DeliveryID < 1 {
			s.Error(w, r, prefsync.FieldErrorf("delivery_id", "%d is not a delivery id", *in.DeliveryID))
			return
		}
		f.ID = *in.DeliveryID
	case in.Since != "":
		t, err := time.Parse(time.RFC3339Nano, in.Since)
		if err != nil {
			s.Error(w, r, prefsync.FieldErrorf("since", "%q is not an RFC 3339 time such as 2026-03-01T10:00:00Z", in.Since))
			return
		}
		f.Since = t
	default:
		s.Error(w, r, prefsync.FieldErrorf("delivery_id", "name one dead delivery (delivery_id) or replay every dead one since a time (since)"))
		return
	}
	n, err := s.Hub.ReplayDeliveries(r.Context(), f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
}
