package prefsync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TopicKind says how a topic may be sent.
type TopicKind string

// The topic kinds.
const (
	// Transactional topics cannot be opted out of.
	Transactional TopicKind = "transactional"
	// Relationship topics are sent unless opted out.
	Relationship TopicKind = "relationship"
	// Marketing topics need opt-in where the contact's jurisdiction requires it.
	Marketing TopicKind = "marketing"
)

// Channel is a way to reach someone, as the dictionary describes it.
type Channel struct {
	Name         string            `json:"name"`
	Descriptions map[string]string `json:"descriptions,omitempty"`
}

// Topic is what a message is about, as the dictionary describes it.
type Topic struct {
	Name         string            `json:"name"`
	Kind         TopicKind         `json:"kind"`
	Channels     []string          `json:"channels"`
	Descriptions map[string]string `json:"descriptions,omitempty"`
	Frequency    map[string]string `json:"frequency,omitempty"`
}

// Jurisdictions holds the rules that depend on where a contact lives.
type Jurisdictions struct {
	// Groups name sets of countries, such as "EU", usable in OptInRequired.
	Groups map[string][]string `json:"groups,omitempty"`
	// OptInRequired lists countries, subdivisions or groups where marketing needs opt-in.
	OptInRequired []string `json:"opt_in_required"`
	// UnknownRequiresOptIn applies opt-in to contacts with no jurisdiction.
	UnknownRequiresOptIn bool `json:"unknown_requires_opt_in"`
	// ImpliedConsentExpiry says how long implied consent lasts, per country, subdivision
	// or group ("730d", "8760h"); "*" sets it everywhere else.
	ImpliedConsentExpiry map[string]string `json:"implied_consent_expiry,omitempty"`
}

// Dictionary is the preference dictionary: the channels, the topics and their kinds, and
// the jurisdiction rules. It is read-only once loaded and safe for concurrent use.
type Dictionary struct {
	Channels       []Channel     `json:"channels"`
	Topics         []Topic       `json:"topics"`
	Jurisdictions  Jurisdictions `json:"jurisdictions"`
	ConflictWindow string        `json:"conflict_window,omitempty"`

	window     time.Duration
	channelIDs map[string]uint8 // 0 is Any
	topicIDs   map[string]uint8 // 0 is Any
	onChannel  map[[2]uint8]bool
	kinds      []TopicKind // by topic id
	optIn      map[string]bool
	expiry     map[string]time.Duration
	policies   []policy
	outReasons []string
	inReasons  []string
	expReasons []string
}

type policy struct {
	optIn  bool
	expiry time.Duration
}

