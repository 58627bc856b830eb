package http_test

import (
	"strings"
	"testing"

	"prefsync"
	"prefsync/inbound"
	"prefsync/inbound/twilio"
)

func TestSources(t *testing.T) {
	h := newHarness(t)
	h.srv.SourceKinds = inbound.Adapters{"twilio": twilio.Adapter{Dict: h.hub.Dict}}
	h.srv.InboundURL = func(in *prefsync.Inbound) string { return inbound.URL("https://prefs.example.com", in) }

	var src map[string]any
	if code := h.do("POST", "/v1/sources", adminKey, `{"name":"sms","kind":"twilio","config":{"auth_token":"tok"}}`, &src); code != 201 {
		t.Fatalf("create = %d %v", code, src)
	}
	u, _ := src["inbound_url"].(string)
	if !strings.HasPrefix(u, "https://prefs.example.com/in/sms/") || len(u) < len("https://prefs.example.com/in/sms/")+40 {
		t.Errorf("inbound_url = %q", u)
	}
	var got map[string]any
	if code := h.do("GET", "/v1/sources/sms", adminKey, nil, &got); code != 200 || got["inbound_url"] != u || got["kind"] != "twilio" {
		t.Errorf("get = %d %v", code, got)
	}
	for _, tc := range []struct {
		name, body string
		want       int
		field      string
	}{
		{"Duplicate", `{"name":"sms","kind":"twilio","config":{"auth_token":"tok"}}`, 409, "name"},
		{"UnknownKind", `{"name":"x","kind":"carrier-pigeon"}`, 400, "kind"},
		{"NoToken", `{"name":"x","kind":"twilio","config":{}}`, 400, "config.auth_token"},
		{"UnknownConfigField", `{"name":"x","kind":"twilio","config":{"auth_token":"t","colour":"red"}}`, 400, "config.colour"},
		{"BadChannel", `{"name":"x","kind":"twilio","config":{"auth_token":"t","stop_channels":["fax"]}}`, 400, "config.stop_channels[0]"},
		{"BadName", `{"name":"SMS!","kind":"twilio","config":{"auth_token":"t"}}`, 400, "name"},
		{"ReservedName", `{"name":"prefsync","kind":"twilio","config":{"auth_token":"t"}}`, 400, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e struct {
				Error struct{ Code, Field string } `json:"error"`
			}
			if code := h.do("POST", "/v1/sources", adminKey, tc.body, &e); code != tc.want || e.Error.Field != tc.field {
				t.Errorf("= %d %+v, want %d %s", code, e, tc.want, tc.field)
			}
		})
	}
	var list struct {
		Sources []map[string]any `json:"sources"`
	}
	if h.do("GET", "/v1/sources", adminKey, nil, &list); len(list.Sources) != 1 {
		t.Errorf("list = %v", list)
	}
	if code := h.do("GET", "/v1/sources", h.key(prefsync.ScopeEventsWrite, prefsync.ScopeContactsRead), nil, nil); code != 403 {
		t.Errorf("non-admin list = %d", code)
	}
	if code := h.do("DELETE", "/v1/sources/sms", adminKey, nil, nil); code != 204 {
		t.Errorf("delete = %d", code)
	}
	if code := h.do("GET", "/v1/sources/sms", adminKey, nil, nil); code != 404 {
		t.Errorf("get after delete = %d", code)
	}
}
