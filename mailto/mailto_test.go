package mailto_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"testing"
	"time"

	"prefsync"
	"prefsync/hubtest"
	"prefsync/mailto"
)

func TestUnsubscribeByMail(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) }
	hub := hubtest.New(t, now)
	res, err := hub.Ingest(context.Background(), []prefsync.EventInput{{Subject: prefsync.Subject{Email: "ana@example.com"},
		Channel: "email", Topic: "newsletter", State: prefsync.OptedIn, Evidence: prefsync.Evidence{Method: prefsync.Explicit},
		Source: prefsync.Source{System: "web", Touchpoint: prefsync.API}, OccurredAt: "2026-11-01T00:00:00Z"}}, "web")
	if err != nil {
		t.Fatal(err)
	}
	token, _ := hub.UnsubscribeToken(context.Background(), res[0].ContactID, prefsync.Scope{Channel: "email", Topic: "newsletter"})

	l := mailto.New(hub, "unsub.example.com", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve(ln)
	defer l.Close()

	// The URI a mail client would follow, then the mail it would send.
	u, err := url.Parse(l.URI(token))
	if err != nil || u.Scheme != "mailto" || u.Opaque != "unsubscribe@unsub.example.com" {
		t.Fatalf("URI = %s (%v)", l.URI(token), err)
	}
	send := func(to, subject string) error {
		msg := "From: Ana <ana@example.com>\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n\r\nPlease stop.\r\n"
		return smtp.SendMail(ln.Addr().String(), nil, "ana@example.com", []string{to}, []byte(msg))
	}
	if err := send("unsubscribe@unsub.example.com", "hello"); err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("a subject without a token: %v", err)
	}
	if err := send("someone@unsub.example.com", u.Query().Get("subject")); err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("another mailbox: %v", err)
	}
	hist, _ := hub.Store.History(context.Background(), res[0].ContactID)
	if len(hist) != 1 {
		t.Fatalf("refused mail wrote %d entries", len(hist)-1)
	}
	if err := send("unsubscribe@unsub.example.com", u.Query().Get("subject")); err != nil {
		t.Fatalf("unsubscribe mail: %v", err)
	}
	hist, _ = hub.Store.History(context.Background(), res[0].ContactID)
	last := hist[len(hist)-1]
	if len(hist) != 2 || last.State != prefsync.OptedOut || last.Topic != "newsletter" || last.Source.Touchpoint != prefsync.OneClick ||
		last.Evidence.IP != "127.0.0.1" {
		t.Errorf("recorded %+v", last)
	}
}
