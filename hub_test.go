package prefsync_test

import (
	"context"
	"testing"
	"time"

	"prefsync"
	"prefsync/hubtest"
)

// checkReason is the reason of the hub's decision on topic by email for subject.
func checkReason(t *testing.T, h *prefsync.Hub, subject prefsync.Subject, topic string) string {
	t.Helper()
	q, err := h.Dict.Query("email", topic)
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.Check(&q, &subject, time.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	return d.Reason
}

// A report of an address no contact has makes no contact, and checks by the address see
// the suppression at once.
func TestSuppressUnknownAddress(t *testing.T) {
	ctx := context.Background()
	h := hubtest.New(t, time.Now)
	if _, err := h.Suppress(ctx, prefsync.Suppression{Address: "New@Example.com", Reason: prefsync.SuppressedHardBounce, Source: "ses"}); err != nil {
		t.Fatal(err)
	}
	email := "new@example.com"
	if c, err := h.Store.FindContact(ctx, prefsync.ContactFilter{Email: &email}); prefsync.ErrorCode(err) != prefsync.ENOTFOUND {
		t.Errorf("the reported address finds %+v, %v; want no contact", c, err)
	}
	if got := checkReason(t, h, prefsync.Subject{Email: email}, "account"); got != "suppressed:hard_bounce" {
		t.Errorf("check: %s; want suppressed:hard_bounce", got)
	}
}

// Loading again (as a process that fell behind does) leaves the index with exactly the
// suppressions in force: one lifted meanwhile no longer counts, one added counts.
func TestLoadAgainSetsSuppressions(t *testing.T) {
	ctx := context.Background()
	h := hubtest.New(t, time.Now)
	for _, address := range []string{"a@example.com", "b@example.com"} {
		if _, err := h.Ingest(ctx, []prefsync.EventInput{{Subject: prefsync.Subject{Email: address}, Channel: "email", Topic: "newsletter",
			State: prefsync.OptedOut, Source: prefsync.Source{System: "t", Touchpoint: prefsync.API}}}, "t"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Suppress(ctx, prefsync.Suppression{Address: "a@example.com", Reason: prefsync.SuppressedHardBounce, Source: "ses"}); err != nil {
		t.Fatal(err)
	}
	// Behind the index's back, as another process sharing the store would.
	if _, _, err := h.Store.LiftSuppression(ctx, prefsync.IdentifierEmail, "a@example.com", "support", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Store.AddSuppression(ctx, prefsync.Suppression{Kind: prefsync.IdentifierEmail, Address: "b@example.com",
		Reason: prefsync.SuppressedSpamComplaint, Source: "ses", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := h.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := checkReason(t, h, prefsync.Subject{Email: "a@example.com"}, "account"); got != "transactional" {
		t.Errorf("a@example.com, lifted: %s; want transactional", got)
	}
	if got := checkReason(t, h, prefsync.Subject{Email: "b@example.com"}, "account"); got != "suppressed:spam_complaint" {
		t.Errorf("b@example.com, suppressed: %s; want suppressed:spam_complaint", got)
	}
}
