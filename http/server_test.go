package http_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"prefsync"
	prefhttp "prefsync/http"
	"prefsync/identifier"
	"prefsync/sqlite"
)

const adminKey = "test-admin-key-0123456789"

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

type harness struct {
	t   *testing.T
	srv *prefhttp.Server
	ts  *httptest.Server
	hub *prefsync.Hub
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	now := func() time.Time { return t0 }
	dict := prefsync.DefaultDictionary()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "p.db"), ConflictWindow: time.Second, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	k, _ := prefsync.APIKeyFromSecret("admin", []string{prefsync.ScopeAdmin}, adminKey, t0)
	if _, err := db.CreateAPIKey(context.Background(), k, true); err != nil {
		t.Fatal(err)
	}
	hub := &prefsync.Hub{Store: db, Index: prefsync.NewIndex(dict), Dict: dict, Normalizer: identifier.Normalizer{}, Now: now,
		Random: rand.NewChaCha8([32]byte{})}
	if err := hub.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := prefhttp.NewServer(hub, slog.New(slog.NewTextHandler(io.Discard, nil)), prefhttp.NewMetrics(hub.Index.Len))
	srv.UnsubscribeURL = func(token string) string { return "https://prefs.example.com/u/" + token }
	srv.MaxBodyBytes = 64 << 10
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &harness{t: t, srv: srv, ts: ts, hub: hub}
}

// do sends body (a string or a value to marshal) and decodes the JSON answer into out.
func (h *harness) do(method, path, key string, body any, out any) int {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, h.ts.URL+path, r)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, data, err)
		}
	}
	return res.StatusCode
}

func (h *harness) key(scopes ...string) string {
	var out struct{ Secret string }
	if code := h.do("POST", "/v1/keys", adminKey, map[string]any{"name": "sys-" + strings.Join(scopes, "-"), "scopes": scopes}, &out); code != 201 {
		h.t.Fatalf("create key: %d", code)
	}
	return out.Secret
}

type apiError struct {
	Error struct{ Code, Message, Field string }
}

type results struct {
	Results []map[string]any
}

func optOut(email, channel, topic string) map[string]any {
	return map[string]any{"subject": map[string]any{"email": email}, "channel": channel, "topic": topic, "state": "opted_out"}
}

