package prefsync

// Any is the wildcard of a scope: every channel, or every topic.
const Any = "*"

// Scope is what a preference is about: a channel and a topic, either of which may be Any.
type Scope struct {
	Channel string `json:"channel"`
	Topic   string `json:"topic"`
}

// String renders the scope the way decision reasons name it: "(email,*)".
func (s Scope) String() string { return "(" + s.Channel + "," + s.Topic + ")" }

// State is the preference state of a scope.
type State string

// The preference states.
const (
	OptedIn  State = "opted_in"
	OptedOut State = "opted_out"
	NotSet   State = "not_set"
)

// Method is how consent was given.
type Method string

// The consent methods.
const (
	Explicit      Method = "explicit"
	Implicit      Method = "implicit"
	Grandfathered Method = "grandfathered"
)

// Touchpoint is where a change was made.
type Touchpoint string

// The touchpoints.
const (
	EmailLink        Touchpoint = "email_link"
	OneClick         Touchpoint = "one_click"
	PreferenceCenter Touchpoint = "preference_center"
	SMSKeyword       Touchpoint = "sms_keyword"
	Support          Touchpoint = "support"
	API              Touchpoint = "api"
	Import           Touchpoint = "import"
	ESPWebhook       Touchpoint = "esp_webhook"
	CRMSync          Touchpoint = "crm_sync"
)

var touchpoints = map[Touchpoint]bool{
	EmailLink: true, OneClick: true, PreferenceCenter: true, SMSKeyword: true,
	Support: true, API: true, Import: true, ESPWebhook: true, CRMSync: true,
}

var methods = map[Method]bool{Explicit: true, Implicit: true, Grandfathered: true}