// DefaultDictionaryJSON is the built-in dictionary of SPEC §3.
const DefaultDictionaryJSON = `{
  "channels": [
    {"name": "email", "descriptions": {"en": "Email", "fr": "E-mail", "de": "E-Mail", "es": "Correo electrónico"}},
    {"name": "sms", "descriptions": {"en": "Text messages", "fr": "SMS", "de": "SMS", "es": "SMS"}},
    {"name": "whatsapp", "descriptions": {"en": "WhatsApp", "fr": "WhatsApp", "de": "WhatsApp", "es": "WhatsApp"}},
    {"name": "push", "descriptions": {"en": "Push notifications", "fr": "Notifications push", "de": "Push-Benachrichtigungen", "es": "Notificaciones push"}},
    {"name": "voice", "descriptions": {"en": "Phone calls", "fr": "Appels téléphoniques", "de": "Anrufe", "es": "Llamadas"}},
    {"name": "direct_mail", "descriptions": {"en": "Post", "fr": "Courrier postal", "de": "Post", "es": "Correo postal"}},
    {"name": "ads", "descriptions": {"en": "Personalised ads", "fr": "Publicité personnalisée", "de": "Personalisierte Werbung", "es": "Anuncios personalizados"}}
  ],
  "topics": [
    {"name": "account", "kind": "transactional", "channels": ["email", "sms", "push"],
     "descriptions": {"en": "Orders, receipts and security notices", "fr": "Commandes, reçus et alertes de sécurité", "de": "Bestellungen, Belege und Sicherheitshinweise", "es": "Pedidos, recibos y avisos de seguridad"},
     "frequency": {"en": "When something happens", "fr": "Quand cela se produit", "de": "Bei Bedarf", "es": "Cuando ocurre"}},
    {"name": "product_updates", "kind": "relationship", "channels": ["email", "push"],
     "descriptions": {"en": "News about the products you use", "fr": "Nouveautés des produits que vous utilisez", "de": "Neuigkeiten zu Ihren Produkten", "es": "Novedades de los productos que usa"},
     "frequency": {"en": "About once a month", "fr": "Environ une fois par mois", "de": "Etwa einmal im Monat", "es": "Aproximadamente una vez al mes"}},
    {"name": "newsletter", "kind": "marketing", "channels": ["email"],
     "descriptions": {"en": "Our newsletter", "fr": "Notre lettre d'information", "de": "Unser Newsletter", "es": "Nuestro boletín"},
     "frequency": {"en": "Weekly", "fr": "Hebdomadaire", "de": "Wöchentlich", "es": "Semanal"}},
    {"name": "promotions", "kind": "marketing", "channels": ["email", "sms", "whatsapp", "push", "ads"],
     "descriptions": {"en": "Offers and discounts", "fr": "Offres et réductions", "de": "Angebote und Rabatte", "es": "Ofertas y descuentos"},
     "frequency": {"en": "A few times a month", "fr": "Quelques fois par mois", "de": "Einige Male im Monat", "es": "Varias veces al mes"}},
    {"name": "events", "kind": "marketing", "channels": ["email"],
     "descriptions": {"en": "Invitations to events and webinars", "fr": "Invitations à des événements", "de": "Einladungen zu Veranstaltungen", "es": "Invitaciones a eventos"},
     "frequency": {"en": "Occasionally", "fr": "De temps en temps", "de": "Gelegentlich", "es": "Ocasionalmente"}}
  ],
  "jurisdictions": {
    "groups": {
      "EU": ["AT","BE","BG","HR","CY","CZ","DK","EE","FI","FR","DE","GR","HU","IE","IT","LV","LT","LU","MT","NL","PL","PT","RO","SK","SI","ES","SE"],
      "EEA": ["IS","LI","NO"]
    },
    "opt_in_required": ["EU", "EEA", "GB", "CA"],
    "unknown_requires_opt_in": true,
    "implied_consent_expiry": {"CA": "730d"}
  },
  "conflict_window": "1s"
}`

// DefaultDictionary returns the built-in dictionary.
func DefaultDictionary() *Dictionary {
	d, err := ParseDictionary(strings.NewReader(DefaultDictionaryJSON))
	if err != nil {
		panic("built-in dictionary: " + err.Error())
	}
	return d
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ParseDictionary reads and validates a dictionary in JSON. Errors name the line or the
// field at fault.
func ParseDictionary(r io.Reader) (*Dictionary, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read dictionary: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Dictionary
	if err := dec.Decode(&d); err != nil {
		return nil, dictionarySyntaxError(data, dec, err)
	}
	if err := d.compile(); err != nil {
		return nil, err
	}
	return &d, nil
}

func dictionarySyntaxError(data []byte, dec *json.Decoder, err error) error {
	offset := dec.InputOffset()
	field := ""
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset
	case errors.As(err, &typ):
		offset, field = typ.Offset, typ.Field
	}
	line := 1 + bytes.Count(data[:min(int(offset), len(data))], []byte("\n"))
	return FieldErrorf(field, "dictionary line %d: %s", line, strings.TrimPrefix(err.Error(), "json: "))
}

