// Package web serves the pages a contact sees, reached by signed links without a login:
// the one-click unsubscribe's confirmation and result, the preference page, and the form
// where a person without a link asks for one.
package web

import (
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"prefsync"
	prefhttp "prefsync/http"
)

//go:embed template/*.html
var templates embed.FS

//go:embed assets
var assets embed.FS

var pages = template.Must(template.ParseFS(templates, "template/*.html"))

// Pages serves the contact-facing pages of a hub.
type Pages struct {
	Hub    *prefsync.Hub
	Logger *slog.Logger
	Brand  Brand
	// PreferenceLinkTTL is how long the links to the preference page that pages show last.
	PreferenceLinkTTL time.Duration
	// Mailer, when set, sends the links people ask for on /p, and, with
	// ConfirmChanges, a confirmation of each change; PublicURL builds their links.
	Mailer         Mailer
	ConfirmChanges bool
	PublicURL      string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client;
	// without them, the client is whoever connected.
	TrustedProxies []netip.Prefix

	mux                 *http.ServeMux
	byClient, byAddress *limiter
}

// New returns the pages with their routes registered.
func New(hub *prefsync.Hub, logger *slog.Logger) *Pages {
	p := &Pages{Hub: hub, Logger: logger, PreferenceLinkTTL: 30 * 24 * time.Hour, mux: http.NewServeMux(),
		byClient: newLimiter(10, time.Hour), byAddress: newLimiter(3, time.Hour)}
	p.mux.HandleFunc("GET /u/{token}", p.handleUnsubscribePage)
	p.mux.HandleFunc("POST /u/{token}", p.handleUnsubscribe)
	p.mux.HandleFunc("GET /p", p.handleRequestPage)
	p.mux.HandleFunc("POST /p", p.handleRequest)
	p.mux.HandleFunc("GET /p/{token}", p.handlePreferences)
	p.mux.HandleFunc("POST /p/{token}", p.handleSavePreferences)
	p.mux.Handle("GET /assets/", http.FileServerFS(assets))
	return p
}

// ServeHTTP implements http.Handler.
func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The token in the URL must not leak to other sites, caches or search engines.
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Robots-Tag", "noindex")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; img-src https: data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	p.mux.ServeHTTP(w, r)
}

// UnsubscribeURL is the URL of an unsubscribe token under the hub's public URL.
func UnsubscribeURL(publicURL, token string) string {
	return strings.TrimRight(publicURL, "/") + "/u/" + token
}

// PreferenceURL is the URL of a preference page token under the hub's public URL.
func PreferenceURL(publicURL, token string) string {
	return strings.TrimRight(publicURL, "/") + "/p/" + token
}

// view is what the page template shows.
type view struct {
	Kind  string // confirm, done or error
	Lang  string
	Title string
	// Lead is the page's sentence, with what and whom it is about in bold.
	Lead    template.HTML
	Button  string
	Note    string
	Message string
	// MessageLang is the message's language when it is not the page's: the hub's own
	// messages are in English.
	MessageLang string
	// Preferences links to the contact's preference page, under LinkText.
	Preferences string
	LinkText    string
}

func (p *Pages) render(w http.ResponseWriter, status int, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, "page", v); err != nil {
		p.Logger.Error("render page", "err", err)
	}
}

// pageLanguage is the language of a page about contact c (nil before the link is
// read): the contact's, or else the browser's.
func pageLanguage(r *http.Request, c *prefsync.Contact) string {
	if c != nil {
		if l, ok := shipped(c.Locale); ok {
			return l
		}
	}
	return browserLanguage(r.Header.Get("Accept-Language"))
}

// lead is a message of lang with its arguments in bold. (A message with a literal %
// writes it %%, as for any message with arguments.)
func lead(lang, key string, args ...string) template.HTML {
	bold := make([]any, len(args))
	for i, a := range args {
		bold[i] = "<strong>" + template.HTMLEscapeString(a) + "</strong>"
	}
	return template.HTML(fmt.Sprintf(template.HTMLEscapeString(text(lang, key)), bold...))
}

// page is what an error page stands in for: its title, and what it says of a link that
// does not read.
type page struct{ title, badLink string }

var (
	unsubscribePage = page{"unsub_title", "unsub_bad_link"}
	preferencePage  = page{"title", "bad_link"}
	requestPage     = page{"title", "no_page"}
)

