package web_test

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"prefsync"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// page fetches a preference page (GET) with the headers given.
func (h *harness) page(path string, header ...string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.ts.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	code, body, _ := h.send(req)
	return code, body
}

// csrf reads the form token of a page.
func csrf(t *testing.T, page string) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the page has no form token")
	}
	return m[1]
}

// golden compares a page with testdata/name, rewriting it with -update. The tokens,
// which change with every run's keys, are blanked first.
func golden(t *testing.T, name, page string) {
	t.Helper()
	page = regexp.MustCompile(`(value="|/p/)[A-Za-z0-9_-]{40,}`).ReplaceAllString(page, "${1}TOKEN")
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./web -update to write it)", err)
	}
	if string(want) != page {
		t.Errorf("%s differs from the page; run go test ./web -update and review the diff", path)
	}
}

func (h *harness) prefLink(id string) string {
	h.t.Helper()
	token, _, err := h.hub.PreferenceToken(context.Background(), id, time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	return "/p/" + token
}

func TestPreferencePage(t *testing.T) {
	h := newHarness(t)
	id := h.contact("ana@example.com")
	path := h.prefLink(id)

	code, page := h.page(path)
	if code != 200 {
		t.Fatalf("GET = %d %s", code, page)
	}
	golden(t, "preferences_en.html", page)
	for _, want := range []string{`lang="en"`, `value="email:newsletter" checked`, `Always sent`, `name="action" value="all_off"`,
		`value="pause:4"`, `<label for="email-newsletter">`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if n := len(h.history(id)); n != 1 {
		t.Errorf("viewing wrote %d entries", n-1)
	}

	// Turn the newsletter off, without JavaScript: a plain form POST. The contact is in
	// no known jurisdiction, so the other marketing topics are off until chosen.
	h.step(time.Minute)
	form := url.Values{"csrf": {csrf(t, page)}, "action": {"save"},
		"shown": {"email:product_updates", "email:newsletter", "email:promotions", "email:events"},
		"on":    {"email:product_updates"}}
	code, saved := h.postForm(path, form)
	if code != 200 || !strings.Contains(saved, "Saved on 2026-11-02 09:01 UTC.") || strings.Contains(saved, `value="email:newsletter" checked`) {
		t.Fatalf("save = %d %s", code, saved)
	}
	hist := h.history(id)
	last := hist[len(hist)-1]
	if len(hist) != 2 || last.Topic != "newsletter" || last.State != prefsync.OptedOut || last.Source.Touchpoint != prefsync.PreferenceCenter ||
		last.Evidence.Method != prefsync.Explicit || last.Evidence.IP != "127.0.0.1" || last.Source.System != prefsync.SystemPrefsync {
		t.Errorf("recorded %+v", hist)
	}
	// The reload shows it, and why.
	_, page = h.page(path)
	if strings.Contains(page, `value="email:newsletter" checked`) || !strings.Contains(page, "Off: you turned off Our newsletter (email) on 2026-11-02 09:01 UTC.") {
		t.Errorf("after saving, the page shows the newsletter on or without its reason")
	}

	// Unsubscribe from everything, then take one topic back: an explicit opt-in that
	// lifts the opt-out of everything, recorded as such, while the rest stays off.
	h.step(time.Minute)
	h.postForm(path, url.Values{"csrf": {csrf(t, page)}, "action": {"all_off"}})
	if ok, _ := h.allowed("ana@example.com", "email", "product_updates"); ok {
		t.Error("product updates allowed after unsubscribing from everything")
	}
	_, page = h.page(path)
	h.step(time.Minute)
	code, _ = h.postForm(path, url.Values{"csrf": {csrf(t, page)}, "action": {"save"},
		"shown": {"email:product_updates", "email:newsletter", "email:promotions", "email:events"}, "on": {"email:newsletter"}})
	if code != 200 {
		t.Fatal(code)
	}
	if ok, reason := h.allowed("ana@example.com", "email", "newsletter"); !ok {
		t.Errorf("newsletter after taking it back: %s", reason)
	}
	if ok, _ := h.allowed("ana@example.com", "email", "promotions"); ok {
		t.Error("promotions came back with the newsletter")
	}
	if ok, _ := h.allowed("ana@example.com", "sms", "promotions"); ok {
		t.Error("another channel came back with the newsletter")
	}

	// Pause for two weeks, with the save-on-change script's JSON answer.
	h.step(time.Minute)
	req, _ := http.NewRequest("POST", h.ts.URL+path, strings.NewReader(url.Values{"csrf": {csrf(t, page)}, "action": {"pause:2"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	code, body, _ := h.send(req)
	var j map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &j) != nil || j["message"] != "Saved on 2026-11-02 09:04 UTC." {
		t.Errorf("JSON save = %d %s", code, body)
	}
	if ok, reason := h.allowed("ana@example.com", "email", "newsletter"); ok || !strings.HasPrefix(reason, "paused_until:") {
		t.Errorf("after a pause: %v %s", ok, reason)
	}
	if _, page = h.page(path); !strings.Contains(page, "Everything is paused until 2026-11-16 09:04 UTC.") {
		t.Error("the page does not show the pause")
	}
}

func TestPreferencePageRefuses(t *testing.T) {
	h := newHarness(t)
	id := h.contact("ana@example.com")
	path := h.prefLink(id)
	_, page := h.page(path)
	token := csrf(t, page)
	other := h.contact("bo@example.com")
	_, otherPage := h.page(h.prefLink(other))

	expired, _, _ := h.hub.PreferenceToken(context.Background(), id, -time.Minute)
	tampered := []byte(strings.TrimPrefix(path, "/p/"))
	tampered[10] ^= 1
	unsub, _ := h.hub.UnsubscribeToken(context.Background(), id, prefsync.Scope{Channel: "email", Topic: "*"})
	for _, tc := range []struct {
		name, path string
		form       url.Values
		header     []string
		want       int
	}{
		{"Expired", "/p/" + expired, url.Values{"csrf": {token}, "action": {"all_off"}}, nil, 404},
		{"Tampered", "/p/" + string(tampered), url.Values{"csrf": {token}, "action": {"all_off"}}, nil, 404},
		{"UnsubscribeTokenIsNotAPreferenceLink", "/p/" + unsub, url.Values{"csrf": {token}, "action": {"all_off"}}, nil, 404},
		{"NoFormToken", path, url.Values{"action": {"all_off"}}, nil, 403},
		{"AnotherContactsFormToken", path, url.Values{"csrf": {csrf(t, otherPage)}, "action": {"all_off"}}, nil, 403},
		{"CrossSite", path, url.Values{"csrf": {token}, "action": {"all_off"}}, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"BadPause", path, url.Values{"csrf": {token}, "action": {"pause:3"}}, nil, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", h.ts.URL+tc.path, strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			if code, body, _ := h.send(req); code != tc.want {
				t.Errorf("status %d, want %d: %.200s", code, tc.want, body)
			}
			if n := len(h.history(id)); n != 1 {
				t.Errorf("a refused request wrote %d entries", n-1)
			}
		})
	}
	if code, _ := h.page("/p/" + expired); code != 404 {
		t.Errorf("GET of an expired link = %d", code)
	}
}

func TestGlobalPrivacyControl(t *testing.T) {
	h := newHarness(t)
	id := h.contact("ana@example.com")
	path := h.prefLink(id)
	_, page := h.page(path, "Sec-GPC", "1")
	if !strings.Contains(page, "Global Privacy Control") {
		t.Error("the page does not say it honoured GPC")
	}
	hist := h.history(id)
	last := hist[len(hist)-1]
	if len(hist) != 2 || last.Channel != "ads" || last.Topic != "*" || last.State != prefsync.OptedOut || last.Source.Touchpoint != prefsync.PreferenceCenter {
		t.Errorf("GPC recorded %+v", hist)
	}
	h.page(path, "Sec-GPC", "1")
	if n := len(h.history(id)); n != 2 {
		t.Errorf("a second visit with GPC wrote again (%d entries)", n)
	}
}

func TestLanguages(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ locale, lang, title string }{
		{"fr-CA", "fr", "Vos préférences"}, {"de", "de", "Ihre E-Mail"}, {"es-MX", "es", "Tus preferencias"}, {"pt", "en", "Your email"},
	} {
		c, err := h.hub.UpsertContact(context.Background(), prefsync.ContactInput{Email: tc.locale + "@example.com", Locale: &tc.locale})
		if err != nil {
			t.Fatal(err)
		}
		_, page := h.page(h.prefLink(c.ID))
		if !strings.Contains(page, `lang="`+tc.lang+`"`) || !strings.Contains(page, tc.title) {
			t.Errorf("locale %s: not in %s", tc.locale, tc.lang)
		}
		if tc.lang != "en" { // the English page has its golden file already
			golden(t, "preferences_"+tc.lang+".html", page)
		}
	}
}

func TestSuppressedAddressShown(t *testing.T) {
	h := newHarness(t)
	id := h.contact("ana@example.com")
	if _, err := h.hub.Suppress(context.Background(), prefsync.Suppression{Address: "ana@example.com", Reason: prefsync.SuppressedHardBounce, Source: "esp"}); err != nil {
		t.Fatal(err)
	}
	path := h.prefLink(id)
	_, page := h.page(path)
	if strings.Contains(page, `value="email:newsletter"`) || !strings.Contains(page, "Off: we cannot send to this address (hard bounce).") {
		t.Error("the page offers a switch for a suppressed address, or does not say why")
	}
	// Saving the page as it is writes nothing: not even a forged switch of the
	// suppressed address.
	before := len(h.history(id))
	h.step(time.Minute)
	if code, _ := h.postForm(path, url.Values{"csrf": {csrf(t, page)}, "action": {"save"}, "shown": {"email:newsletter", "email:account"}}); code != 200 {
		t.Fatal(code)
	}
	if n := len(h.history(id)); n != before {
		t.Errorf("saving a suppressed address's page wrote %d entries", n-before)
	}
}