func (d *Dictionary) compile() error {
	window := time.Second
	if d.ConflictWindow != "" {
		w, err := ParseDuration(d.ConflictWindow)
		if err != nil || w < 0 {
			return FieldErrorf("conflict_window", "dictionary: %q is not a duration like \"1s\"", d.ConflictWindow)
		}
		window = w
	}
	d.window = window
	if len(d.Channels) == 0 || len(d.Channels) > 254 {
		return FieldErrorf("channels", "dictionary: needs between 1 and 254 channels")
	}
	if len(d.Topics) == 0 || len(d.Topics) > 254 {
		return FieldErrorf("topics", "dictionary: needs between 1 and 254 topics")
	}
	d.channelIDs = map[string]uint8{Any: 0}
	for i, c := range d.Channels {
		f := fmt.Sprintf("channels[%d].name", i)
		if !nameRE.MatchString(c.Name) {
			return FieldErrorf(f, "dictionary: channel name %q must be lower-case letters, digits and _", c.Name)
		}
		if _, dup := d.channelIDs[c.Name]; dup {
			return FieldErrorf(f, "dictionary: channel %q is listed twice", c.Name)
		}
		d.channelIDs[c.Name] = uint8(i + 1)
	}
	d.topicIDs = map[string]uint8{Any: 0}
	d.kinds = []TopicKind{""}
	d.onChannel = map[[2]uint8]bool{}
	for i, t := range d.Topics {
		f := fmt.Sprintf("topics[%d]", i)
		if !nameRE.MatchString(t.Name) {
			return FieldErrorf(f+".name", "dictionary: topic name %q must be lower-case letters, digits and _", t.Name)
		}
		if _, dup := d.topicIDs[t.Name]; dup {
			return FieldErrorf(f+".name", "dictionary: topic %q is listed twice", t.Name)
		}
		switch t.Kind {
		case Transactional, Relationship, Marketing:
		default:
			return FieldErrorf(f+".kind", "dictionary: topic %q has kind %q; want transactional, relationship or marketing", t.Name, t.Kind)
		}
		if len(t.Channels) == 0 {
			return FieldErrorf(f+".channels", "dictionary: topic %q lists no channels", t.Name)
		}
		id := uint8(i + 1)
		d.topicIDs[t.Name] = id
		d.kinds = append(d.kinds, t.Kind)
		for j, c := range t.Channels {
			cid, ok := d.channelIDs[c]
			if !ok || c == Any {
				return FieldErrorf(fmt.Sprintf("%s.channels[%d]", f, j), "dictionary: topic %q names unknown channel %q", t.Name, c)
			}
			d.onChannel[[2]uint8{cid, id}] = true
		}
	}
	if err := d.compileJurisdictions(); err != nil {
		return err
	}
	d.compileScopes()
	return nil
}

var jurisdictionRE = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)

func (d *Dictionary) compileJurisdictions() error {
	j := d.Jurisdictions
	expand := func(field, code string) ([]string, error) {
		if members, ok := j.Groups[code]; ok {
			return members, nil
		}
		if code == Any || jurisdictionRE.MatchString(code) {
			return []string{code}, nil
		}
		return nil, FieldErrorf(field, "dictionary: %q is neither an ISO 3166 code nor a group", code)
	}
	for name, members := range j.Groups {
		for i, m := range members {
			if !jurisdictionRE.MatchString(m) {
				return FieldErrorf(fmt.Sprintf("jurisdictions.groups.%s[%d]", name, i), "dictionary: %q is not an ISO 3166 code", m)
			}
		}
	}
	d.optIn = map[string]bool{}
	for i, code := range j.OptInRequired {
		codes, err := expand(fmt.Sprintf("jurisdictions.opt_in_required[%d]", i), code)
		if err != nil {
			return err
		}
		for _, c := range codes {
			d.optIn[c] = true
		}
	}
	d.expiry = map[string]time.Duration{}
	keys := make([]string, 0, len(j.ImpliedConsentExpiry))
	for k := range j.ImpliedConsentExpiry {
		keys = append(keys, k)
	}
	sort.Strings(keys) // groups first would be arbitrary; a sorted order makes overlaps deterministic
	for _, k := range keys {
		field := "jurisdictions.implied_consent_expiry." + k
		dur, err := ParseDuration(j.ImpliedConsentExpiry[k])
		if err != nil || dur <= 0 {
			return FieldErrorf(field, "dictionary: %q is not a positive duration like \"730d\"", j.ImpliedConsentExpiry[k])
		}
		codes, err := expand(field, k)
		if err != nil {
			return err
		}
		for _, c := range codes {
			d.expiry[c] = dur
		}
	}
	// The distinct policies are few; contacts refer to them by a small index.
	seen := map[policy]bool{}
	add := func(p policy) {
		if !seen[p] {
			seen[p] = true
			d.policies = append(d.policies, p)
		}
	}
	add(d.policyOf(""))
	for _, opt := range []bool{false, true} {
		add(policy{optIn: opt, expiry: d.expiry[Any]})
		for _, e := range d.expiry {
			add(policy{optIn: opt, expiry: e})
		}
	}
	return nil
}

