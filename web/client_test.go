package web

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48"), netip.MustParsePrefix("fe80::/10")}
	for _, c := range []struct {
		name, peer string
		forwarded  []string // X-Forwarded-For fields, in order
		want       string
	}{
		{"direct", "192.0.2.1:5000", nil, "192.0.2.1"},
		{"direct, IPv4 in IPv6", "[::ffff:192.0.2.1]:5000", nil, "192.0.2.1"},
		{"untrusted peer's header ignored", "192.0.2.1:5000", []string{"203.0.113.7"}, "192.0.2.1"},
		{"one proxy", "10.0.0.2:5000", []string{"203.0.113.7"}, "203.0.113.7"},
		{"client's own entry ignored", "10.0.0.2:5000", []string{"198.51.100.9, 203.0.113.7"}, "203.0.113.7"},
		{"two proxies", "10.0.0.2:5000", []string{"198.51.100.9, 203.0.113.7, 10.0.0.3"}, "203.0.113.7"},
		{"several fields", "10.0.0.2:5000", []string{"198.51.100.9", "203.0.113.7,10.0.0.3"}, "203.0.113.7"},
		{"with ports", "10.0.0.2:5000", []string{"203.0.113.7:4711"}, "203.0.113.7"},
		{"IPv6 with port", "[2001:db8:ffff::2]:5000", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"IPv4 in IPv6", "[::ffff:10.0.0.2]:5000", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"proxy by a link-local address with a zone", "[fe80::1%eth0]:5000", []string{"203.0.113.7"}, "203.0.113.7"},
		{"proxies all the way", "10.0.0.2:5000", []string{"10.0.0.4, 10.0.0.3"}, "10.0.0.4"},
		{"no header from a proxy", "10.0.0.2:5000", nil, "10.0.0.2"},
		{"unreadable entry", "10.0.0.2:5000", []string{"203.0.113.7, unknown, 10.0.0.3"}, "10.0.0.3"},
	} {
		r := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		for _, f := range c.forwarded {
			r.Header.Add("X-Forwarded-For", f)
		}
		if got := clientIP(r, proxies); got != c.want {
			t.Errorf("%s: clientIP = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestClientKey(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::9":      "2001:db8:1:2::/64",
		"not an address":       "not an address",
	} {
		if got := clientKey(ip); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", ip, got, want)
		}
	}
}

func TestBrowserLanguage(t *testing.T) {
	for header, want := range map[string]string{
		"":                                    "en",
		"fr-CH":                               "fr",
		"de,en-US;q=0.9,en;q=0.8":             "de", // Chrome set to German
		"fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7": "fr",
		"ja,es;q=0.5,de;q=0.3":                "es", // the best shipped one
		"en;q=0.4, ES;q=0.6":                  "es",
		"it, pt":                              "en", // none shipped
		"de;q=0,fr;q=0.1":                     "fr", // q=0: not wanted
		"de;q=bad, es":                        "es", // a weight that does not read leaves the entry out
		"fr, de;q=2":                          "fr", // and so does one above 1
		"de;level=1;q=0.1, fr;q=0.5":          "fr",
		"de;Q=0.1, fr;q=0.5":                  "fr",
		"de;q= 0.1 , fr;q=0.5":                "fr",
		"*":                                   "en",
	} {
		if got := browserLanguage(header); got != want {
			t.Errorf("browserLanguage(%q) = %q, want %q", header, got, want)
		}
	}
}

func TestInSentence(t *testing.T) {
	for _, c := range []struct{ lang, name, want string }{
		{"en", "Email", "email"}, {"en", "Text messages", "text messages"}, {"en", "SMS", "SMS"},
		{"fr", "WhatsApp", "WhatsApp"}, {"fr", "E-mail", "e-mail"}, {"es", "Correo electrónico", "correo electrónico"},
		{"de", "E-Mail", "E-Mail"}, {"de", "Anrufe", "Anrufe"},
	} {
		if got := inSentence(c.lang, c.name); got != c.want {
			t.Errorf("inSentence(%q, %q) = %q, want %q", c.lang, c.name, got, c.want)
		}
	}
}
