package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"prefsync/inbound/twilio"
	"prefsync/postgres/pgtest"
)

type running struct {
	url    string
	stop   func()
	stdout *bytes.Buffer
}

// start runs the real "prefsync serve" in-process on a free port.
func start(t *testing.T, env map[string]string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	out := &bytes.Buffer{}
	p := &Program{Stdout: out, Stderr: io.Discard, Getenv: func(k string) string { return env[k] },
		Listening: func(a string) { addr <- a }}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)) }()
	select {
	case a := <-addr:
		r := &running{url: "http://" + a, stdout: out}
		r.stop = func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
		return r
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return nil
}

func call(t *testing.T, method, url, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func TestEndToEnd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "e2e.db")
	const admin = "e2e-admin-key-0123456789"
	env := map[string]string{"PREFSYNC_BOOTSTRAP_ADMIN_KEY": admin, "PREFSYNC_DATABASE": db}
	srv := start(t, env)

	code, c := call(t, "POST", srv.url+"/v1/contacts", admin, `{"email":"Ana@Example.com","jurisdiction":"DE","locale":"de"}`)
	if code != 200 || c["id"] == nil {
		t.Fatalf("create contact: %d %v", code, c)
	}
	id := c["id"].(string)
	code, res := call(t, "POST", srv.url+"/v1/events", admin,
		`{"subject":{"email":"ana@example.com"},"channel":"email","topic":"promotions","state":"opted_in","evidence":{"method":"explicit","ip":"192.0.2.7"},"idempotency_key":"form-1"}`)
	if code != 200 {
		t.Fatalf("opt in: %d %v", code, res)
	}
	check := `{"channel":"email","topic":"promotions","recipients":[{"email":"ana@example.com"},{"contact_id":"` + id + `"},{"email":"stranger@example.com"}]}`
	_, chk := call(t, "POST", srv.url+"/v1/check", admin, check)
	want := []any{true, true, false}
	for i, r := range chk["results"].([]any) {
		if r.(map[string]any)["allowed"] != want[i] {
			t.Errorf("check %d after opt-in: %v", i, r)
		}
	}
	call(t, "POST", srv.url+"/v1/events", admin, `{"subject":{"email":"ana@example.com"},"channel":"*","topic":"*","state":"opted_out","source":{"system":"support","touchpoint":"support"}}`)
	_, chk = call(t, "POST", srv.url+"/v1/check", admin, check)
	if r := chk["results"].([]any)[0].(map[string]any); r["allowed"] != false || r["reason"] != "opted_out:(*,*)" {
		t.Errorf("check after opt-out everywhere: %v", r)
	}
	srv.stop()

	// The keys command works on the same file while the hub is down; the key it prints
	// works once the hub is back.
	out := &bytes.Buffer{}
	p := &Program{Stdout: out, Stderr: io.Discard, Getenv: func(k string) string { return env[k] }}
	if err := p.Run(context.Background(), []string{"keys", "create", "--name", "crm", "--scopes", "check"}); err != nil {
		t.Fatal(err)
	}
	crmKey := strings.TrimSpace(out.String())

	// After a restart, the index is rebuilt from the file: the opt-out still holds.
	srv = start(t, env)
	defer srv.stop()
	if srv.stdout.Len() != 0 {
		t.Errorf("second start printed %q: the bootstrap key is made once", srv.stdout)
	}
	_, chk = call(t, "POST", srv.url+"/v1/check", crmKey, check)
	if r := chk["results"].([]any)[1].(map[string]any); r["allowed"] != false || r["version"] != 3.0 {
		t.Errorf("check after restart: %v", r)
	}
	if code, _ := call(t, "POST", srv.url+"/v1/events", crmKey, `{}`); code != 403 {
		t.Errorf("check-only key wrote events: %d", code)
	}
	_, hist := call(t, "GET", srv.url+"/v1/contacts/"+id+"/history", admin, "")
	events := hist["events"].([]any)
	if first := events[0].(map[string]any); len(events) != 3 || first["kind"] != "contact" ||
		first["status_reason"] != "set identifiers, jurisdiction DE, locale de" {
		t.Errorf("history: %v", events)
	}

	out.Reset()
	if err := p.Run(context.Background(), []string{"audit", "verify"}); err != nil || !strings.Contains(out.String(), "audit trail OK: 3 entries") {
		t.Errorf("audit verify: %v %q", err, out)
	}
}

