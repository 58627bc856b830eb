// Package mailto is prefsync's mail: the SMTP listener behind the mailto:
// List-Unsubscribe URI (RFC 2369), where a mail whose subject holds an unsubscribe token
// opts the token's contact out as a one-click POST does; and the sender of the mail the
// preference page sends.
package mailto

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"prefsync"
)

// Local is the local part of the unsubscribe address.
const Local = "unsubscribe"

// Listener receives unsubscribe mail for Domain.
type Listener struct {
	Hub    *prefsync.Hub
	Domain string
	Logger *slog.Logger
	server *smtp.Server
}

// New returns a listener for mail to unsubscribe@domain.
func New(hub *prefsync.Hub, domain string, logger *slog.Logger) *Listener {
	l := &Listener{Hub: hub, Domain: strings.ToLower(domain), Logger: logger}
	s := smtp.NewServer(backend{l})
	s.Domain = l.Domain
	s.MaxMessageBytes = 256 << 10
	s.MaxRecipients = 10
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	l.server = s
	return l
}

// URI is the mailto: URI of a token: the token travels in the subject, since a local
// part holds at most 64 characters.
func (l *Listener) URI(token string) string {
	return "mailto:" + Local + "@" + l.Domain + "?subject=" + url.PathEscape("unsubscribe "+token)
}

// Serve accepts mail on ln until Close.
func (l *Listener) Serve(ln net.Listener) error {
	err := l.server.Serve(ln)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the listener.
func (l *Listener) Close() error { return l.server.Close() }

type backend struct{ l *Listener }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	ip, _, _ := net.SplitHostPort(c.Conn().RemoteAddr().String())
	return &session{l: b.l, ip: ip}, nil
}

type session struct {
	l  *Listener
	ip string
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error { return nil }

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !strings.EqualFold(to, Local+"@"+s.l.Domain) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox here"}
	}
	return nil
}

// Data reads the mail's subject and unsubscribes with the token in it.
func (s *session) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "the message does not parse"}
	}
	io.Copy(io.Discard, msg.Body)
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev := prefsync.Evidence{IP: s.ip, UserAgent: "mail from " + msg.Header.Get("From")}
	for _, word := range strings.Fields(subject) {
		_, _, err := s.l.Hub.Unsubscribe(ctx, word, ev, prefsync.OneClick)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, prefsync.ErrBadLink):
			continue
		default:
			s.l.Logger.Error("unsubscribe by mail", "err", err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "the subject holds no valid unsubscribe link"}
}
