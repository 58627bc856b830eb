package web_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"prefsync"
	"prefsync/hubtest"
	"prefsync/web"
)

type harness struct {
	t   *testing.T
	hub *prefsync.Hub
	ts  *httptest.Server

	mu sync.Mutex
	at time.Time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, at: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	h.hub = hubtest.New(t, h.now)
	h.ts = httptest.NewServer(web.New(h.hub, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(h.ts.Close)
	return h
}

func (h *harness) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.at
}

// step moves the clock on: changes made one after another are not ties (rule 1).
func (h *harness) step(d time.Duration) {
	h.mu.Lock()
	h.at = h.at.Add(d)
	h.mu.Unlock()
}

// contact creates a contact by an opt-in to the newsletter and returns its id.
func (h *harness) contact(email string) string {
	h.t.Helper()
	res, err := h.hub.Ingest(context.Background(), []prefsync.EventInput{{Subject: prefsync.Subject{Email: email},
		Channel: "email", Topic: "newsletter", State: prefsync.OptedIn, Evidence: prefsync.Evidence{Method: prefsync.Explicit},
		Source: prefsync.Source{System: "web", Touchpoint: prefsync.API}}}, "web")
	if err != nil {
		h.t.Fatal(err)
	}
	return res[0].ContactID
}

func (h *harness) allowed(email, channel, topic string) (bool, string) {
	h.t.Helper()
	q, err := h.hub.Dict.Query(channel, topic)
	if err != nil {
		h.t.Fatal(err)
	}
	d, err := h.hub.Check(&q, &prefsync.Subject{Email: email}, h.hub.Now().Unix())
	if err != nil {
		h.t.Fatal(err)
	}
	return d.Allowed, d.Reason
}

func (h *harness) history(id string) []prefsync.AuditEntry {
	h.t.Helper()
	es, err := h.hub.Store.History(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return es
}

// send makes a request without following redirects: one-click must not redirect.
func (h *harness) send(req *http.Request) (int, string, http.Header) {
	h.t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body), res.Header
}

func (h *harness) postForm(path string, form url.Values) (int, string) {
	req, _ := http.NewRequest("POST", h.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Mozilla/5.0 (mail client)")
	code, body, _ := h.send(req)
	return code, body
}

func TestOneClickUnsubscribe(t *testing.T) {
	h := newHarness(t)
	id := h.contact("ana@example.com")
	news := prefsync.Scope{Channel: "email", Topic: "newsletter"}
	token, err := h.hub.UnsubscribeToken(context.Background(), id, news)
	if err != nil {
		t.Fatal(err)
	}
	path := "/u/" + token

	t.Run("GetChangesNothing", func(t *testing.T) {
		req, _ := http.NewRequest("GET", h.ts.URL+path, nil)
		code, body, hdr := h.send(req)
		if code != 200 || !strings.Contains(body, "a•••@example.com") || !strings.Contains(body, `method="post"`) {
			t.Errorf("GET = %d %s", code, body)
		}
		if hdr.Get("Referrer-Policy") != "no-referrer" || hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("headers = %v", hdr)
		}
		if n := len(h.history(id)); n != 1 {
			t.Errorf("history after GET has %d entries, want 1", n)
		}
	})
	t.Run("Post", func(t *testing.T) {
		code, body := h.postForm(path, url.Values{"List-Unsubscribe": {"One-Click"}})
		if code != 200 || !strings.Contains(body, "no longer receive") {
			t.Fatalf("POST = %d %s", code, body)
		}
		hist := h.history(id)
		last := hist[len(hist)-1]
		if len(hist) != 2 || last.State != prefsync.OptedOut || last.Topic != "newsletter" ||
			last.Source.Touchpoint != prefsync.OneClick || last.Evidence.Method != prefsync.Explicit ||
			last.Evidence.IP != "127.0.0.1" || last.Evidence.UserAgent != "Mozilla/5.0 (mail client)" {
			t.Errorf("recorded %+v", last)
		}
		q, _ := h.hub.Dict.Query("email", "newsletter")
		d, _ := h.hub.Check(&q, &prefsync.Subject{Email: "ana@example.com"}, h.hub.Now().Unix())
		if d.Allowed {
			t.Errorf("newsletter still allowed after one-click: %+v", d)
		}
	})
	t.Run("Idempotent", func(t *testing.T) {
		code, _ := h.postForm(path, url.Values{"List-Unsubscribe": {"One-Click"}})
		if code != 200 || len(h.history(id)) != 2 {
			t.Errorf("second POST = %d, history %d entries", code, len(h.history(id)))
		}
	})
	t.Run("Multipart", func(t *testing.T) {
		other := h.contact("bo@example.com")
		tok, _ := h.hub.UnsubscribeToken(context.Background(), other, prefsync.Scope{Channel: "email", Topic: "*"})
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.WriteField("List-Unsubscribe", "One-Click")
		mw.Close()
		req, _ := http.NewRequest("POST", h.ts.URL+"/u/"+tok, &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		if code, body, _ := h.send(req); code != 200 {
			t.Fatalf("multipart POST = %d %s", code, body)
		}
		if hist := h.history(other); len(hist) != 2 || hist[1].Topic != "*" {
			t.Errorf("history = %+v", hist)
		}
	})
	t.Run("ConfirmationButton", func(t *testing.T) {
		other := h.contact("cy@example.com")
		tok, _ := h.hub.UnsubscribeToken(context.Background(), other, news)
		if code, _ := h.postForm("/u/"+tok, url.Values{"List-Unsubscribe": {"One-Click"}, "via": {"page"}}); code != 200 {
			t.Fatal(code)
		}
		if hist := h.history(other); len(hist) != 2 || hist[1].Source.Touchpoint != prefsync.EmailLink {
			t.Errorf("history = %+v", hist)
		}
	})
}

// The unsubscribe pages speak the contact's language, or before a link is read, the
// browser's.
func TestUnsubscribePagesInTheContactsLanguage(t *testing.T) {
	h := newHarness(t)
	de := "de"
	c, err := h.hub.UpsertContact(context.Background(), prefsync.ContactInput{Email: "jonas@example.com", Locale: &de})
	if err != nil {
		t.Fatal(err)
	}
	token, _ := h.hub.UnsubscribeToken(context.Background(), c.ID, prefsync.Scope{Channel: "email", Topic: prefsync.Any})
	req, _ := http.NewRequest("GET", h.ts.URL+"/u/"+token, nil)
	req.Header.Set("Accept-Language", "fr")
	if code, body, _ := h.send(req); code != 200 || !strings.Contains(body, `<html lang="de">`) ||
		!strings.Contains(body, "Nicht mehr <strong>alles per E-Mail</strong> an <strong>j•••@example.com</strong> senden?") ||
		!strings.Contains(body, ">Abmelden</button>") {
		t.Errorf("GET = %d %s", code, body)
	}
	if code, body := h.postForm("/u/"+token, url.Values{"List-Unsubscribe": {"One-Click"}}); code != 200 ||
		!strings.Contains(body, "Sie sind abgemeldet") || !strings.Contains(body, "Gespeichert am 2026-11-02 09:00 UTC.") {
		t.Errorf("POST = %d %s", code, body)
	}
	req, _ = http.NewRequest("GET", h.ts.URL+"/u/not-a-token", nil)
	req.Header.Set("Accept-Language", "fr-CH")
	if code, body, _ := h.send(req); code != 404 || !strings.Contains(body, `<html lang="fr">`) || !strings.Contains(body, "Ce lien n’est pas valide") {
		t.Errorf("GET of a bad link, in French = %d %s", code, body)
	}
	req, _ = http.NewRequest("GET", h.ts.URL+"/u/not-a-token", nil)
	req.Header.Set("Accept-Language", "de,en-US;q=0.9,en;q=0.8") // Chrome set to German
	if code, body, _ := h.send(req); code != 404 || !strings.Contains(body, "Dieser Link ist ungültig") {
		t.Errorf("GET of a bad link, in German = %d %s", code, body)
	}

	// The preference page's errors are its own, in the contact's language: a form from
	// an old page is refused in German, under the page's title.
	ptoken, _, _ := h.hub.PreferenceToken(context.Background(), c.ID, time.Hour)
	if code, body := h.postForm("/p/"+ptoken, url.Values{"csrf": {"stale"}, "action": {"all_off"}}); code != 403 ||
		!strings.Contains(body, "<h1>Ihre E-Mail- und Nachrichteneinstellungen</h1>") || !strings.Contains(body, "Dieses Formular ist veraltet") {
		t.Errorf("stale form = %d %s", code, body)
	}
	// A message in English, as the hub's own are, says so on a German page.
	req, _ = http.NewRequest("POST", h.ts.URL+"/p/"+ptoken, strings.NewReader("csrf=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, body, _ := h.send(req); code != 400 || !strings.Contains(body, `<html lang="de">`) || !strings.Contains(body, `<p lang="en">the form does not read</p>`) {
		t.Errorf("an English message on a German page = %d %s", code, body)
	}
}

func TestBadUnsubscribeRequests(t *testing.T) {
	h := newHarness(t)
	id := h.contact("ana@example.com")
	token, _ := h.hub.UnsubscribeToken(context.Background(), id, prefsync.Scope{Channel: "email", Topic: "newsletter"})
	tampered := []byte(token)
	tampered[len(tampered)/2] ^= 1 // a letter of the base64 changes case or value
	for _, tc := range []struct {
		name, path string
		form       url.Values
		want       int
	}{
		{"Tampered", "/u/" + string(tampered), url.Values{"List-Unsubscribe": {"One-Click"}}, 404},
		{"Garbage", "/u/not-a-token", url.Values{"List-Unsubscribe": {"One-Click"}}, 404},
		{"NoOneClick", "/u/" + token, url.Values{"List-Unsubscribe": {"Yes"}}, 400},
		{"EmptyBody", "/u/" + token, url.Values{}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := h.postForm(tc.path, tc.form); code != tc.want {
				t.Errorf("POST = %d, want %d", code, tc.want)
			}
			if n := len(h.history(id)); n != 1 {
				t.Errorf("history has %d entries after a refused request", n)
			}
		})
	}
	req, _ := http.NewRequest("GET", h.ts.URL+"/u/"+string(tampered), nil)
	if code, body, _ := h.send(req); code != 404 || !strings.Contains(body, "not valid") {
		t.Errorf("GET of a tampered link = %d %s", code, body)
	}
}