func TestAuth(t *testing.T) {
	h := newHarness(t)
	var e apiError
	if code := h.do("POST", "/v1/check", "", `{}`, &e); code != 401 || e.Error.Code != "unauthorized" {
		t.Errorf("no key: %d %+v", code, e)
	}
	if code := h.do("POST", "/v1/check", "wrong-key-0000000000", `{}`, &e); code != 401 {
		t.Errorf("wrong key: %d", code)
	}
	checkOnly := h.key(prefsync.ScopeCheck)
	if code := h.do("POST", "/v1/events", checkOnly, optOut("a@example.com", "email", "*"), &e); code != 403 || e.Error.Code != "forbidden" {
		t.Errorf("check key writing events: %d %+v", code, e)
	}
	if code := h.do("GET", "/v1/contacts?email=a@example.com", checkOnly, nil, &e); code != 403 {
		t.Errorf("check key exporting contacts: %d", code)
	}
	var keys struct{ Keys []prefsync.APIKey }
	h.do("GET", "/v1/keys", adminKey, nil, &keys)
	var id string
	for _, k := range keys.Keys {
		if k.Name == "sys-check" {
			id = k.ID
		}
	}
	if code := h.do("DELETE", "/v1/keys/"+id, adminKey, nil, nil); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	if code := h.do("POST", "/v1/check", checkOnly, `{}`, &e); code != 401 {
		t.Errorf("revoked key: %d", code)
	}
	// Public routes need no key.
	for _, p := range []string{"/healthz", "/metrics", "/v1/openapi.json"} {
		if code := h.do("GET", p, "", nil, nil); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
}

func TestEventsAndCheck(t *testing.T) {
	h := newHarness(t)
	writer := h.key(prefsync.ScopeEventsWrite, prefsync.ScopeCheck)
	var res results
	if code := h.do("POST", "/v1/events", writer, optOut("Ana@Example.com", "email", "*"), &res); code != 200 || res.Results[0]["status"] != "applied" {
		t.Fatalf("event: %d %+v", code, res)
	}
	// The check right after the 200 sees the opt-out, whatever form the address takes.
	var chk results
	h.do("POST", "/v1/check", writer, map[string]any{"channel": "email", "topic": "product_updates",
		"recipients": []map[string]any{{"email": " ana@EXAMPLE.com"}, {"email": "other@example.com"}}}, &chk)
	if len(chk.Results) != 2 || chk.Results[0]["allowed"] != false || chk.Results[0]["reason"] != "opted_out:(email,*)" ||
		chk.Results[0]["version"] != 1.0 || chk.Results[1]["allowed"] != true {
		t.Errorf("check: %+v", chk)
	}
	// A batch: one result per event, in order.
	h.do("POST", "/v1/events", writer, map[string]any{"events": []any{
		optOut("b@example.com", "sms", "*"),
		map[string]any{"subject": map[string]any{"email": "ana@example.com"}, "channel": "email", "topic": "*", "state": "opted_in",
			"evidence": map[string]any{"method": "implicit"}, "occurred_at": t0.Add(time.Minute).Format(time.RFC3339)},
		map[string]any{"subject": map[string]any{"email": "ana@example.com"}, "channel": "*", "topic": "*", "paused_until": t0.Add(time.Hour).Format(time.RFC3339)},
	}}, &res)
	if len(res.Results) != 3 || res.Results[0]["status"] != "applied" || res.Results[1]["status"] != "rejected" || res.Results[2]["status"] != "applied" {
		t.Errorf("batch: %+v", res)
	}
	var c map[string]any
	h.do("GET", "/v1/contacts?email=ana@example.com", adminKey, nil, &c)
	if c["version"] != 2.0 || len(c["pauses"].([]any)) != 1 || len(c["decisions"].([]any)) != 12 {
		t.Errorf("contact: %+v", c)
	}
	var hist struct{ Events []prefsync.AuditEntry }
	h.do("GET", "/v1/contacts/"+c["id"].(string)+"/history", adminKey, nil, &hist)
	if len(hist.Events) != 3 || hist.Events[1].Status != prefsync.Rejected || hist.Events[1].StatusReason != prefsync.ReasonNotExplicitAfterOut {
		t.Errorf("history: %+v", hist)
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t)
	big := `{"events":[` + strings.Repeat(`{"subject":{"email":"a@example.com"},"channel":"email","topic":"*","state":"opted_out"},`, 1000) + `{}]}`
	for _, tc := range []struct {
		name, body, code, field string
		status                  int
	}{
		{"Malformed", `{"subject":`, "invalid", "", 400},
		{"Empty", ``, "invalid", "", 400},
		{"UnknownField", `{"subject":{"email":"a@example.com"},"channel":"email","topic":"*","state":"opted_out","colour":"red"}`, "invalid", "colour", 400},
		{"WrongType", `{"subject":{"email":5},"channel":"email","topic":"*","state":"opted_out"}`, "invalid", "subject.email", 400},
		{"UnknownChannel", `{"subject":{"email":"a@example.com"},"channel":"fax","topic":"*","state":"opted_out"}`, "invalid", "channel", 400},
		{"BadEmail", `{"subject":{"email":"not-an-address"},"channel":"email","topic":"*","state":"opted_out"}`, "invalid", "subject.email", 400},
		{"BadPhone", `{"subject":{"phone":"12"},"channel":"sms","topic":"*","state":"opted_out"}`, "invalid", "subject.phone", 400},
		{"BadTime", `{"subject":{"email":"a@example.com"},"channel":"email","topic":"*","state":"opted_out","occurred_at":"1 March"}`, "invalid", "occurred_at", 400},
		{"EmptySubject", `{"subject":{},"channel":"email","topic":"*","state":"opted_out"}`, "invalid", "subject", 400},
		{"BatchWithBadEvent", `{"events":[{"subject":{"email":"first@example.com"},"channel":"email","topic":"*","state":"opted_out"},{"subject":{"email":"a@example.com"},"channel":"email","topic":"*","state":"sideways"}]}`, "invalid", "events[1].state", 400},
		{"BatchWithUnknownField", `{"events":[{"subject":{"email":"first@example.com"},"channel":"email","topic":"*","state":"opted_out"},{"subj":{}}]}`, "invalid", "events[1].subj", 400},
		{"EmptyBatch", `{"events":[]}`, "invalid", "events", 400},
		{"Oversized", big, "too_large", "", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e apiError
			status := h.do("POST", "/v1/events", adminKey, tc.body, &e)
			if status != tc.status || e.Error.Code != tc.code || e.Error.Field != tc.field || e.Error.Message == "" {
				t.Errorf("%d %+v, want %d %s on %q", status, e.Error, tc.status, tc.code, tc.field)
			}
		})
	}
	// Nothing of the refused batches was written.
	var e apiError
	if code := h.do("GET", "/v1/contacts?email=first@example.com", adminKey, nil, &e); code != 404 {
		t.Errorf("refused batch left a contact: %d", code)
	}
	if rep, _ := h.hub.Store.VerifyAudit(context.Background()); rep.Entries != 0 {
		t.Errorf("refused input left %d audit entries", rep.Entries)
	}
	for _, tc := range []struct{ path, body, field string }{
		{"/v1/check", `{"channel":"email","topic":"gossip","recipients":[{"email":"a@example.com"}]}`, "topic"},
		{"/v1/check", `{"channel":"sms","topic":"newsletter","recipients":[{"email":"a@example.com"}]}`, "topic"},
		{"/v1/check", `{"channel":"email","topic":"promotions","recipients":[{"email":"a@example.com"},{"email":"x"}]}`, "recipients[1].email"},
		{"/v1/check", `{"channel":"email","topic":"promotions","recipients":[]}`, "recipients"},
		{"/v1/contacts", `{"jurisdiction":"US"}`, "email"},
		{"/v1/contacts", `{"email":"a@example.com","jurisdiction":"Germany"}`, "jurisdiction"},
		{"/v1/contacts", `{"email":"a@example.com","locale":"English please"}`, "locale"},
		{"/v1/suppressions", `{"address":"a@example.com","reason":"annoyed"}`, "reason"},
		{"/v1/keys", `{"name":"x","scopes":["root"]}`, "scopes"},
	} {
		var e apiError
		if code := h.do("POST", tc.path, adminKey, tc.body, &e); code != 400 || e.Error.Field != tc.field {
			t.Errorf("POST %s %s: %d %+v, want 400 on %q", tc.path, tc.body, code, e.Error, tc.field)
		}
	}
	for _, p := range []string{"/v1/contacts/c_nope", "/v1/contacts/c_nope/history", "/v1/contacts/" + prefsync.ContactIDFromNumber(3)} {
		if code := h.do("GET", p, adminKey, nil, &e); code != 404 || e.Error.Code != "not_found" {
			t.Errorf("GET %s: %d %+v", p, code, e)
		}
	}
	if code := h.do("POST", "/v1/check", adminKey, `{"channel":"email","topic":"promotions","recipients":[{"contact_id":"nonsense"}]}`, &e); code != 400 || e.Error.Field != "recipients[0].contact_id" {
		t.Errorf("check with a malformed contact id: %d %+v", code, e)
	}
	if code := h.do("GET", "/v1/nowhere", adminKey, nil, &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("unknown route: %d %+v", code, e)
	}
	if code := h.do("GET", "/v1/events", adminKey, nil, &e); code != 405 || !strings.Contains(e.Error.Message, "POST") {
		t.Errorf("wrong method: %d %+v", code, e)
	}
	if code := h.do("POST", "/v1/events", adminKey, `{"subject":{"email":"a@example.com"},"channel":"email","topic":"*","state":7}`, &e); code != 400 ||
		e.Error.Message != "state must be a string, not number" {
		t.Errorf("type error names JSON types: %d %+v", code, e)
	}
}

