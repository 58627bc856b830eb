package http

import (
	"encoding/json"
	"testing"

	"prefsync"
)

// FuzzParseRecipient holds the fast recipient parser to the full decoder: whatever line it
// accepts, the strict decoder reads the same subject from it.
func FuzzParseRecipient(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@example.com"}`, `{ "phone" : "+14155552671" , "email":"x@y.z" }`, `{}`,
		`{"contact_id":"c_0123456789abc"}`, `{"email":"a\"b@example.com"}`, `{"email":1}`, `{"email":"a","email":"b"}`,
		`{"external_id":{"system":"crm","id":"1"}}`, `{"email":"a@example.com"} x`, `{"email":"é@example.com"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast prefsync.Subject
		if !parseRecipient(line, &fast) {
			return
		}
		var full prefsync.Subject
		if err := unmarshalStrict(line, &full); err != nil {
			t.Fatalf("fast path accepted %q, the decoder refuses it: %v", line, err)
		}
		a, _ := json.Marshal(fast)
		b, _ := json.Marshal(full)
		if string(a) != string(b) {
			t.Fatalf("%q: fast path read %s, the decoder %s", line, a, b)
		}
	})
}

// FuzzParseCheckRequest holds the fast check-request parser to the full decoder.
func FuzzParseCheckRequest(f *testing.F) {
	for _, seed := range []string{
		`{"channel":"email","topic":"promotions","recipients":[{"email":"a@example.com"}]}`,
		"{ \"recipients\" : [ {\"phone\":\"+14155552671\"} , {\"contact_id\":\"c_1\"} ] ,\n\"channel\":\"sms\" }",
		`{}`, `{"recipients":[]}`, `{"recipients":[{},]}`, `{"channel":"email",}`, `{"recipients":null}`,
		`{"channel":"email","channel":"sms","recipients":[{"email":"a"}]}`, `{"topic":1}`, `{"recipients":[{"email":"a"}]} {}`,
		`{"recipients":[{"email":"a@x.com","phone":"+1"}],"recipients":[{"email":"b@x.com"}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast checkRequest
		if !parseCheckRequest(body, &fast) {
			return
		}
		var full checkRequest
		if err := unmarshalStrict(body, &full); err != nil {
			t.Fatalf("fast path accepted %q, the decoder refuses it: %v", body, err)
		}
		a, _ := json.Marshal(fast)
		b, _ := json.Marshal(full)
		if string(a) != string(b) {
			t.Fatalf("%q: fast path read %s, the decoder %s", body, a, b)
		}
	})
}
