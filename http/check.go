package http

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"unsafe"

	"prefsync"
)

type checkRequest struct {
	Channel    string             `json:"channel"`
	Topic      string             `json:"topic"`
	Recipients []prefsync.Subject `json:"recipients"`
}

// handleCheck answers "may I send this?" for a list of recipients (JSON), or for a stream
// of them (NDJSON, one recipient a line in, one result a line out, in order). The
// common request is read and answered without reflection, in buffers used again: at
// tens of thousands of checks a second, the decoder, the encoder and their garbage were
// a third of the hub's work per check.
func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		if mt, _, _ := mime.ParseMediaType(ct); mt == "application/x-ndjson" {
			s.streamCheck(w, r)
			return
		}
	}
	buf := checkBuffers.Get().(*checkBuffer)
	defer buf.release()
	body, err := s.readBodyInto(w, r, buf.body[:0])
	if err != nil {
		s.Error(w, r, err)
		return
	}
	buf.body = body
	in := checkRequest{Recipients: buf.recipients[:0]}
	if !parseCheckRequest(body, &in) {
		in = checkRequest{}
		if err := unmarshalStrict(body, &in); err != nil {
			s.Error(w, r, err)
			return
		}
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
	out := append(buf.out[:0], `{"results":[`...)
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
		if i > 0 {
			out = append(out, ',')
		}
		out = appendDecision(out, d)
	}
	out = append(out, "]}\n"...)
	s.Metrics.decided(allowed, len(in.Recipients)-allowed)
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
	buf.out, buf.recipients = out, in.Recipients
}

// checkBuffer holds one check request's body, recipients and answer.
type checkBuffer struct {
	body       []byte
	recipients []prefsync.Subject
	out        []byte
}

// release returns the buffers to the pool: those of ordinary requests, not those a
// large one grew.
func (b *checkBuffer) release() {
	if cap(b.body) > 64<<10 || cap(b.out) > 64<<10 || cap(b.recipients) > 1024 {
		*b = checkBuffer{}
	}
	checkBuffers.Put(b)
}

var checkBuffers = sync.Pool{New: func() any { return new(checkBuffer) }}

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
			buf = append(buf, '\n')
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

// appendDecision appends d as a JSON object.
func appendDecision(buf []byte, d prefsync.Decision) []byte {
	if d.Allowed {
		buf = append(buf, `{"allowed":true,"reason":"`...)
	} else {
		buf = append(buf, `{"allowed":false,"reason":"`...)
	}
	buf = append(buf, d.Reason...) // reasons are prefsync's own words: nothing to escape
	buf = append(buf, `","version":`...)
	buf = strconv.AppendInt(buf, d.Version, 10)
	return append(buf, '}')
}

func appendLineError(buf []byte, err error) []byte {
	b, _ := json.Marshal(struct {
		Allowed bool        `json:"allowed"`
		Reason  string      `json:"reason"`
		Error   errorDetail `json:"error"`
	}{false, "invalid_recipient", newErrorDetail(err)})
	return append(buf, b...)
}

// parseRecipient reads the common shape of a recipient line, a flat object of plain
// strings such as {"email":"a@example.com"}, without allocating. It reports false for
// anything else (escapes, nesting, unknown keys), which the full decoder then handles.
// The strings alias line and must not outlive it.
func parseRecipient(line []byte, s *prefsync.Subject) bool {
	end, ok := recipientAt(line, skipSpace(line, 0), s)
	return ok && skipSpace(line, end) == len(line)
}

// recipientAt reads a flat recipient object that starts at b[i] and returns the index
// after it.
func recipientAt(b []byte, i int, s *prefsync.Subject) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		key, val, k, ok := member(b, i)
		if !ok {
			return i, false
		}
		switch string(key) {
		case "email":
			s.Email = alias(val)
		case "phone":
			s.Phone = alias(val)
		case "contact_id":
			s.ContactID = alias(val)
		default:
			return i, false
		}
		if k >= len(b) {
			return k, false
		}
		switch b[k] {
		case '}':
			return k + 1, true
		case ',':
			i = skipSpace(b, k+1)
		default:
			return k, false
		}
	}
}

// parseCheckRequest reads the common shape of a check request, an object of a plain
// channel, topic and a list of flat recipients, without reflection; false sends the
// body to the full decoder. The strings alias body.
func parseCheckRequest(body []byte, in *checkRequest) bool {
	listed := false // recipients seen
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	i = skipSpace(body, i+1)
	for i < len(body) && body[i] != '}' {
		key, k, ok := plainString(body, i)
		if !ok {
			return false
		}
		if k = skipSpace(body, k); k >= len(body) || body[k] != ':' {
			return false
		}
		k = skipSpace(body, k+1)
		switch string(key) {
		case "channel", "topic":
			val, next, ok := plainString(body, k)
			if !ok {
				return false
			}
			if string(key) == "channel" {
				in.Channel = alias(val)
			} else {
				in.Topic = alias(val)
			}
			k = next
		case "recipients":
			if k >= len(body) || body[k] != '[' {
				return false
			}
			if listed {
				return false // the decoder merges a repeated list into the first
			}
			listed = true
			if in.Recipients = in.Recipients[:0]; in.Recipients == nil {
				in.Recipients = make([]prefsync.Subject, 0, 1)
			}
			for k = skipSpace(body, k+1); k < len(body) && body[k] != ']'; {
				var subj prefsync.Subject
				if k, ok = recipientAt(body, k, &subj); !ok {
					return false
				}
				in.Recipients = append(in.Recipients, subj)
				if k = skipSpace(body, k); k < len(body) && body[k] == ',' {
					if k = skipSpace(body, k+1); k >= len(body) || body[k] != '{' {
						return false
					}
				} else if k >= len(body) || body[k] != ']' {
					return false
				}
			}
			k++
		default:
			return false
		}
		if k = skipSpace(body, k); k < len(body) && body[k] == ',' {
			if k = skipSpace(body, k+1); k >= len(body) || body[k] != '"' {
				return false
			}
		} else if k >= len(body) || body[k] != '}' {
			return false
		}
		i = k
	}
	return i < len(body) && skipSpace(body, i+1) == len(body)
}

// member reads "key": "value" at b[i] and returns the index after the value and
// the spaces that follow it.
func member(b []byte, i int) (key, val []byte, next int, ok bool) {
	key, j, ok := plainString(b, i)
	if !ok {
		return nil, nil, i, false
	}
	if j = skipSpace(b, j); j >= len(b) || b[j] != ':' {
		return nil, nil, i, false
	}
	val, k, ok := plainString(b, skipSpace(b, j+1))
	if !ok {
		return nil, nil, i, false
	}
	return key, val, skipSpace(b, k), true
}

// alias is b as a string without a copy: valid while b is.
func alias(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

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
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