func TestContactsAndMerge(t *testing.T) {
	h := newHarness(t)
	var a, b, merged map[string]any
	h.do("POST", "/v1/contacts", adminKey, `{"email":"ana@example.com","jurisdiction":"us","external_ids":[{"system":"salesforce","id":"003A"}]}`, &a)
	h.do("POST", "/v1/contacts", adminKey, `{"phone":"+1 415 555 2671"}`, &b)
	if a["jurisdiction"] != "US" || b["phones"].([]any)[0] != "+14155552671" {
		t.Fatalf("created %v and %v", a, b)
	}
	var e apiError
	if code := h.do("POST", "/v1/contacts", adminKey, `{"email":"ana@example.com","phone":"+14155552671"}`, &e); code != 409 || e.Error.Code != "conflict" {
		t.Errorf("identifiers of two contacts: %d %+v", code, e)
	}
	var res results
	h.do("POST", "/v1/events", adminKey, optOut("ana@example.com", "sms", "promotions"), &res)
	if code := h.do("POST", "/v1/contacts/"+a["id"].(string)+"/merge", adminKey, map[string]any{"contact_id": b["id"]}, &merged); code != 200 {
		t.Fatalf("merge: %d %v", code, merged)
	}
	var found map[string]any
	h.do("GET", "/v1/contacts?phone=%2B14155552671", adminKey, nil, &found)
	if found["id"] != a["id"] {
		t.Errorf("phone finds %v after merge, want %v", found["id"], a["id"])
	}
	h.do("GET", "/v1/contacts?external_system=salesforce&external_id=003A", adminKey, nil, &found)
	if found["id"] != a["id"] {
		t.Errorf("external id finds %v", found["id"])
	}
	// The merged contact's opt-out now applies to the phone number too.
	var chk results
	h.do("POST", "/v1/check", adminKey, `{"channel":"sms","topic":"promotions","recipients":[{"phone":"+14155552671"}]}`, &chk)
	if chk.Results[0]["allowed"] != false {
		t.Errorf("check after merge: %+v", chk)
	}
}

