package http

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"unsafe"

	"prefsync"
)

type checkRequest struct {
	Channel    string             `json:"channel"`
	Topic      string             `json:"topic"`
	Recipients []prefsync.Subject `json:"recipients"`
}

type checkResponse struct {
	Results []prefsync.Decision `json:"results"`
}

// handleCheck answers "may I send this?" for a list of recipients (JSON), or for a stream
// of them (NDJSON, one recipient a line in, one result a line out, in order).
func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-ndjson" {
		s.streamCheck(w, r)
		return
	}
	var in checkRequest
	if err := s.decodeJSON(w, r, &in); err != nil {
		s.Error(w, r, err)
		return
	}
	q, err := s.Hub.Dict.Query(in.Channel, in.Topic)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if len(in.Recipients) == 0 {
		s.Error(w, r, prefsync.FieldErrorf("recipients", "no recipients given"))
		return
	}
	now := s.Hub.Now().Unix()
	out := checkResponse{Results: make([]prefsync.Decision, len(in.Recipients))}
	allowed := 0
	for i := range in.Recipients {
		d, err := s.Hub.Check(&q, &in.Recipients[i], now)
		if err != nil {
			s.Error(w, r, prefsync.WithFieldPrefix(err, "recipients["+strconv.Itoa(i)+"]"))
			return
		}
		if d.Allowed {
			allowed++
		}
		out.Results[i] = d
	}
	s.Metrics.decided(allowed, len(out.Results)-allowed)
	writeJSON(w, http.StatusOK, out)
}

// maxLine bounds one NDJSON recipient line.
const maxLine = 64 << 10

// streamCheck filters an audience of any size in constant memory. A line that is not a
// recipient gets a denied result carrying the error, so the output stays aligned with
// the input.
func (s *Server) streamCheck(w http.ResponseWriter, r *http.Request) {
	qs := r.URL.Query()
	q, err := s.Hub.Dict.Query(qs.Get("channel"), qs.Get("topic"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// Read and write at once: HTTP/1.1 servers otherwise stop reading once they answer.
	http.NewResponseController(w).EnableFullDuplex()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	in := bufio.NewReaderSize(r.Body, 64<<10)
	out := bufio.NewWriterSize(w, 64<<10)
	now := s.Hub.Now().Unix()
	var buf []byte
	allowed, denied := 0, 0
	defer func() { s.Metrics.decided(allowed, denied) }()
	for {
		line, err := readLine(in)
		if len(line) > 0 {
			var ok bool
			buf, ok = s.checkLine(buf[:0], &q, line, now)
			if ok {
				allowed++
			} else {
				denied++
			}
			if _, werr := out.Write(buf); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.Logger.Info("check stream ended early", "err", err)
			}
			out.Flush()
			return
		}
		if in.Buffered() == 0 {
			// Nothing more to hand: let the client see what is decided so far.
			if out.Flush() != nil {
				return
			}
		}
	}
}

// readLine returns the next line without its newline, skipping blank lines. The slice is
// only valid until the next read.
func readLine(in *bufio.Reader) ([]byte, error) {
	for {
		line, err := in.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = in.ReadSlice('\n')
			}
			return []byte("!"), err // too long: answered as an invalid line
		}
		for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r' || line[len(line)-1] == ' ') {
			line = line[:len(line)-1]
		}
		if len(line) > 0 || err != nil {
			return line, err
		}
	}
}

// checkLine appends the result for one recipient line and reports whether it allowed.
func (s *Server) checkLine(buf []byte, q *prefsync.Query, line []byte, now int64) ([]byte, bool) {
	var subj prefsync.Subject
	if !parseRecipient(line, &subj) {
		subj = prefsync.Subject{}
		if err := unmarshalStrict(line, &subj); err != nil {
			return appendLineError(buf, err), false
		}
	}
	d, err := s.Hub.Check(q, &subj, now)
	if err != nil {
		return appendLineError(buf, err), false
	}
	return appendDecision(buf, d), d.Allowed
}

func appendDecision(buf []byte, d prefsync.Decision) []byte {
	if d.Allowed {
		buf = append(buf, `{"allowed":true,"reason":"`...)
	} else {
		buf = append(buf, `{"allowed":false,"reason":"`...)
	}
	buf = append(buf, d.Reason...) // reasons are prefsync's own words: nothing to escape
	buf = append(buf, `","version":`...)
	buf = strconv.AppendInt(buf, d.Version, 10)
	return append(buf, "}\n"...)
}

func appendLineError(buf []byte, err error) []byte {
	b, _ := json.Marshal(struct {
		Allowed bool        `json:"allowed"`
		Reason  string      `json:"reason"`
		Error   errorDetail `json:"error"`
	}{false, "invalid_recipient", newErrorDetail(err)})
	buf = append(buf, b...)
	return append(buf, '\n')
}

// parseRecipient reads the common shape of a recipient line, a flat object of plain
// strings such as {"email":"a@example.com"}, without allocating. It reports false for
// anything else (escapes, nesting, unknown keys), which the full decoder then handles.
// The strings alias line and must not outlive it.
func parseRecipient(line []byte, s *prefsync.Subject) bool {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return false
	}
	i = skipSpace(line, i+1)
	if i < len(line) && line[i] == '}' {
		return skipSpace(line, i+1) == len(line)
	}
	for {
		key, j, ok := plainString(line, i)
		if !ok {
			return false
		}
		j = skipSpace(line, j)
		if j >= len(line) || line[j] != ':' {
			return false
		}
		val, k, ok := plainString(line, skipSpace(line, j+1))
		if !ok {
			return false
		}
		switch string(key) {
		case "email":
			s.Email = unsafe.String(unsafe.SliceData(val), len(val))
		case "phone":
			s.Phone = unsafe.String(unsafe.SliceData(val), len(val))
		case "contact_id":
			s.ContactID = unsafe.String(unsafe.SliceData(val), len(val))
		default:
			return false
		}
		k = skipSpace(line, k)
		if k >= len(line) {
			return false
		}
		switch line[k] {
		case '}':
			return skipSpace(line, k+1) == len(line)
		case ',':
			i = skipSpace(line, k+1)
		default:
			return false
		}
	}
}

// plainString reads a JSON string of printable ASCII with no escapes at line[i].
func plainString(line []byte, i int) ([]byte, int, bool) {
	if i >= len(line) || line[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(line); j++ {
		switch c := line[j]; {
		case c == '"':
			return line[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80: // escapes and non-ASCII: the decoder's job
			return nil, i, false
		}
	}
	return nil, i, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}