func (d *Dictionary) policyOf(jurisdiction string) policy {
	if jurisdiction == "" {
		return policy{optIn: d.Jurisdictions.UnknownRequiresOptIn, expiry: d.expiry[Any]}
	}
	country, _, _ := strings.Cut(jurisdiction, "-")
	p := policy{optIn: d.optIn[jurisdiction] || d.optIn[country], expiry: d.expiry[Any]}
	if e, ok := d.expiry[country]; ok {
		p.expiry = e
	}
	if e, ok := d.expiry[jurisdiction]; ok {
		p.expiry = e
	}
	return p
}

// PolicyID returns the small index of the jurisdiction's rules, as Facts keep it.
func (d *Dictionary) PolicyID(jurisdiction string) uint8 {
	p := d.policyOf(jurisdiction)
	for i, q := range d.policies {
		if q == p {
			return uint8(i)
		}
	}
	panic("prefsync: jurisdiction policy missing from table")
}

// OptInRequired reports whether marketing needs opt-in in the jurisdiction.
func (d *Dictionary) OptInRequired(jurisdiction string) bool { return d.policyOf(jurisdiction).optIn }

// ConflictWindowDuration is the window within which two events tie.
func (d *Dictionary) ConflictWindowDuration() time.Duration { return d.window }

func (d *Dictionary) compileScopes() {
	n := (len(d.Channels) + 1) * (len(d.Topics) + 1)
	d.outReasons = make([]string, n)
	d.inReasons = make([]string, n)
	d.expReasons = make([]string, n)
	chans := append([]string{Any}, channelNames(d.Channels)...)
	tops := append([]string{Any}, topicNames(d.Topics)...)
	for ci, c := range chans {
		for ti, t := range tops {
			id := ci*(len(tops)) + ti
			s := Scope{Channel: c, Topic: t}
			d.outReasons[id] = "opted_out:" + s.String()
			d.inReasons[id] = "opted_in:" + s.String()
			d.expReasons[id] = "consent_expired:" + s.String()
		}
	}
}

func channelNames(cs []Channel) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Name
	}
	return out
}

func topicNames(ts []Topic) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

// ScopeID is a scope's compact number within a dictionary.
type ScopeID uint16

// ScopeID returns the compact number of a valid scope.
func (d *Dictionary) ScopeID(s Scope) ScopeID {
	return d.scopeID(d.channelIDs[s.Channel], d.topicIDs[s.Topic])
}

func (d *Dictionary) scopeID(c, t uint8) ScopeID {
	return ScopeID(int(c)*(len(d.Topics)+1) + int(t))
}

// ValidateScope checks that channel and topic are known and that the topic exists on the
// channel. Wildcards are allowed; a concrete pair must be one the dictionary lists.
func (d *Dictionary) ValidateScope(s Scope) error {
	c, ok := d.channelIDs[s.Channel]
	if !ok {
		return FieldErrorf("channel", "unknown channel %q", s.Channel)
	}
	t, ok := d.topicIDs[s.Topic]
	if !ok {
		return FieldErrorf("topic", "unknown topic %q", s.Topic)
	}
	if c != 0 && t != 0 && !d.onChannel[[2]uint8{c, t}] {
		return FieldErrorf("topic", "topic %q is not sent on channel %q", s.Topic, s.Channel)
	}
	return nil
}

// TopicKind returns the kind of a topic, "" for an unknown one.
func (d *Dictionary) TopicKind(topic string) TopicKind {
	id, ok := d.topicIDs[topic]
	if !ok {
		return ""
	}
	return d.kinds[id]
}

// ParseDuration reads a duration as time.ParseDuration does, and also whole days: "730d".
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
