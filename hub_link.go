package prefsync

import "context"

// SystemPrefsync is the source system of changes prefsync records itself: a one-click
// unsubscribe, a change on the preference page.
const SystemPrefsync = "prefsync"

// UnsubscribeToken returns the signed token of a one-click unsubscribe link from scope
// for a contact. It does not expire: mail is read, and its links followed, long after
// it is sent.
func (h *Hub) UnsubscribeToken(ctx context.Context, contactID string, scope Scope) (string, error) {
	if err := h.Dict.ValidateScope(scope); err != nil {
		return "", err
	}
	c, err := h.Store.FindContact(ctx, ContactFilter{ID: &contactID})
	if err != nil {
		return "", err
	}
	return h.Links.Sign(Link{Purpose: LinkUnsubscribe, ContactID: c.ID, Scope: scope}), nil
}

// UnsubscribeLink returns what an unsubscribe token grants and the contact it names, or
// ErrBadLink. It changes nothing: link scanners fetch links before people do.
func (h *Hub) UnsubscribeLink(ctx context.Context, token string) (Link, *Contact, error) {
	l, err := h.Links.Verify(token, h.Now())
	if err != nil || l.Purpose != LinkUnsubscribe {
		return Link{}, nil, ErrBadLink
	}
	c, err := h.Store.FindContact(ctx, ContactFilter{ID: &l.ContactID})
	if ErrorCode(err) == ENOTFOUND {
		return Link{}, nil, ErrBadLink
	}
	return l, c, err
}

// Unsubscribe opts the contact of an unsubscribe token out of its scope, with the
// request's evidence. It is idempotent: when the contact is already opted out of that
// scope, nothing is written (a mail provider's retry, a second click). It returns what
// the token grants and the contact as it then stands.
func (h *Hub) Unsubscribe(ctx context.Context, token string, ev Evidence, touchpoint Touchpoint) (Link, *Contact, error) {
	l, c, err := h.UnsubscribeLink(ctx, token)
	if err != nil {
		return Link{}, nil, err
	}
	if s := c.State.Find(l.Scope); s != nil && s.State == OptedOut {
		return l, c, nil
	}
	ev.Method = Explicit
	if _, err := h.Ingest(ctx, []EventInput{{
		Subject: Subject{ContactID: c.ID}, Channel: l.Scope.Channel, Topic: l.Scope.Topic, State: OptedOut,
		Source: Source{System: SystemPrefsync, Touchpoint: touchpoint}, Evidence: ev,
	}}, SystemPrefsync); err != nil {
		return Link{}, nil, err
	}
	c, err = h.Store.FindContact(ctx, ContactFilter{ID: &c.ID})
	return l, c, err
}
