package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"prefsync"
)

// Brand is how the pages look: the company's name, logo, colour, footer and privacy
// link.
type Brand struct {
	Name       string
	LogoURL    string
	Color      string
	Footer     string
	PrivacyURL string
}

// channelReach is what identifier makes a channel reachable.
var channelReach = map[string]string{"email": prefsync.IdentifierEmail, "sms": prefsync.IdentifierPhone,
	"whatsapp": prefsync.IdentifierPhone, "voice": prefsync.IdentifierPhone}

type prefView struct {
	Lang     string
	T        map[string]string
	Brand    Brand
	CSRF     string
	Saved    string
	GPC      bool
	Paused   string
	Channels []channelView
	Pauses   []pauseView
	History  []historyView
}

type channelView struct {
	Name, Label, OffLabel string
	Topics                []topicView
}

type topicView struct {
	ID, Key, Label, Frequency, Why string
	On, Fixed                      bool
}

type pauseView struct {
	Weeks int
	Label string
}

type historyView struct {
	ISO, When, What string
}

const dateFormat = "2006-01-02 15:04 UTC"

// view builds the page of a contact in lang.
func (p *Pages) view(ctx context.Context, c *prefsync.Contact, lang string) (*prefView, error) {
	d := p.Hub.Dict
	v := &prefView{Lang: lang, T: messages[lang], Brand: p.brand()}
	csrf := p.Hub.Links.Sign(prefsync.Link{Purpose: prefsync.LinkForm, ContactID: c.ID, Expires: p.Hub.Now().Add(12 * time.Hour)})
	v.CSRF = csrf
	has := map[string]bool{prefsync.IdentifierEmail: len(c.Emails) > 0, prefsync.IdentifierPhone: len(c.Phones) > 0}
	for _, ch := range d.Channels {
		if !has[channelReach[ch.Name]] {
			continue
		}
		label := described(ch.Descriptions, lang, ch.Name)
		cv := channelView{Name: ch.Name, Label: label, OffLabel: text(lang, "channel_off", strings.ToLower(label))}
		for _, t := range d.Topics {
			s := prefsync.Scope{Channel: ch.Name, Topic: t.Name}
			if d.ValidateScope(s) != nil {
				continue
			}
			choice := d.ChoiceOf(c, s, p.Hub.Now())
			tv := topicView{ID: ch.Name + "-" + t.Name, Key: ch.Name + ":" + t.Name, Label: described(t.Descriptions, lang, t.Name),
				On: choice.On, Fixed: choice.Fixed}
			if f := described(t.Frequency, lang, ""); f != "" {
				tv.Frequency = text(lang, "frequency", f)
			}
			// An address that is suppressed (a hard bounce, a complaint) gets nothing, whatever
			// was chosen: the page says so, and offers no switch (saving it would write
			// choices the person did not make).
			if reason, ok := p.suppressed(c, s); ok {
				tv.On, tv.Fixed, tv.Why = false, true, text(lang, "why_suppressed", strings.ReplaceAll(reason, "_", " "))
				cv.Topics = append(cv.Topics, tv)
				continue
			}
			switch {
			case choice.Fixed:
				tv.Why = text(lang, "always")
			case !choice.On && choice.Decider != nil:
				tv.Why = text(lang, "why_out", p.scopeText(lang, choice.Decider.Scope()), choice.Decider.OccurredAt.UTC().Format(dateFormat))
			case choice.On && choice.Decider != nil && choice.Decider.Method == prefsync.Explicit:
				tv.Why = text(lang, "why_in", choice.Decider.OccurredAt.UTC().Format(dateFormat))
			case !choice.On:
				tv.Why = text(lang, "why_consent")
			}
			cv.Topics = append(cv.Topics, tv)
		}
		v.Channels = append(v.Channels, cv)
	}
	for _, w := range []int{2, 4, 12} {
		v.Pauses = append(v.Pauses, pauseView{Weeks: w, Label: text(lang, "weeks", w)})
	}
	now := p.Hub.Now()
	for _, pa := range c.State.Pauses {
		if pa.Channel == prefsync.Any && pa.Until.After(now) {
			v.Paused = text(lang, "paused", pa.Until.UTC().Format(dateFormat))
		}
	}
	hist, err := p.Hub.Store.History(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	for i := len(hist) - 1; i >= 0 && len(v.History) < 10; i-- {
		e := hist[i]
		if e.Status != prefsync.Applied || e.Kind != prefsync.KindEvent {
			continue
		}
		what := text(lang, "state_pause")
		if e.State != "" {
			what = text(lang, "state_"+string(e.State))
		}
		v.History = append(v.History, historyView{ISO: e.OccurredAt.UTC().Format(time.RFC3339), When: e.OccurredAt.UTC().Format(dateFormat),
			What: fmt.Sprintf("%s %s (%s, %s)", p.scopeText(lang, prefsync.Scope{Channel: e.Channel, Topic: e.Topic}), what, e.Source.Touchpoint, e.Source.System)})
	}
	return v, nil
}

// suppressed reports whether the contact's address for s's channel is suppressed, and
// why.
func (p *Pages) suppressed(c *prefsync.Contact, s prefsync.Scope) (string, bool) {
	q, err := p.Hub.Dict.Query(s.Channel, s.Topic)
	if err != nil {
		return "", false
	}
	dec := p.Hub.Index.Check(&q, &prefsync.Subject{ContactID: c.ID}, p.Hub.Now().Unix())
	return strings.CutPrefix(dec.Reason, prefsync.ReasonSuppressed)
}

// brand is the configured brand, with the default colour.
func (p *Pages) brand() Brand {
	b := p.Brand
	if b.Color == "" {
		b.Color = "#1d4ed8"
	}
	return b
}

// scopeText names a scope for people, in lang.
func (p *Pages) scopeText(lang string, s prefsync.Scope) string {
	d := p.Hub.Dict
	channel, topic := s.Channel, s.Topic
	for _, c := range d.Channels {
		if c.Name == s.Channel {
			channel = inSentence(lang, described(c.Descriptions, lang, c.Name))
		}
	}
	for _, t := range d.Topics {
		if t.Name == s.Topic {
			topic = described(t.Descriptions, lang, t.Name)
		}
	}
	switch {
	case s.Channel == prefsync.Any && s.Topic == prefsync.Any:
		return text(lang, "scope_all")
	case s.Topic == prefsync.Any:
		return text(lang, "scope_channel", channel)
	case s.Channel == prefsync.Any:
		return text(lang, "scope_topic", topic)
	}
	return topic + " (" + channel + ")"
}

// handlePreferences shows a contact's preference page. Viewing changes nothing, unless
// the browser sends Global Privacy Control (Sec-GPC: 1): that is the person's choice,
// recorded as an opt-out of the ads channel.
func (p *Pages) handlePreferences(w http.ResponseWriter, r *http.Request) {
	c, err := p.Hub.PreferenceContact(r.Context(), r.PathValue("token"))
	if err != nil {
		p.fail(w, r, preferencePage, nil, err)
		return
	}
	if c, err = p.honourGPC(r, c); err != nil {
		p.fail(w, r, preferencePage, c, err)
		return
	}
	p.renderPreferences(w, r, c, "")
}

func (p *Pages) renderPreferences(w http.ResponseWriter, r *http.Request, c *prefsync.Contact, saved string) {
	v, err := p.view(r.Context(), c, pageLanguage(r, c))
	if err != nil {
		p.fail(w, r, preferencePage, c, err)
		return
	}
	v.Saved, v.GPC = saved, r.Header.Get("Sec-GPC") == "1"
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, "preferences", v); err != nil {
		p.Logger.Error("render preferences", "err", err)
	}
}

