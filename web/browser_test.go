package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"prefsync"
	prefhttp "prefsync/http"
	"prefsync/web"
)

// chromium is Debian's Chromium, which .ci/run installs.
const chromium = "/usr/bin/chromium"

// browser starts a headless Chromium for one test, bounded in time.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no browser at %s (apt-get install -y chromium; .ci/run does): %v", chromium, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(900, 1400))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// screenshots is where the browser tests leave a screenshot of the page in each
// language: a CI artifact, not committed (see .gitignore).
func screenshots(t *testing.T) string {
	dir := os.Getenv("PREFSYNC_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// apiKey is an admin key of the servers servePages starts.
const apiKey = "browser-test-admin-key-0123"

// servePages serves the pages and the JSON API together, as prefsync serve does.
func servePages(t *testing.T, h *harness) string {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	k, _ := prefsync.APIKeyFromSecret("admin", []string{prefsync.ScopeAdmin}, apiKey, h.now())
	if _, err := h.hub.Store.CreateAPIKey(context.Background(), k, false); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	pages := web.New(h.hub, logger)
	mux.Handle("/p/", pages)
	mux.Handle("/assets/", pages)
	mux.Handle("/", prefhttp.NewServer(h.hub, logger, prefhttp.NewMetrics(h.hub.Index.Len)))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

// checkAPI asks the JSON API whether email may get topic, and why.
func checkAPI(t *testing.T, base, email, topic string) (bool, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/check", strings.NewReader(`{"channel":"email","topic":"`+topic+`","recipients":[{"email":"`+email+`"}]}`))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Results []prefsync.Decision `json:"results"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.Results) != 1 {
		t.Fatalf("check: %v %+v", err, out)
	}
	return out.Results[0].Allowed, out.Results[0].Reason
}

// TestBrowserToggle opens a link in Chromium, turns a topic off by clicking it (the
// script saves at once), and finds the change through the hub and on the reloaded page.
func TestBrowserToggle(t *testing.T) {
	h := newHarness(t)
	base := servePages(t, h)
	id := h.contact("ana@example.com")
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+h.prefLink(id)), chromedp.WaitVisible("#email-newsletter"),
		chromedp.Click("#email-newsletter"), chromedp.WaitVisible("#status")); err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text("#status"))
	if err != nil || !strings.HasPrefix(status, "Saved on") {
		t.Errorf("status after the click = %q, %v", status, err)
	}
	if ok, reason := checkAPI(t, base, "ana@example.com", "newsletter"); ok || reason != "opted_out:(email,newsletter)" {
		t.Errorf("the API says %v, %s after unticking the newsletter in the browser", ok, reason)
	}
	hist := h.history(id)
	if last := hist[len(hist)-1]; last.Source.Touchpoint != prefsync.PreferenceCenter || !strings.Contains(last.Evidence.UserAgent, "Chrome") || last.State != prefsync.OptedOut {
		t.Errorf("recorded %+v", last)
	}
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible("#email-newsletter")); err != nil {
		t.Fatal(err)
	}
	if checked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("email-newsletter").checked`)); err != nil || checked {
		t.Errorf("the reloaded page shows the newsletter ticked (%v)", err)
	}
}

// TestBrowserWithoutJavaScript does the same with scripts off: tick, press Save, see
// the confirmation with its time.
func TestBrowserWithoutJavaScript(t *testing.T) {
	h := newHarness(t)
	base := servePages(t, h)
	id := h.contact("ana@example.com")
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+h.prefLink(id)), chromedp.WaitVisible("#email-newsletter"),
		chromedp.Click("#email-newsletter"), chromedp.Click(`button[value="save"]`), chromedp.WaitVisible("#status")); err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text("#status"))
	if err != nil || !strings.HasPrefix(status, "Saved on") {
		t.Errorf("status after Save = %q, %v", status, err)
	}
	if ok, reason := checkAPI(t, base, "ana@example.com", "newsletter"); ok || reason != "opted_out:(email,newsletter)" {
		t.Errorf("the API says %v, %s after saving without JavaScript", ok, reason)
	}
}

// TestBrowserScreenshots renders the page in each shipped language and keeps a
// screenshot of each; the keyboard reaches the first choice.
func TestBrowserScreenshots(t *testing.T) {
	h := newHarness(t)
	base := servePages(t, h)
	dir := screenshots(t)
	ctx := browser(t)
	for _, locale := range []string{"en", "fr", "de", "es"} {
		c, err := h.hub.UpsertContact(context.Background(), prefsync.ContactInput{Email: locale + "@example.com", Locale: &locale})
		if err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(base+h.prefLink(c.ID)), chromedp.WaitVisible("#prefs")); err != nil {
			t.Fatal("navigate:", err)
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal("tab:", err)
		}
		lang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
		if err != nil || lang != locale {
			t.Errorf("lang = %q, want %q (%v)", lang, locale, err)
		}
		focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.type || document.activeElement.tagName`))
		if err != nil || focused != "checkbox" {
			t.Errorf("%s: Tab went to %q, want the first choice (%v)", locale, focused, err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "preferences-"+locale+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
