package http_test

import (
	"strings"
	"testing"

	"prefsync"
)

func TestListUnsubscribe(t *testing.T) {
	h := newHarness(t)
	var ev struct {
		Results []prefsync.EventResult `json:"results"`
	}
	if code := h.do("POST", "/v1/events", adminKey, `{"subject":{"email":"ana@example.com"},"channel":"email","topic":"newsletter","state":"opted_in","evidence":{"method":"explicit"}}`, &ev); code != 200 {
		t.Fatal(code)
	}
	id := ev.Results[0].ContactID
	var out map[string]string
	if code := h.do("GET", "/v1/contacts/"+id+"/list-unsubscribe?topic=newsletter", h.key(prefsync.ScopeEventsWrite), nil, &out); code != 200 {
		t.Fatalf("list-unsubscribe = %d %v", code, out)
	}
	if out["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", out["List-Unsubscribe-Post"])
	}
	// One https URI, in angle brackets, whose token names the contact and the scope.
	lu := out["List-Unsubscribe"]
	token, ok := strings.CutPrefix(lu, "<https://prefs.example.com/u/")
	if !ok || !strings.HasSuffix(token, ">") {
		t.Fatalf("List-Unsubscribe = %q", lu)
	}
	l, err := h.hub.Links.Verify(strings.TrimSuffix(token, ">"), h.hub.Now())
	if err != nil || l.ContactID != id || l.Scope != (prefsync.Scope{Channel: "email", Topic: "newsletter"}) || l.Purpose != prefsync.LinkUnsubscribe {
		t.Errorf("token grants %+v, %v", l, err)
	}
	for _, tc := range []struct {
		name, path string
		want       int
		field      string
	}{
		{"UnknownTopic", "/v1/contacts/" + id + "/list-unsubscribe?topic=gossip", 400, "topic"},
		{"TopicNotOnChannel", "/v1/contacts/" + id + "/list-unsubscribe?channel=sms&topic=newsletter", 400, "topic"},
		{"UnknownContact", "/v1/contacts/c_0000000000001/list-unsubscribe", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e struct {
				Error struct{ Code, Field string } `json:"error"`
			}
			if code := h.do("GET", tc.path, adminKey, nil, &e); code != tc.want || e.Error.Field != tc.field {
				t.Errorf("= %d %+v, want %d field %q", code, e, tc.want, tc.field)
			}
		})
	}
	if code := h.do("GET", "/v1/contacts/"+id+"/list-unsubscribe", h.key(prefsync.ScopeCheck, prefsync.ScopeContactsRead), nil, nil); code != 403 {
		t.Errorf("with a key that may not write: %d", code)
	}
}

func TestListUnsubscribeMailto(t *testing.T) {
	h := newHarness(t)
	h.srv.UnsubscribeMailto = func(token string) string {
		return "mailto:unsubscribe@unsub.example.com?subject=unsubscribe%20" + token
	}
	var c map[string]any
	h.do("POST", "/v1/contacts", adminKey, `{"email":"ana@example.com"}`, &c)
	var out map[string]string
	if code := h.do("GET", "/v1/contacts/"+c["id"].(string)+"/list-unsubscribe", adminKey, nil, &out); code != 200 {
		t.Fatal(code)
	}
	parts := strings.Split(out["List-Unsubscribe"], ", ")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "<https://") || !strings.HasPrefix(parts[1], "<mailto:unsubscribe@unsub.example.com?subject=") {
		t.Errorf("List-Unsubscribe = %q: want the https URI first, then mailto", out["List-Unsubscribe"])
	}
}