// honourGPC records a Global Privacy Control signal as an opt-out of ads, once.
func (p *Pages) honourGPC(r *http.Request, c *prefsync.Contact) (*prefsync.Contact, error) {
	ads := prefsync.Scope{Channel: "ads", Topic: prefsync.Any}
	if r.Header.Get("Sec-GPC") != "1" || p.Hub.Dict.ValidateScope(ads) != nil {
		return c, nil
	}
	if s := c.State.Find(ads); s != nil && s.State == prefsync.OptedOut {
		return c, nil
	}
	ev := p.event(r, c, prefsync.EventInput{Channel: ads.Channel, Topic: ads.Topic, State: prefsync.OptedOut, Reason: "Global Privacy Control (Sec-GPC: 1)"})
	return p.apply(r, c, []prefsync.EventInput{ev})
}

// event completes an event made on the page: its subject, source and evidence.
func (p *Pages) event(r *http.Request, c *prefsync.Contact, ev prefsync.EventInput) prefsync.EventInput {
	ev.Subject = prefsync.Subject{ContactID: c.ID}
	ev.Source = prefsync.Source{System: prefsync.SystemPrefsync, Touchpoint: prefsync.PreferenceCenter}
	ev.Evidence = prefsync.Evidence{Method: prefsync.Explicit, IP: clientIP(r, p.TrustedProxies), UserAgent: r.UserAgent()}
	return ev
}

