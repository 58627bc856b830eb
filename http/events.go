package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"prefsync"
)

type eventsResponse struct {
	Results []prefsync.EventResult `json:"results"`
}

// handleEvents accepts one event object or {"events": [...]}. Every event is decoded and
// validated before any is written; the first bad one refuses the whole batch.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	raw, err := s.readBody(w, r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	inputs, err := decodeEvents(raw)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	start := time.Now()
	results, err := s.Hub.Ingest(r.Context(), inputs, apiKeyFrom(r.Context()).Name)
	if err != nil {
		if !isBatch(raw) {
			err = unbatched(err)
		}
		s.Error(w, r, err)
		return
	}
	s.Metrics.apply.Observe(time.Since(start).Seconds())
	for _, res := range results {
		s.Metrics.events.WithLabelValues(string(res.Status)).Inc()
	}
	writeJSON(w, http.StatusOK, eventsResponse{Results: results})
}

func decodeEvents(raw []byte) ([]prefsync.EventInput, error) {
	if !isBatch(raw) {
		var in prefsync.EventInput
		if err := unmarshalStrict(raw, &in); err != nil {
			return nil, err
		}
		return []prefsync.EventInput{in}, nil
	}
	var batch struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := unmarshalStrict(raw, &batch); err != nil {
		return nil, err
	}
	out := make([]prefsync.EventInput, len(batch.Events))
	for i, e := range batch.Events {
		if err := unmarshalStrict(e, &out[i]); err != nil {
			return nil, prefsync.WithFieldPrefix(err, fmt.Sprintf("events[%d]", i))
		}
	}
	return out, nil
}

// unbatched names the field of a lone event's error as the client sent it: "channel",
// not "events[0].channel".
func unbatched(err error) error {
	f := prefsync.ErrorField(err)
	if rest, ok := strings.CutPrefix(f, "events[0]"); ok {
		return &prefsync.Error{Code: prefsync.ErrorCode(err), Message: prefsync.ErrorMessage(err), Field: strings.TrimPrefix(rest, ".")}
	}
	return err
}

// isBatch reports whether the body is an object whose first key is "events".
func isBatch(raw []byte) bool {
	rest := bytes.TrimLeft(raw, " \t\r\n")
	if len(rest) == 0 || rest[0] != '{' {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(rest[1:], " \t\r\n"), []byte(`"events"`))
}