func TestSuppression(t *testing.T) {
	h := newHarness(t)
	var sup map[string]any
	if code := h.do("POST", "/v1/suppressions", adminKey, `{"address":"Bounced@Example.com","reason":"hard_bounce"}`, &sup); code != 201 || sup["address"] != "bounced@example.com" {
		t.Fatalf("suppress: %d %v", code, sup)
	}
	var chk results
	h.do("POST", "/v1/check", adminKey, `{"channel":"email","topic":"account","recipients":[{"email":"bounced@example.com"}]}`, &chk)
	if chk.Results[0]["allowed"] != false || chk.Results[0]["reason"] != "suppressed:hard_bounce" {
		t.Errorf("suppressed transactional: %+v", chk)
	}

	// Lifting takes an admin key and the address in any form, and ends the suppression
	// at once; the answer records who lifted it.
	if code := h.do("DELETE", "/v1/suppressions/bounced@example.com", h.key(prefsync.ScopeEventsWrite), nil, nil); code != 403 {
		t.Errorf("lift with an events:write key: %d", code)
	}
	var lifted map[string]any
	if code := h.do("DELETE", "/v1/suppressions/Bounced@Example.com", adminKey, nil, &lifted); code != 200 ||
		lifted["reason"] != "hard_bounce" || lifted["lifted_by"] != "admin" || lifted["lifted_at"] == nil {
		t.Errorf("lift: %d %v", code, lifted)
	}
	chk = results{}
	h.do("POST", "/v1/check", adminKey, `{"channel":"email","topic":"account","recipients":[{"email":"bounced@example.com"}]}`, &chk)
	if chk.Results[0]["allowed"] != true {
		t.Errorf("transactional after the lift: %+v", chk)
	}
	var list struct{ Suppressions []any }
	if h.do("GET", "/v1/suppressions", adminKey, nil, &list); len(list.Suppressions) != 0 {
		t.Errorf("suppressions after the lift: %v", list)
	}
	var e apiError
	if code := h.do("DELETE", "/v1/suppressions/bounced@example.com", adminKey, nil, &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("lift again: %d %+v", code, e)
	}
	e = apiError{}
	if code := h.do("DELETE", "/v1/suppressions/not-an-address", adminKey, nil, &e); code != 400 || e.Error.Field != "address" {
		t.Errorf("lift a bad address: %d %+v", code, e)
	}
	// A contact with two addresses suppressed stays suppressed when one is lifted,
	// whichever address a check names.
	var one, two map[string]any
	h.do("POST", "/v1/contacts", adminKey, `{"email":"one@example.com"}`, &one)
	h.do("POST", "/v1/contacts", adminKey, `{"email":"two@example.com"}`, &two)
	if code := h.do("POST", "/v1/contacts/"+one["id"].(string)+"/merge", adminKey, map[string]any{"contact_id": two["id"]}, nil); code != 200 {
		t.Fatalf("merge: %d", code)
	}
	h.do("POST", "/v1/suppressions", adminKey, `{"address":"one@example.com","reason":"manual"}`, nil)
	h.do("POST", "/v1/suppressions", adminKey, `{"address":"two@example.com","reason":"hard_bounce"}`, nil)
	if code := h.do("DELETE", "/v1/suppressions/two@example.com", adminKey, nil, nil); code != 200 {
		t.Errorf("lift two: %d", code)
	}
	chk = results{}
	h.do("POST", "/v1/check", adminKey, `{"channel":"email","topic":"account","recipients":[{"email":"two@example.com"},{"contact_id":"`+one["id"].(string)+`"}]}`, &chk)
	for i, r := range chk.Results {
		if r["allowed"] != false || r["reason"] != "suppressed:manual" {
			t.Errorf("contact with one of two addresses lifted, recipient %d: %v", i, r)
		}
	}

	h.do("POST", "/v1/suppressions", adminKey, `{"address":"+1 415 555 2671","reason":"erased"}`, nil)
	sup = nil
	if code := h.do("POST", "/v1/suppressions", adminKey, `{"address":"+14155552671","reason":"manual"}`, &sup); code != 201 || sup["reason"] != "erased" {
		t.Errorf("re-suppress an erased contact's number: %d %v", code, sup)
	}
	e = apiError{}
	if code := h.do("DELETE", "/v1/suppressions/%2B14155552671", adminKey, nil, &e); code != 409 || e.Error.Code != "conflict" {
		t.Errorf("lift an erased contact's number: %d %+v", code, e)
	}
}