// apply records events and returns the contact as they left it.
func (p *Pages) apply(r *http.Request, c *prefsync.Contact, evs []prefsync.EventInput) (*prefsync.Contact, error) {
	if len(evs) == 0 {
		return c, nil
	}
	if _, err := p.Hub.Ingest(r.Context(), evs, prefsync.SystemPrefsync); err != nil {
		return nil, err
	}
	return p.Hub.Store.FindContact(r.Context(), prefsync.ContactFilter{ID: &c.ID})
}

// handleSavePreferences takes the page's form: the choices (save), or one of the
// buttons (everything off, a channel off, a pause, resume). It answers the page again
// with the time it saved, or JSON for the script that saves on each change.
func (p *Pages) handleSavePreferences(w http.ResponseWriter, r *http.Request) {
	c, err := p.Hub.PreferenceContact(r.Context(), r.PathValue("token"))
	if err != nil {
		p.fail(w, r, preferencePage, nil, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, preferencePage, c, prefsync.FieldErrorf("form", "the form does not read"))
		return
	}
	// The form token proves the form came from this contact's page, and a browser that
	// says the request is from another site is refused whatever it carries.
	site := r.Header.Get("Sec-Fetch-Site")
	l, err := p.Hub.Links.Verify(r.PostForm.Get("csrf"), p.Hub.Now())
	if err != nil || l.Purpose != prefsync.LinkForm || l.ContactID != c.ID || (site != "" && site != "same-origin" && site != "none") {
		p.failWith(w, r, preferencePage, c, http.StatusForbidden, "form_stale")
		return
	}
	var evs []prefsync.EventInput
	action := r.PostForm.Get("action")
	now := p.Hub.Now().UTC()
	switch {
	case action == "save" || action == "":
		want := map[prefsync.Scope]bool{}
		for _, key := range r.PostForm["shown"] {
			ch, t, _ := strings.Cut(key, ":")
			want[prefsync.Scope{Channel: ch, Topic: t}] = false
		}
		for _, key := range r.PostForm["on"] {
			ch, t, _ := strings.Cut(key, ":")
			want[prefsync.Scope{Channel: ch, Topic: t}] = true
		}
		// Only switches the page offers count: not made-up scopes, not transactional
		// topics, not a suppressed address's.
		for s := range want {
			if p.Hub.Dict.ValidateScope(s) != nil || s.Channel == prefsync.Any || s.Topic == prefsync.Any ||
				p.Hub.Dict.TopicKind(s.Topic) == prefsync.Transactional {
				delete(want, s)
			} else if _, suppressed := p.suppressed(c, s); suppressed {
				delete(want, s)
			}
		}
		evs = p.Hub.Dict.PreferenceEvents(c, want, now)
	case action == "all_off":
		evs = []prefsync.EventInput{{Channel: prefsync.Any, Topic: prefsync.Any, State: prefsync.OptedOut}}
	case strings.HasPrefix(action, "off:"):
		evs = []prefsync.EventInput{{Channel: strings.TrimPrefix(action, "off:"), Topic: prefsync.Any, State: prefsync.OptedOut}}
	case strings.HasPrefix(action, "pause:"):
		weeks, err := strconv.Atoi(strings.TrimPrefix(action, "pause:"))
		if err != nil || (weeks != 2 && weeks != 4 && weeks != 12) {
			p.fail(w, r, preferencePage, c, prefsync.FieldErrorf("action", "a pause is for 2, 4 or 12 weeks"))
			return
		}
		evs = []prefsync.EventInput{{Channel: prefsync.Any, Topic: prefsync.Any, PausedUntil: now.Add(time.Duration(weeks) * 7 * 24 * time.Hour).Format(time.RFC3339)}}
	case action == "resume":
		evs = []prefsync.EventInput{{Channel: prefsync.Any, Topic: prefsync.Any, PausedUntil: now.Format(time.RFC3339)}}
	default:
		p.fail(w, r, preferencePage, c, prefsync.FieldErrorf("action", "unknown action"))
		return
	}
	for i := range evs {
		evs[i] = p.event(r, c, evs[i])
	}
	if c, err = p.apply(r, c, evs); err != nil {
		p.fail(w, r, preferencePage, c, err)
		return
	}
	if len(evs) > 0 {
		p.confirm(c)
	}
	saved := text(pageLanguage(r, c), "saved", now.Format(dateFormat))
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"saved_at": now, "message": saved, "changes": len(evs)})
		return
	}
	p.renderPreferences(w, r, c, saved)
}
