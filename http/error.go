package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"prefsync"
)

// statuses maps each error code to its HTTP status: the one table of it.
var statuses = map[string]int{
	prefsync.EINVALID:      http.StatusBadRequest,
	prefsync.ENOTFOUND:     http.StatusNotFound,
	prefsync.ECONFLICT:     http.StatusConflict,
	prefsync.EUNAUTHORIZED: http.StatusUnauthorized,
	prefsync.EFORBIDDEN:    http.StatusForbidden,
	prefsync.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	prefsync.EUNAVAILABLE:  http.StatusServiceUnavailable,
	prefsync.ETOOMANY:      http.StatusTooManyRequests,
	prefsync.EINTERNAL:     http.StatusInternalServerError,
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func newErrorDetail(err error) errorDetail {
	return errorDetail{Code: prefsync.ErrorCode(err), Message: prefsync.ErrorMessage(err), Field: prefsync.ErrorField(err)}
}

// StatusOf is the HTTP status of an error, by its code: for the API and for the other
// HTTP handlers (pages, provider callbacks) alike.
func StatusOf(err error) int {
	if status, ok := statuses[prefsync.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// Error writes err as a JSON error with the status its code maps to. Internal errors are
// logged and their text withheld from the client.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := prefsync.ErrorCode(err)
	if code == prefsync.EINTERNAL {
		s.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, StatusOf(err), errorBody{newErrorDetail(err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		slog.Debug("write response", "err", err)
	}
}

// decodeJSON reads one JSON value from the body into v: no unknown fields, nothing after
// it, at most the server's body limit.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return unmarshalStrict(body, v)
}

// readBody reads the whole body, at most the server's body limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return s.readBodyInto(w, r, nil)
}

// readBodyInto is readBody appending to buf.
func (s *Server) readBodyInto(w http.ResponseWriter, r *http.Request, buf []byte) ([]byte, error) {
	if r.ContentLength > 0 && r.ContentLength <= s.MaxBodyBytes {
		// Room for the body and for the last read, which sees its end; no more than a
		// small body's ahead of what has arrived.
		buf = slices.Grow(buf, int(min(r.ContentLength, 64<<10))+bytes.MinRead)
	}
	b := bytes.NewBuffer(buf)
	_, err := b.ReadFrom(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	body := b.Bytes()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, prefsync.Errorf(prefsync.ETOOLARGE, "the body is larger than %d bytes", s.MaxBodyBytes)
		}
		return nil, prefsync.Errorf(prefsync.EINVALID, "could not read the body: %v", err)
	}
	return body, nil
}

// unmarshalStrict decodes data into v, refusing unknown fields and trailing data, with
// errors that name the field or the line at fault.
func unmarshalStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			return prefsync.FieldErrorf("", "unexpected data after the JSON value")
		}
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return prefsync.FieldErrorf("", "the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return prefsync.FieldErrorf("", "malformed JSON: it ends too early")
	case errors.As(err, &syn):
		return prefsync.FieldErrorf("", "malformed JSON at line %d: %v", lineOf(data, syn.Offset), syn)
	case errors.As(err, &typ):
		return prefsync.FieldErrorf(typ.Field, "%s must be %s, not %s", fieldName(typ.Field), jsonType(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return prefsync.FieldErrorf(f, "unknown field %q", f)
	}
	return prefsync.FieldErrorf("", "malformed JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonType names a Go type as the JSON a client should send.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Name() == "RawMessage" {
			return "JSON"
		}
		return "an array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "an object"
	}
	return "JSON"
}

func fieldName(f string) string {
	if f == "" {
		return "the body"
	}
	return f
}

func lineOf(data []byte, offset int64) int {
	return 1 + strings.Count(string(data[:min(int(offset), len(data))]), "\n")
}
