package web_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"prefsync/mailto"
	"prefsync/web"
)

// inbox is an SMTP server on loopback that keeps what it is sent.
type inbox struct {
	mu   sync.Mutex
	mail []string
}

func (b *inbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &inboxSession{b: b}, nil }

type inboxSession struct {
	b  *inbox
	to string
}

func (s *inboxSession) Reset()                                    {}
func (s *inboxSession) Logout() error                             { return nil }
func (s *inboxSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *inboxSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = to; return nil }
func (s *inboxSession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.mail = append(s.b.mail, "RCPT "+s.to+"\r\n"+string(b))
	s.b.mu.Unlock()
	return nil
}

func (b *inbox) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.mail...)
}

func (b *inbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.mail)
}

func startInbox(t *testing.T) (*inbox, string) {
	b := &inbox{}
	srv := smtp.NewServer(b)
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b, ln.Addr().String()
}

func TestRequestLink(t *testing.T) {
	h := newHarness(t)
	box, relay := startInbox(t)
	pages := web.New(h.hub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	pages.Mailer = &mailto.Sender{Relay: relay, From: "prefs@example.org", Now: h.now}
	pages.PublicURL, pages.ConfirmChanges = "https://prefs.example.com", true
	ts := httptest.NewServer(pages)
	defer ts.Close()
	h.contact("ana@example.com")

	ask := func(email string) (int, string) {
		req, _ := http.NewRequest("POST", ts.URL+"/p", strings.NewReader(url.Values{"email": {email}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	// Known and unknown addresses get the same answer; only the known one gets mail.
	codeKnown, known := ask("Ana@Example.com")
	codeUnknown, unknown := ask("nobody@example.com")
	if codeKnown != 200 || codeUnknown != 200 || known != unknown {
		t.Fatalf("answers differ: %d / %d", codeKnown, codeUnknown)
	}
	deadline := time.Now().Add(10 * time.Second)
	for box.count() < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // bounded: a mail to the unknown address would come right behind
	if box.count() != 1 {
		t.Fatalf("%d mails sent, want 1 (to the known address only)", box.count())
	}
	mail := box.mail[0]
	link := regexp.MustCompile(`https://prefs\.example\.com(/p/[A-Za-z0-9_-]+)`).FindStringSubmatch(mail)
	if !strings.HasPrefix(mail, "RCPT ana@example.com") || link == nil {
		t.Fatalf("mail = %s", mail)
	}
	// The link opens the page.
	res, err := http.Get(ts.URL + link[1])
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("the mailed link: %v %v", err, res)
	}
	res.Body.Close()

	// Rate limited per address: the fourth request in the hour is refused.
	ask("ana@example.com")
	ask("ana@example.com")
	if code, _ := ask("ana@example.com"); code != http.StatusTooManyRequests {
		t.Errorf("fourth request for one address: %d", code)
	}
	if code, _ := ask("not an address"); code != 400 {
		t.Errorf("not an address: %d", code)
	}

	// A change on the page is confirmed by mail.
	page := link[1]
	_, body, _ := h.send(mustGet(t, ts.URL+page))
	h.step(time.Minute)
	req, _ := http.NewRequest("POST", ts.URL+page, strings.NewReader(url.Values{"csrf": {csrf(t, body)}, "action": {"all_off"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, _, _ := h.send(req); code != 200 {
		t.Fatal(code)
	}
	// Three links were mailed (the fourth request was refused); then the confirmation.
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(strings.Join(box.all(), "\n"), "Your preferences were changed") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if all := box.all(); len(all) != 4 || !strings.Contains(strings.Join(all, "\n"), "Your preferences were changed") {
		t.Errorf("mails = %d, want 3 links and a confirmation", len(all))
	}
}

func mustGet(t *testing.T, u string) *http.Request {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
