package http_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"prefsync"
)

// destination is a destination as the API answers it.
type destination struct {
	Name, Kind, URL, Status string
	StatusReason            string `json:"status_reason"`
	Secret                  *string
	Filter                  prefsync.DestinationFilter
}

func (h *harness) createDestination(body string) destination {
	h.t.Helper()
	var d destination
	if code := h.do("POST", "/v1/destinations", adminKey, body, &d); code != 201 {
		h.t.Fatalf("create destination %s: %d %+v", body, code, d)
	}
	return d
}

const secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestDestinations(t *testing.T) {
	h := newHarness(t)
	t.Run("Create", func(t *testing.T) {
		d := h.createDestination(`{"name":"crm","url":"https://crm.example.com/hooks","filter":{"channels":["email"]}}`)
		if d.Secret == nil || !strings.HasPrefix(*d.Secret, "whsec_") || prefsync.ValidateSecret(*d.Secret) != nil {
			t.Errorf("generated secret: %v", d.Secret)
		}
		if d.Kind != "webhook" || d.Status != "active" || len(d.Filter.Channels) != 1 {
			t.Errorf("created %+v", d)
		}
		if d := h.createDestination(`{"name":"erp","kind":"webhook","url":"http://erp.internal:8080/in","secret":"` + secretA + `"}`); *d.Secret != secretA {
			t.Errorf("given secret answered as %q", *d.Secret)
		}
	})
	t.Run("SecretShownOnce", func(t *testing.T) {
		var d map[string]any
		if code := h.do("GET", "/v1/destinations/crm", adminKey, nil, &d); code != 200 || d["name"] != "crm" {
			t.Fatalf("get: %d %v", code, d)
		}
		if _, ok := d["secret"]; ok {
			t.Errorf("GET shows the secret: %v", d)
		}
		var list struct{ Destinations []map[string]any }
		h.do("GET", "/v1/destinations", adminKey, nil, &list)
		if len(list.Destinations) != 2 || list.Destinations[0]["name"] != "crm" || list.Destinations[1]["name"] != "erp" {
			t.Fatalf("list: %+v", list)
		}
		for _, d := range list.Destinations {
			if _, ok := d["secret"]; ok {
				t.Errorf("list shows a secret: %v", d)
			}
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		var e apiError
		if code := h.do("POST", "/v1/destinations", adminKey, `{"name":"crm","url":"https://other.example.com/"}`, &e); code != 409 || e.Error.Code != "conflict" {
			t.Errorf("duplicate: %d %+v", code, e)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, tc := range []struct{ body, field string }{
			{`{"name":"CRM!","url":"https://crm.example.com/"}`, "name"},
			{`{"name":"","url":"https://crm.example.com/"}`, "name"},
			{`{"name":"x","url":"crm.example.com/hooks"}`, "url"},
			{`{"name":"x","url":"ftp://crm.example.com/"}`, "url"},
			{`{"name":"x","url":"https://user:pw@crm.example.com/"}`, "url"},
			{`{"name":"x","kind":"kafka","url":"https://crm.example.com/"}`, "kind"},
			{`{"name":"x","url":"https://crm.example.com/","secret":"hunter2"}`, "secret"},
			{`{"name":"x","url":"https://crm.example.com/","filter":{"channels":["fax"]}}`, "filter.channels[0]"},
			{`{"name":"x","url":"https://crm.example.com/","filter":{"topics":["newsletter","gossip"]}}`, "filter.topics[1]"},
			{`{"name":"x","url":"https://crm.example.com/","colour":"red"}`, "colour"},
		} {
			var e apiError
			if code := h.do("POST", "/v1/destinations", adminKey, tc.body, &e); code != 400 || e.Error.Field != tc.field {
				t.Errorf("%s: %d %+v, want 400 on %q", tc.body, code, e.Error, tc.field)
			}
		}
		var e apiError
		if code := h.do("GET", "/v1/destinations/x", adminKey, nil, &e); code != 404 {
			t.Errorf("refused destination was stored: %d", code)
		}
	})
	t.Run("Rotate", func(t *testing.T) {
		var d destination
		if code := h.do("POST", "/v1/destinations/erp/secret", adminKey, `{"grace":"1h"}`, &d); code != 200 || d.Secret == nil {
			t.Fatalf("rotate: %d %+v", code, d)
		}
		if *d.Secret == secretA || prefsync.ValidateSecret(*d.Secret) != nil {
			t.Errorf("rotated secret %q", *d.Secret)
		}
		// The old secret keeps signing through the grace period, and only through it.
		stored, err := h.hub.Destination(context.Background(), "erp")
		if err != nil {
			t.Fatal(err)
		}
		if got := stored.SigningSecrets(t0.Add(59 * time.Minute)); len(got) != 2 || got[0] != *d.Secret || got[1] != secretA {
			t.Errorf("signing secrets within the grace: %q", got)
		}
		if got := stored.SigningSecrets(t0.Add(61 * time.Minute)); len(got) != 1 || got[0] != *d.Secret {
			t.Errorf("signing secrets after the grace: %q", got)
		}
		// An empty body rotates with a generated secret and the default grace.
		before := *d.Secret
		if code := h.do("POST", "/v1/destinations/erp/secret", adminKey, nil, &d); code != 200 || *d.Secret == before {
			t.Errorf("rotate without a body: %d %+v", code, d)
		}
		if code := h.do("POST", "/v1/destinations/erp/secret", adminKey, map[string]string{"secret": secretA}, &d); code != 200 || *d.Secret != secretA {
			t.Errorf("rotate to a given secret: %d %+v", code, d)
		}
		for _, tc := range []struct{ body, field string }{
			{`{"grace":"soon"}`, "grace"},
			{`{"grace":"-1h"}`, "grace"},
			{`{"secret":"whsec_short"}`, "secret"},
			{`{"secrets":"x"}`, "secrets"},
		} {
			var e apiError
			if code := h.do("POST", "/v1/destinations/erp/secret", adminKey, tc.body, &e); code != 400 || e.Error.Field != tc.field {
				t.Errorf("rotate %s: %d %+v, want 400 on %q", tc.body, code, e.Error, tc.field)
			}
		}
		var e apiError
		if code := h.do("POST", "/v1/destinations/nope/secret", adminKey, `{}`, &e); code != 404 {
			t.Errorf("rotate unknown: %d %+v", code, e)
		}
	})
	t.Run("Enable", func(t *testing.T) {
		ctx := context.Background()
		if err := h.hub.Store.UpdateDestination(ctx, "crm", prefsync.StatusUpdate(prefsync.DestinationDisabled, "410 Gone", t0)); err != nil {
			t.Fatal(err)
		}
		var d destination
		h.do("GET", "/v1/destinations/crm", adminKey, nil, &d)
		if d.Status != "disabled" || d.StatusReason != "410 Gone" {
			t.Fatalf("disabled destination reads %+v", d)
		}
		d = destination{}
		if code := h.do("POST", "/v1/destinations/crm/enable", adminKey, nil, &d); code != 200 || d.Status != "active" || d.StatusReason != "" {
			t.Errorf("enable: %d %+v", code, d)
		}
		if h.do("GET", "/v1/destinations/crm", adminKey, nil, &d); d.Status != "active" {
			t.Errorf("enabled destination reads %+v", d)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		if code := h.do("DELETE", "/v1/destinations/erp", adminKey, nil, nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		for _, r := range []struct{ method, path string }{
			{"GET", "/v1/destinations/erp"},
			{"DELETE", "/v1/destinations/erp"},
			{"GET", "/v1/destinations/erp/deliveries"},
			{"POST", "/v1/destinations/erp/enable"},
		} {
			var e apiError
			if code := h.do(r.method, r.path, adminKey, nil, &e); code != 404 || e.Error.Code != "not_found" {
				t.Errorf("%s %s after delete: %d %+v", r.method, r.path, code, e)
			}
		}
	})
	t.Run("ErrForbidden", func(t *testing.T) {
		other := h.key(prefsync.ScopeEventsWrite, prefsync.ScopeCheck, prefsync.ScopeContactsRead, prefsync.ScopeContactsWrite)
		for _, r := range h.srv.Routes() {
			if !strings.HasPrefix(r.Path, "/v1/destinations") {
				continue
			}
			path := strings.ReplaceAll(r.Path, "{name}", "crm")
			var e apiError
			if code := h.do(r.Method, path, other, `{}`, &e); code != 403 || e.Error.Code != "forbidden" {
				t.Errorf("%s %s without admin: %d %+v", r.Method, path, code, e)
			}
		}
		if code := h.do("GET", "/v1/destinations/crm", adminKey, nil, nil); code != 200 {
			t.Errorf("refused calls changed crm: %d", code)
		}
	})
}

type deliveryList struct {
	Deliveries []prefsync.Delivery
	NextAfter  int64 `json:"next_after"`
}

func (h *harness) deliveries(name, query string) deliveryList {
	h.t.Helper()
	var l deliveryList
	if code := h.do("GET", "/v1/destinations/"+name+"/deliveries"+query, adminKey, nil, &l); code != 200 {
		h.t.Fatalf("deliveries of %s%s: %d", name, query, code)
	}
	return l
}

func versions(ds []prefsync.Delivery) string {
	var vs []string
	for _, d := range ds {
		vs = append(vs, fmt.Sprint(d.Version))
	}
	return strings.Join(vs, ",")
}

func TestDeliveries(t *testing.T) {
	h := newHarness(t)
	h.createDestination(`{"name":"crm","url":"https://crm.example.com/hooks"}`)
	h.createDestination(`{"name":"erp","url":"https://erp.example.com/hooks","filter":{"channels":["sms"]}}`)
	fromCRM := optOut("ana@example.com", "sms", "*")
	fromCRM["source"] = map[string]any{"system": "crm"}
	for _, ev := range []map[string]any{
		optOut("ana@example.com", "email", "*"), // version 1: crm (erp wants sms only)
		fromCRM,                                 // version 2: erp; never back to crm
		optOut("ana@example.com", "sms", "promotions"), // version 3: both
	} {
		var res results
		if code := h.do("POST", "/v1/events", adminKey, ev, &res); code != 200 || res.Results[0]["status"] != "applied" {
			t.Fatalf("event: %d %+v", code, res)
		}
	}

	t.Run("OK", func(t *testing.T) {
		crm := h.deliveries("crm", "")
		if got := versions(crm.Deliveries); got != "1,3" {
			t.Errorf("crm got versions %s, want 1,3 (no echo of its own change)", got)
		}
		if got := versions(h.deliveries("erp", "").Deliveries); got != "2,3" {
			t.Errorf("erp got versions %s, want 2,3", got)
		}
		d := crm.Deliveries[0]
		if d.Status != prefsync.DeliveryPending || d.MessageID == "" || d.Destination != "crm" || d.ContactID == "" ||
			d.Attempts != 0 || d.NextAttemptAt == nil || d.DeliveredAt != nil {
			t.Errorf("delivery %+v", d)
		}
		if crm.NextAfter != 0 {
			t.Errorf("a short page has next_after %d", crm.NextAfter)
		}
		// The contact's history says where each change went.
		var hist struct{ Events []prefsync.AuditEntry }
		h.do("GET", "/v1/contacts/"+d.ContactID+"/history", adminKey, nil, &hist)
		if len(hist.Events) != 3 || len(hist.Events[0].Deliveries) != 1 || hist.Events[0].Deliveries[0].Destination != "crm" ||
			hist.Events[0].Deliveries[0].Status != prefsync.DeliveryPending || len(hist.Events[2].Deliveries) != 2 {
			t.Errorf("history: %+v", hist.Events)
		}
	})
	t.Run("Paging", func(t *testing.T) {
		p1 := h.deliveries("crm", "?limit=1")
		if len(p1.Deliveries) != 1 || p1.NextAfter != p1.Deliveries[0].ID {
			t.Fatalf("page 1: %+v", p1)
		}
		p2 := h.deliveries("crm", fmt.Sprintf("?limit=1&after=%d", p1.NextAfter))
		if versions(p2.Deliveries) != "3" {
			t.Fatalf("page 2: %+v", p2)
		}
		if p3 := h.deliveries("crm", fmt.Sprintf("?limit=1&after=%d", p2.NextAfter)); len(p3.Deliveries) != 0 || p3.NextAfter != 0 {
			t.Errorf("page 3: %+v", p3)
		}
		if l := h.deliveries("crm", "?status=delivered"); len(l.Deliveries) != 0 {
			t.Errorf("delivered: %+v", l)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, tc := range []struct{ query, field string }{
			{"status=lost", "status"},
			{"limit=0", "limit"},
			{"limit=1001", "limit"},
			{"limit=ten", "limit"},
			{"after=-1", "after"},
			{"after=x", "after"},
		} {
			var e apiError
			if code := h.do("GET", "/v1/destinations/crm/deliveries?"+tc.query, adminKey, nil, &e); code != 400 || e.Error.Field != tc.field {
				t.Errorf("%s: %d %+v, want 400 on %q", tc.query, code, e.Error, tc.field)
			}
		}
		var e apiError
		if code := h.do("GET", "/v1/destinations/nope/deliveries", adminKey, nil, &e); code != 404 {
			t.Errorf("unknown destination: %d %+v", code, e)
		}
	})
	t.Run("Replay", func(t *testing.T) {
		for _, tc := range []struct{ body, field string }{
			{`{}`, "delivery_id"},
			{`{"delivery_id":1,"since":"2026-03-01T00:00:00Z"}`, "since"},
			{`{"since":"yesterday"}`, "since"},
			{`{"delivery_id":0}`, "delivery_id"},
			{`{"delivery_id":"1"}`, "delivery_id"},
		} {
			var e apiError
			if code := h.do("POST", "/v1/destinations/crm/deliveries/replay", adminKey, tc.body, &e); code != 400 || e.Error.Field != tc.field {
				t.Errorf("replay %s: %d %+v, want 400 on %q", tc.body, code, e.Error, tc.field)
			}
		}
		var e apiError
		if code := h.do("POST", "/v1/destinations/nope/deliveries/replay", adminKey, `{"since":"2026-03-01T00:00:00Z"}`, &e); code != 404 {
			t.Errorf("replay to an unknown destination: %d %+v", code, e)
		}
		replay := func(body string) int {
			t.Helper()
			var out struct{ Replayed *int }
			if code := h.do("POST", "/v1/destinations/crm/deliveries/replay", adminKey, body, &out); code != 200 || out.Replayed == nil {
				t.Fatalf("replay %s: %d", body, code)
			}
			return *out.Replayed
		}
		first := h.deliveries("crm", "").Deliveries[0].ID
		if n := replay(fmt.Sprintf(`{"delivery_id":%d}`, first)); n != 0 {
			t.Errorf("replaying a pending delivery replayed %d", n)
		}
		// Past the retry horizon both of crm's deliveries are dead; only they replay.
		if n, err := h.hub.Store.ExpireDeliveries(context.Background(), "crm", t0.Add(time.Second)); err != nil || n != 2 {
			t.Fatalf("expire: %d %v", n, err)
		}
		if got := versions(h.deliveries("crm", "?status=dead").Deliveries); got != "1,3" {
			t.Fatalf("dead: %s", got)
		}
		if n := replay(fmt.Sprintf(`{"delivery_id":%d}`, first)); n != 1 {
			t.Errorf("replay one: %d", n)
		}
		if got := versions(h.deliveries("crm", "?status=dead").Deliveries); got != "3" {
			t.Errorf("dead after replaying one: %s", got)
		}
		if n := replay(`{"since":"2026-03-01T11:00:00Z"}`); n != 0 {
			t.Errorf("replay since after the change: %d", n)
		}
		if n := replay(`{"since":"2026-03-01T09:00:00Z"}`); n != 1 {
			t.Errorf("replay since: %d", n)
		}
		pending := h.deliveries("crm", "?status=pending").Deliveries
		if versions(pending) != "1,3" || pending[1].NextAttemptAt == nil || !pending[1].NextAttemptAt.Equal(t0) {
			t.Errorf("replayed deliveries: %+v", pending)
		}
		if got := versions(h.deliveries("erp", "?status=pending").Deliveries); got != "2,3" {
			t.Errorf("replay to crm touched erp: %s", got)
		}
	})
	t.Run("DeleteCancels", func(t *testing.T) {
		if code := h.do("DELETE", "/v1/destinations/erp", adminKey, nil, nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		ds, err := h.hub.Store.Deliveries(context.Background(), prefsync.DeliveryFilter{Destination: "erp"})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Status != prefsync.DeliveryCancelled {
				t.Errorf("delivery to a deleted destination: %+v", d)
			}
		}
		if len(ds) != 2 {
			t.Errorf("%d deliveries to erp after delete, want 2 cancelled", len(ds))
		}
	})
}