// fail answers an error page for pg, in the language of contact c (nil when unknown).
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, pg page, c *prefsync.Contact, err error) {
	switch status := prefhttp.StatusOf(err); prefsync.ErrorCode(err) {
	case prefsync.ENOTFOUND:
		p.failWith(w, r, pg, c, status, pg.badLink)
	case prefsync.EINVALID, prefsync.ETOOLARGE, prefsync.EFORBIDDEN, prefsync.ETOOMANY:
		lang := pageLanguage(r, c)
		v := view{Kind: "error", Lang: lang, Title: text(lang, pg.title), Message: prefsync.ErrorMessage(err)}
		if lang != "en" {
			v.MessageLang = "en"
		}
		p.render(w, status, v)
	default:
		p.Logger.Error("page", "err", err)
		p.failWith(w, r, pg, c, status, "server_error")
	}
}

// failWith answers an error page for pg with one of the pages' own messages.
func (p *Pages) failWith(w http.ResponseWriter, r *http.Request, pg page, c *prefsync.Contact, status int, key string) {
	lang := pageLanguage(r, c)
	p.render(w, status, view{Kind: "error", Lang: lang, Title: text(lang, pg.title), Message: text(lang, key)})
}

// handleUnsubscribePage shows what the link would do. It never changes anything: mail
// scanners and link previews fetch links nobody clicked.
func (p *Pages) handleUnsubscribePage(w http.ResponseWriter, r *http.Request) {
	l, c, err := p.Hub.UnsubscribeLink(r.Context(), r.PathValue("token"))
	if err != nil {
		p.fail(w, r, unsubscribePage, nil, err)
		return
	}
	lang := pageLanguage(r, c)
	p.render(w, http.StatusOK, view{Kind: "confirm", Lang: lang, Title: text(lang, "unsub_title"),
		Lead:   lead(lang, "unsub_confirm", p.scopeText(lang, l.Scope), maskedAddress(c, l.Scope)),
		Button: text(lang, "unsub_button"), Note: text(lang, "unsub_nothing_yet"),
		Preferences: p.preferencesPath(r, c), LinkText: text(lang, "unsub_instead")})
}

// handleUnsubscribe is RFC 8058's one-click unsubscribe: a POST whose form body holds
// List-Unsubscribe=One-Click, sent by a mail client, or by the confirmation page's
// button. It answers 200 with a page, never a redirect.
func (p *Pages) handleUnsubscribe(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(64 << 10)
	} else {
		err = r.ParseForm()
	}
	if err != nil || r.PostForm.Get("List-Unsubscribe") != "One-Click" {
		p.fail(w, r, unsubscribePage, nil, prefsync.FieldErrorf("List-Unsubscribe", "This is not a one-click unsubscribe request (RFC 8058): the form must hold List-Unsubscribe=One-Click. Nothing was changed."))
		return
	}
	touchpoint := prefsync.OneClick
	if r.PostForm.Get("via") == "page" {
		touchpoint = prefsync.EmailLink
	}
	ev := prefsync.Evidence{IP: clientIP(r, p.TrustedProxies), UserAgent: r.UserAgent()}
	l, c, err := p.Hub.Unsubscribe(r.Context(), r.PathValue("token"), ev, touchpoint)
	if err != nil {
		p.fail(w, r, unsubscribePage, nil, err)
		return
	}
	at := p.Hub.Now().UTC()
	if s := c.State.Find(l.Scope); s != nil {
		at = s.OccurredAt
	}
	lang := pageLanguage(r, c)
	p.render(w, http.StatusOK, view{Kind: "done", Lang: lang, Title: text(lang, "unsub_done_title"),
		Lead:        lead(lang, "unsub_done", p.scopeText(lang, l.Scope), maskedAddress(c, l.Scope)),
		Note:        text(lang, "unsub_recorded", at.UTC().Format(dateFormat)),
		Preferences: p.preferencesPath(r, c), LinkText: text(lang, "unsub_all_choices")})
}

// preferencesPath is the path of a fresh link to the contact's preference page.
func (p *Pages) preferencesPath(r *http.Request, c *prefsync.Contact) string {
	token, _, err := p.Hub.PreferenceToken(r.Context(), c.ID, p.PreferenceLinkTTL)
	if err != nil {
		return ""
	}
	return "/p/" + token
}

// maskedAddress shows enough of the contact's address for its owner to recognise it,
// and not all of it to whoever holds a forwarded link: "a•••@example.com".
func maskedAddress(c *prefsync.Contact, s prefsync.Scope) string {
	addr := ""
	switch {
	case len(c.Emails) > 0 && (s.Channel == "email" || s.Channel == prefsync.Any || len(c.Phones) == 0):
		addr = c.Emails[0]
		if local, domain, ok := strings.Cut(addr, "@"); ok && len(local) > 0 {
			_, first := utf8.DecodeRuneInString(local)
			return local[:first] + "•••@" + domain
		}
	case len(c.Phones) > 0:
		addr = c.Phones[0]
		if len(addr) > 4 {
			return "•••" + addr[len(addr)-4:]
		}
	}
	if addr == "" {
		return "your address"
	}
	return addr
}