func TestStreamCheck(t *testing.T) {
	h := newHarness(t)
	h.do("POST", "/v1/events", adminKey, optOut("u3@example.com", "email", "*"), nil)
	const n = 20000
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriter(pw)
		for i := range n {
			switch i {
			case 5:
				fmt.Fprintln(w, `not json`)
			case 6:
				fmt.Fprintln(w, `{"email":"x"}`)
			case 7:
				fmt.Fprintln(w, `{"external_id":{"system":"crm","id":"7"}}`)
			case 8:
				fmt.Fprintln(w, ``) // blank lines are skipped
				fmt.Fprintln(w, `{"email":"U3@example.com"}`)
			default:
				fmt.Fprintf(w, "{\"email\":\"u%d@example.com\"}\n", i)
			}
		}
		w.Flush()
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.ts.URL+"/v1/check?channel=email&topic=product_updates", pr)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	i := 0
	for sc.Scan() {
		var d struct {
			Allowed bool
			Reason  string
			Error   *struct{ Field string }
		}
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("line %d: %q: %v", i, sc.Text(), err)
		}
		switch i {
		case 3, 8:
			if d.Allowed || d.Reason != "opted_out:(email,*)" {
				t.Errorf("line %d: %+v", i, d)
			}
		case 5, 6:
			if d.Allowed || d.Reason != "invalid_recipient" || d.Error == nil {
				t.Errorf("line %d: %+v", i, d)
			}
		default:
			if !d.Allowed {
				t.Errorf("line %d: %+v", i, d)
			}
		}
		i++
	}
	if i != n {
		t.Errorf("%d results for %d lines", i, n)
	}
	var e apiError
	req, _ = http.NewRequest("POST", h.ts.URL+"/v1/check?channel=email", strings.NewReader("{}\n"))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/x-ndjson")
	res2, _ := http.DefaultClient.Do(req)
	json.NewDecoder(res2.Body).Decode(&e)
	res2.Body.Close()
	if res2.StatusCode != 400 || e.Error.Field != "topic" {
		t.Errorf("stream without topic: %d %+v", res2.StatusCode, e)
	}
}

// TestOpenAPICoversRoutes keeps the OpenAPI document true: every route the server
// registers is documented with its method, and nothing undocumented is served.
func TestOpenAPICoversRoutes(t *testing.T) {
	h := newHarness(t)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if code := h.do("GET", "/v1/openapi.json", "", nil, &doc); code != 200 {
		t.Fatalf("openapi: %d", code)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]map[string]any{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if method != "parameters" {
				documented[strings.ToUpper(method)+" "+path] = op
			}
		}
	}
	for _, r := range h.srv.Routes() {
		key := r.Method + " " + r.Path
		op, ok := documented[key]
		if !ok {
			t.Errorf("route %s is not in openapi.json", key)
		} else if r.Scope != "" && r.Scope != "*" && op["x-required-scope"] != r.Scope {
			t.Errorf("route %s needs the scope %s; openapi.json says %v", key, r.Scope, op["x-required-scope"])
		}
		delete(documented, key)
	}
	for k := range documented {
		t.Errorf("openapi.json documents %s, which the server does not serve", k)
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	h.do("POST", "/v1/events", adminKey, optOut("a@example.com", "email", "*"), nil)
	h.do("POST", "/v1/check", adminKey, `{"channel":"email","topic":"promotions","recipients":[{"email":"a@example.com"}]}`, nil)
	res, err := http.Get(h.ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`prefsync_events_total{status="applied"} 1`,
		`prefsync_check_decisions_total{allowed="false"} 1`,
		`prefsync_http_requests_total{code="200",route="POST /v1/events"} 1`,
		`prefsync_index_contacts 1`,
		`prefsync_ingest_commit_seconds_count 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
