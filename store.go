package prefsync

import (
	"context"
	"time"
)

// Store keeps contacts, the audit trail, suppressions and API keys. It is the truth: the
// check index is rebuilt from it. Every write is durable when the call returns.
type Store interface {
	// ApplyEvents resolves and records events in order, all or none. It returns one
	// result per event and the resulting state of every contact that changed.
	ApplyEvents(ctx context.Context, events []Event) ([]EventResult, []*Contact, error)
	// UpsertContact creates a contact, or updates the one its identifiers find.
	UpsertContact(ctx context.Context, in ContactInput) (*Contact, error)
	// FindContact returns the contact the filter names, or ENOTFOUND.
	FindContact(ctx context.Context, f ContactFilter) (*Contact, error)
	// History returns a contact's audit trail, oldest first.
	History(ctx context.Context, contactID string) ([]AuditEntry, error)
	// MergeContacts folds contact from into contact into: identifiers move, the state is
	// the most restrictive of both, and the merge is audited on both.
	MergeContacts(ctx context.Context, into, from string, src Source, now time.Time) (*Contact, error)
	// MergedContacts maps the id of each contact merged into another to that other's id.
	MergedContacts(ctx context.Context) (map[string]string, error)
	// CountContacts returns how many live contacts there are.
	CountContacts(ctx context.Context) (int, error)
	// EachContact calls fn for every live contact, for rebuilding the index.
	EachContact(ctx context.Context, fn func(*Contact) error) error

	// AddSuppression runs the function AddSuppression in a write transaction: it
	// returns the suppression as it stands and the contact the report was audited on.
	AddSuppression(ctx context.Context, s Suppression) (Suppression, *Contact, error)
	// Suppressions lists the suppressions in force, oldest first.
	Suppressions(ctx context.Context) ([]Suppression, error)
	// LiftSuppression runs the function LiftSuppression in a write transaction.
	LiftSuppression(ctx context.Context, kind, address, by string, at time.Time) (Suppression, *Contact, error)

	// CreateAPIKey stores a new key. With bootstrap set, it does so only on the store's
	// first start, and reports whether it did.
	CreateAPIKey(ctx context.Context, k *APIKey, bootstrap bool) (bool, error)
	// FindAPIKey returns the unrevoked key with the hash, or ENOTFOUND.
	FindAPIKey(ctx context.Context, hash []byte) (*APIKey, error)
	// APIKeys lists keys, without their hashes.
	APIKeys(ctx context.Context) ([]*APIKey, error)
	// RevokeAPIKey revokes the key with the id.
	RevokeAPIKey(ctx context.Context, id string, now time.Time) error

	Outbox

	// CreateInbound stores a new source; ECONFLICT if the name is taken.
	CreateInbound(ctx context.Context, in *Inbound) error
	// Inbounds lists sources by name, with their secrets.
	Inbounds(ctx context.Context) ([]*Inbound, error)
	// DeleteInbound removes a source.
	DeleteInbound(ctx context.Context, name string) error

	// LinkKeys returns the keys that sign links, newest first. A store that has none
	// stores first and returns it, so every hub on the store signs alike.
	LinkKeys(ctx context.Context, first LinkKey) ([]LinkKey, error)

	// VerifyAudit recomputes the audit chain from the first entry.
	VerifyAudit(ctx context.Context) (AuditReport, error)
	// Close releases the store.
	Close() error
}

