package webhook

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// poster sends deliveries to one URL over a pool of keep-alive HTTP/1.1 connections.
// It writes each request itself and reads the answer with net/http's parser: on a
// small machine net/http's client took half the hub's CPU at 10,000 deliveries a
// second, most of it in the two goroutines it runs per connection.
type poster struct {
	url     string
	host    string // for the Host header
	addr    string // host:port to dial
	path    string
	tls     *tls.Config
	timeout time.Duration
	idle    chan *conn
}

type conn struct {
	net.Conn
	// limit bounds what one answer may make the hub read; r reads through it.
	limit io.LimitedReader
	r     *bufio.Reader
	w     *bufio.Writer
}

// maxAnswer is the most of an answer (headers and the part of the body read to reuse
// the connection) the hub reads.
const maxAnswer = 1 << 20

func newPoster(rawURL string, timeout time.Duration, maxIdle int) (*poster, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	p := &poster{url: rawURL, host: u.Host, addr: u.Host, path: u.RequestURI(), timeout: timeout, idle: make(chan *conn, maxIdle)}
	port := "80"
	switch u.Scheme {
	case "https":
		port = "443"
		p.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	case "http":
	default:
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	if u.Port() == "" {
		p.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return p, nil
}

// errStale is a kept-alive connection the server had closed before the request: the
// request is sent again on a new one.
var errStale = errors.New("stale connection")

// post sends body with the headers and returns the answer's status and headers. The
// whole exchange, connecting included, takes at most the poster's timeout.
func (p *poster) post(ctx context.Context, headers [][2]string, body []byte) (int, http.Header, error) {
	deadline := time.Now().Add(p.timeout)
	for {
		c, reused, err := p.get(ctx, deadline)
		if err != nil {
			return 0, nil, err
		}
		code, h, err := p.exchange(c, reused, deadline, headers, body)
		if errors.Is(err, errStale) {
			continue
		}
		return code, h, err
	}
}

// get returns an idle connection, or a new one.
func (p *poster) get(ctx context.Context, deadline time.Time) (*conn, bool, error) {
	select {
	case c := <-p.idle:
		return c, true, nil
	default:
	}
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, err
	}
	if p.tls != nil {
		tc := tls.Client(nc, p.tls)
		tc.SetDeadline(deadline)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	c := &conn{Conn: nc, limit: io.LimitedReader{R: nc}, w: bufio.NewWriterSize(nc, 4096)}
	c.r = bufio.NewReaderSize(&c.limit, 4096)
	return c, false, nil
}

func (p *poster) exchange(c *conn, reused bool, deadline time.Time, headers [][2]string, body []byte) (int, http.Header, error) {
	c.SetDeadline(deadline)
	w := c.w
	w.WriteString("POST ")
	w.WriteString(p.path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(p.host)
	w.WriteString("\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	w.WriteString("\r\n")
	for _, h := range headers {
		w.WriteString(h[0])
		w.WriteString(": ")
		w.WriteString(h[1])
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
	err := w.Flush()
	c.limit.N = maxAnswer
	var resp *http.Response
	for err == nil {
		resp, err = http.ReadResponse(c.r, &http.Request{Method: http.MethodPost})
		// An interim answer (100 Continue, 103 Early Hints) comes before the real one.
		if err != nil || resp.StatusCode >= 200 || resp.StatusCode < 100 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			err = errors.New("the destination switched protocols")
		}
	}
	if err != nil {
		c.Close()
		// A kept-alive connection the server closed fails before any answer: not a
		// verdict on the destination.
		if reused && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) {
			return 0, nil, errStale
		}
		return 0, nil, err
	}
	// The body is read (a little of it) so the connection can be used again; a longer
	// one, or one that does not end, closes it.
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if err == nil {
		_, err = resp.Body.Read(make([]byte, 1))
	}
	if resp.Close || !errors.Is(err, io.EOF) || c.r.Buffered() > 0 {
		c.Close()
	} else {
		p.put(c)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

func (p *poster) put(c *conn) {
	select {
	case p.idle <- c:
	default:
		c.Close()
	}
}

// close closes the idle connections.
func (p *poster) close() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}
