package inbound_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"prefsync"
	"prefsync/inbound"
	"prefsync/inbound/inboundtest"
	"prefsync/inbound/twilio"
)

func TestHandlerRefuses(t *testing.T) {
	h := inboundtest.New(t, func() time.Time { return time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) },
		func(d *prefsync.Dictionary) inbound.Adapters {
			return inbound.Adapters{"twilio": twilio.Adapter{Dict: d}}
		})
	to := h.Register("sms", "twilio", map[string]any{"auth_token": "tok"})
	for _, tc := range []struct {
		name, method, url, body string
		want                    int
	}{
		{"UnknownSource", "POST", h.Server.URL + "/in/nobody/" + strings.Repeat("0", 48), "Body=STOP", 404},
		{"NoSecret", "POST", h.Server.URL + "/in/sms", "Body=STOP", 404},
		{"Oversized", "POST", to, strings.Repeat("a", 2<<20), 413},
		{"CheckingGET", "GET", to, "", 200},
		{"CheckingGETWrongSecret", "GET", h.Server.URL + "/in/sms/x", "", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Errorf("status %d, want %d", res.StatusCode, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	a := inbound.Adapters{"twilio": twilio.Adapter{Dict: prefsync.DefaultDictionary()}}
	if err := a.Validate("twilio", []byte(`{"auth_token":"x"}`)); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if err := a.Validate("sms", nil); prefsync.ErrorField(err) != "kind" || !strings.Contains(err.Error(), "twilio") {
		t.Errorf("unknown kind: %v", err)
	}
	if err := a.Validate("twilio", []byte(`{"auth_token":5}`)); prefsync.ErrorField(err) != "config.auth_token" {
		t.Errorf("wrong type: %v", err)
	}
}