// Outbox keeps destinations and their deliveries. ApplyEvents records the deliveries of
// every applied event in the event's own transaction: one for each destination that
// wants it (Destination.Wants), whatever the destination's status.
type Outbox interface {
	// CreateDestination stores a new destination; ECONFLICT if the name is taken.
	CreateDestination(ctx context.Context, d *Destination) error
	// UpdateDestination changes what the update sets of the named destination.
	UpdateDestination(ctx context.Context, name string, u DestinationUpdate) error
	// DeleteDestination removes a destination and cancels its pending deliveries.
	DeleteDestination(ctx context.Context, name string) error
	// Destinations lists destinations by name.
	Destinations(ctx context.Context) ([]*Destination, error)

	// Deliveries lists deliveries by id, without their payloads.
	Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// DueDeliveries returns up to limit pending deliveries of a destination whose next
	// attempt is due at now, with their payloads. Part of them are the newest due, the
	// rest the oldest, so a backlog drains without holding back fresh changes.
	DueDeliveries(ctx context.Context, destination string, now time.Time, limit int) ([]Delivery, error)
	// ProbeDelivery returns the pending delivery of a destination that has waited
	// longest for its next attempt, due or not, or ENOTFOUND.
	ProbeDelivery(ctx context.Context, destination string) (*Delivery, error)
	// RecordAttempts records the outcomes of attempts.
	RecordAttempts(ctx context.Context, attempts []Attempt) error
	// ReleaseDeliveries makes every pending delivery of a destination due at now.
	ReleaseDeliveries(ctx context.Context, destination string, now time.Time) (int, error)
	// ExpireDeliveries makes dead the pending deliveries of a destination whose retry
	// schedule started before a time.
	ExpireDeliveries(ctx context.Context, destination string, before time.Time) (int, error)
	// ReplayDeliveries makes the dead deliveries the filter selects pending and due at
	// now, with their retry schedule starting again.
	ReplayDeliveries(ctx context.Context, f DeliveryFilter, now time.Time) (int, error)
	// DeliveryStats returns the backlog of every destination that has one.
	DeliveryStats(ctx context.Context) ([]DeliveryStats, error)
}

// Suppression reasons.
const (
	SuppressedHardBounce    = "hard_bounce"
	SuppressedSpamComplaint = "spam_complaint"
	SuppressedErased        = "erased"
	SuppressedManual        = "manual"
)

var suppressionReasons = []string{"", SuppressedHardBounce, SuppressedSpamComplaint, SuppressedErased, SuppressedManual}

// suppressedReasons are the decision reasons, by suppression code.
var suppressedReasons = func() []string {
	out := make([]string, len(suppressionReasons))
	for i, r := range suppressionReasons {
		out[i] = ReasonSuppressed + r
	}
	return out
}()

// Suppression is an address that must not be messaged for a reason outside preferences.
type Suppression struct {
	// Kind is IdentifierEmail or IdentifierPhone; Address is normalised.
	Kind      string    `json:"kind"`
	Address   string    `json:"address"`
	Reason    string    `json:"reason"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	// LiftedAt and LiftedBy say when and by whom a suppression was lifted; a lifted
	// suppression no longer counts.
	LiftedAt *time.Time `json:"lifted_at,omitempty"`
	LiftedBy string     `json:"lifted_by,omitempty"`
	// Touchpoint is how a report of the suppression reached prefsync, for the audit
	// trail; it is not kept with the suppression.
	Touchpoint Touchpoint `json:"-"`
}

// LiftSuppressionAllowed refuses to lift what is not suppressed, s being the address's
// suppression as it stands (nil for none): ENOTFOUND. It refuses the suppression of an
// erased contact's address too: it is what keeps a person who asked to be forgotten from
// being messaged again.
func LiftSuppressionAllowed(address string, s *Suppression) error {
	if s == nil || s.LiftedAt != nil {
		return Errorf(ENOTFOUND, "%s is not suppressed", address)
	}
	if s.Reason == SuppressedErased {
		return Errorf(ECONFLICT, "%s belongs to an erased contact and stays suppressed", s.Address)
	}
	return nil
}

// ValidateSuppressionReason checks a suppression reason.
func ValidateSuppressionReason(r string) error {
	for _, s := range suppressionReasons[1:] {
		if r == s {
			return nil
		}
	}
	return FieldErrorf("reason", "unknown suppression reason %q: want hard_bounce, spam_complaint, erased or manual", r)
}

// AuditReport is the result of verifying the audit chain.
type AuditReport struct {
	Entries int64  `json:"entries"`
	Head    string `json:"head"`
	OK      bool   `json:"ok"`
	// BadSeq is the first entry that does not verify, and Problem says why.
	BadSeq  int64  `json:"bad_seq,omitempty"`
	Problem string `json:"problem,omitempty"`
}