func TestGeneratedBootstrapKey(t *testing.T) {
	env := map[string]string{"PREFSYNC_DATABASE": filepath.Join(t.TempDir(), "boot.db")}
	srv := start(t, env)
	defer srv.stop()
	lines := strings.Split(strings.TrimSpace(srv.stdout.String()), "\n")
	key := lines[len(lines)-1]
	if !strings.HasPrefix(key, "psk_") {
		t.Fatalf("printed %q", srv.stdout)
	}
	if code, _ := call(t, "GET", srv.url+"/v1/keys", key, ""); code != 200 {
		t.Errorf("printed key does not work: %d", code)
	}
}

func TestCommandsNeedAStore(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo.db")
	for _, args := range [][]string{{"audit", "verify", "--database", missing}, {"keys", "list", "--database", missing}} {
		p := &Program{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
		if err := p.Run(context.Background(), args); err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("%v on a missing store: %v", args, err)
		}
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"MissingFolder", []string{"--database", filepath.Join(dir, "no", "x.db")}, "folder"},
		{"DatabaseIsDirectory", []string{"--database", dir}, "directory"},
		{"MissingDictionary", []string{"--database", filepath.Join(dir, "a.db"), "--dictionary", filepath.Join(dir, "none.json")}, "dictionary"},
		{"BadLogFormat", []string{"--log-format", "xml"}, "log-format"},
		{"BadPublicURL", []string{"--public-url", "ftp://x"}, "public-url"},
		{"BadTrustedProxy", []string{"--trusted-proxies", "10.0.0.0/8, proxy.internal"}, `"proxy.internal"`},
		{"PostgresUnreachable", []string{"--database", "postgres://postgres@127.0.0.1:1/test?connect_timeout=1", "--database-wait", "1s"}, "does not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Program{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
			err := p.Run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestTrustedProxies(t *testing.T) {
	p := &Program{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	cfg, _, err := p.parseConfig("serve", []string{"--trusted-proxies", " 10.1.2.3/8, ::ffff:192.0.2.0/120,::ffff:198.51.100.7, fe80::1%eth0,,2001:db8::/32"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range cfg.TrustedProxies {
		got = append(got, n.String())
	}
	if want := "10.0.0.0/8 192.0.2.0/24 198.51.100.7/32 fe80::1/128 2001:db8::/32"; strings.Join(got, " ") != want {
		t.Errorf("trusted proxies = %v, want %s", got, want)
	}
}

// TestOneClickEndToEnd: the served List-Unsubscribe URL, POSTed as a mail client does
// through a trusted reverse proxy, opts the contact out, with the mail client's address
// as evidence.
func TestOneClickEndToEnd(t *testing.T) {
	const admin = "e2e-admin-key-0123456789"
	env := map[string]string{"PREFSYNC_BOOTSTRAP_ADMIN_KEY": admin, "PREFSYNC_DATABASE": filepath.Join(t.TempDir(), "u.db"),
		"PREFSYNC_PUBLIC_URL": "https://prefs.example.com", "PREFSYNC_TRUSTED_PROXIES": "127.0.0.1, ::1"}
	srv := start(t, env)
	defer srv.stop()
	_, c := call(t, "POST", srv.url+"/v1/contacts", admin, `{"email":"ana@example.com","jurisdiction":"US"}`)
	id := c["id"].(string)
	_, lu := call(t, "GET", srv.url+"/v1/contacts/"+id+"/list-unsubscribe?topic=promotions", admin, "")
	path, ok := strings.CutPrefix(lu["List-Unsubscribe"].(string), "<https://prefs.example.com")
	if !ok {
		t.Fatalf("List-Unsubscribe = %v", lu)
	}
	req, _ := http.NewRequest("POST", srv.url+strings.TrimSuffix(path, ">"), strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "198.51.100.9, 203.0.113.7") // the first written by the client
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("one-click POST = %d", res.StatusCode)
	}
	_, chk := call(t, "POST", srv.url+"/v1/check", admin, `{"channel":"email","topic":"promotions","recipients":[{"email":"ana@example.com"}]}`)
	if r := chk["results"].([]any)[0].(map[string]any); r["allowed"] != false || r["reason"] != "opted_out:(email,promotions)" {
		t.Errorf("check after one-click: %v", r)
	}
	_, hist := call(t, "GET", srv.url+"/v1/contacts/"+id+"/history", admin, "")
	events := hist["events"].([]any)
	if ev, _ := events[len(events)-1].(map[string]any)["evidence"].(map[string]any); ev["ip"] != "203.0.113.7" {
		t.Errorf("evidence of the one-click: %v", ev)
	}
}

// TestSMSStopEndToEnd: a Twilio source registered over the API takes a signed STOP at
// its inbound_url, and the number is opted out of SMS.
func TestSMSStopEndToEnd(t *testing.T) {
	const admin = "e2e-admin-key-0123456789"
	env := map[string]string{"PREFSYNC_BOOTSTRAP_ADMIN_KEY": admin, "PREFSYNC_DATABASE": filepath.Join(t.TempDir(), "s.db"),
		"PREFSYNC_PUBLIC_URL": "https://prefs.example.com"}
	srv := start(t, env)
	defer srv.stop()
	code, src := call(t, "POST", srv.url+"/v1/sources", admin, `{"name":"sms","kind":"twilio","config":{"auth_token":"tok"}}`)
	if code != 201 {
		t.Fatalf("create source: %d %v", code, src)
	}
	public := src["inbound_url"].(string)
	form := url.Values{"MessageSid": {"SM1"}, "From": {"+14155550100"}, "To": {"+15005550006"}, "Body": {"STOP"}}
	req, _ := http.NewRequest("POST", srv.url+strings.TrimPrefix(public, "https://prefs.example.com"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature([]byte("tok"), public, form))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/xml" {
		t.Fatalf("STOP: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	_, chk := call(t, "POST", srv.url+"/v1/check", admin, `{"channel":"sms","topic":"account","recipients":[{"phone":"+14155550100"}]}`)
	_, chk2 := call(t, "POST", srv.url+"/v1/check", admin, `{"channel":"sms","topic":"promotions","recipients":[{"phone":"+14155550100"}]}`)
	if r := chk2["results"].([]any)[0].(map[string]any); r["reason"] != "opted_out:(sms,*)" {
		t.Errorf("promotions by SMS after STOP: %v", r)
	}
	if r := chk["results"].([]any)[0].(map[string]any); r["allowed"] != true {
		t.Errorf("transactional SMS after STOP: %v", r)
	}
}

// TestPostgresEndToEnd runs the real server on PostgreSQL: an opt-out written, checked,
// and still there after a restart.
func TestPostgresEndToEnd(t *testing.T) {
	const admin = "e2e-admin-key-0123456789"
	env := map[string]string{"PREFSYNC_BOOTSTRAP_ADMIN_KEY": admin, "PREFSYNC_DATABASE": pgtest.DSN(t)}
	srv := start(t, env)
	if code, res := call(t, "POST", srv.url+"/v1/events", admin, `{"subject":{"email":"ana@example.com"},"channel":"email","topic":"*","state":"opted_out"}`); code != 200 {
		t.Fatalf("event: %d %v", code, res)
	}
	srv.stop()
	srv = start(t, env)
	defer srv.stop()
	_, chk := call(t, "POST", srv.url+"/v1/check", admin, `{"channel":"email","topic":"newsletter","recipients":[{"email":"ana@example.com"}]}`)
	if r := chk["results"].([]any)[0].(map[string]any); r["reason"] != "opted_out:(email,*)" {
		t.Errorf("check after restart on PostgreSQL: %v", r)
	}
}

// TestPagesMounted: the real server routes /p (the link request form) and /u/ to the
// pages, not to the API's 404 or a redirect.
func TestPagesMounted(t *testing.T) {
	env := map[string]string{"PREFSYNC_BOOTSTRAP_ADMIN_KEY": "e2e-admin-key-0123456789", "PREFSYNC_DATABASE": filepath.Join(t.TempDir(), "m.db")}
	srv := start(t, env, "--smtp-relay", "127.0.0.1:1", "--mail-from", "prefs@example.org")
	defer srv.stop()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(srv.url + "/p")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `name="email"`) {
		t.Errorf("GET /p = %d: want the form that asks for a link", res.StatusCode)
	}
}

func TestMigrate(t *testing.T) {
	out := &bytes.Buffer{}
	p := &Program{Stdout: out, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	db := filepath.Join(t.TempDir(), "m.db")
	if err := p.Run(context.Background(), []string{"migrate", "--database", db}); err != nil || !strings.Contains(out.String(), "migrated") {
		t.Fatalf("migrate: %v %s", err, out)
	}
	out.Reset()
	if err := p.Run(context.Background(), []string{"audit", "verify", "--database", db}); err != nil {
		t.Errorf("the migrated file is not a store: %v", err)
	}
}
