package web

import (
	"context"
	"net/http"
	"sync"
	"time"

	"prefsync"
)

// Mailer sends mail: the preference links people ask for, and confirmations.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// limiter allows each key a number of uses in a window, in memory.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	uses   map[string][]time.Time
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, uses: map[string][]time.Time{}}
}

// allow records a use of key at now and reports whether it is within the limit.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.uses[key][:0]
	for _, t := range l.uses[key] {
		if now.Sub(t) < l.window {
			recent = append(recent, t)
		}
	}
	if len(recent) >= l.max {
		l.uses[key] = recent
		return false
	}
	l.uses[key] = append(recent, now)
	if len(l.uses) > 100_000 { // bounded memory: forget those whose window has passed
		for k, ts := range l.uses {
			if now.Sub(ts[len(ts)-1]) >= l.window {
				delete(l.uses, k)
			}
		}
	}
	return true
}

type requestView struct {
	Lang  string
	T     map[string]string
	Brand Brand
	Sent  bool
}

// handleRequestPage shows the form where a person without a link asks for one.
func (p *Pages) handleRequestPage(w http.ResponseWriter, r *http.Request) {
	if p.Mailer == nil {
		p.failWith(w, r, requestPage, nil, http.StatusNotFound, "no_page")
		return
	}
	p.renderRequest(w, r, false)
}

func (p *Pages) renderRequest(w http.ResponseWriter, r *http.Request, sent bool) {
	lang := browserLanguage(r.Header.Get("Accept-Language"))
	v := requestView{Lang: lang, T: messages[lang], Brand: p.brand(), Sent: sent}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, "request", v); err != nil {
		p.Logger.Error("render request page", "err", err)
	}
}

// handleRequest mails a link to the address if it is a contact's. The answer is the
// same whether or not it is, and comes before the mail is sent, so neither its words
// nor its timing tell who is known. Requests are limited per address and per client.
func (p *Pages) handleRequest(w http.ResponseWriter, r *http.Request) {
	if p.Mailer == nil {
		p.failWith(w, r, requestPage, nil, http.StatusNotFound, "no_page")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, requestPage, nil, prefsync.FieldErrorf("email", "the form does not read"))
		return
	}
	now := p.Hub.Now()
	email, err := p.Hub.Normalizer.Email(r.PostForm.Get("email"))
	if err != nil {
		p.failWith(w, r, requestPage, nil, http.StatusBadRequest, "not_an_email")
		return
	}
	if !p.byClient.allow(clientKey(clientIP(r, p.TrustedProxies)), now) || !p.byAddress.allow(email, now) {
		w.Header().Set("Retry-After", "600")
		p.failWith(w, r, requestPage, nil, http.StatusTooManyRequests, "too_many")
		return
	}
	go p.mailLink(email)
	p.renderRequest(w, r, true)
}

// mailLink sends a preference link to the contact an address finds, if any.
func (p *Pages) mailLink(email string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := p.Hub.Store.FindContact(ctx, prefsync.ContactFilter{Email: &email})
	if err != nil {
		if prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
			p.Logger.Error("preference link request", "err", err)
		}
		return
	}
	token, exp, err := p.Hub.PreferenceToken(ctx, c.ID, p.PreferenceLinkTTL)
	if err != nil {
		p.Logger.Error("preference link request", "err", err)
		return
	}
	lang := language(c.Locale)
	body := text(lang, "mail_link_body", PreferenceURL(p.PublicURL, token), exp.Format(dateFormat))
	if err := p.Mailer.Send(ctx, email, text(lang, "mail_link_subject"), body); err != nil {
		p.Logger.Error("send preference link", "err", err)
	}
}

// confirm mails the contact that their preferences changed, with a fresh link.
func (p *Pages) confirm(c *prefsync.Contact) {
	if p.Mailer == nil || !p.ConfirmChanges || len(c.Emails) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		token, _, err := p.Hub.PreferenceToken(ctx, c.ID, p.PreferenceLinkTTL)
		if err != nil {
			p.Logger.Error("confirmation", "err", err)
			return
		}
		lang := language(c.Locale)
		body := text(lang, "mail_changed_body", p.Hub.Now().UTC().Format(dateFormat), PreferenceURL(p.PublicURL, token))
		if err := p.Mailer.Send(ctx, c.Emails[0], text(lang, "mail_changed_subject"), body); err != nil {
			p.Logger.Error("send confirmation", "err", err)
		}
	}()
}
