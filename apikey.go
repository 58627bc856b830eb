package prefsync

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"slices"
	"strings"
	"time"
)

// API key scopes.
const (
	ScopeEventsWrite   = "events:write"
	ScopeCheck         = "check"
	ScopeContactsRead  = "contacts:read"
	ScopeContactsWrite = "contacts:write"
	ScopeAdmin         = "admin"
)

// KeyScopes lists every scope a key may hold.
var KeyScopes = []string{ScopeEventsWrite, ScopeCheck, ScopeContactsRead, ScopeContactsWrite, ScopeAdmin}

// APIKey is a key a system authenticates with. Only the hash of its secret is stored.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Hash      []byte     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Allows reports whether the key may act with scope; admin may do everything.
func (k *APIKey) Allows(scope string) bool {
	return slices.Contains(k.Scopes, scope) || slices.Contains(k.Scopes, ScopeAdmin)
}

// HashAPIKey returns the stored form of a secret.
func HashAPIKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewAPIKey makes a key with a fresh random secret, which it returns: it is shown once.
func NewAPIKey(name string, scopes []string, now time.Time) (*APIKey, string, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", err
	}
	secret := "psk_" + strings.ToLower(keyEncoding.EncodeToString(b[:]))
	k, err := APIKeyFromSecret(name, scopes, secret, now)
	return k, secret, err
}

// APIKeyFromSecret makes a key from a given secret, such as the bootstrap admin key.
func APIKeyFromSecret(name string, scopes []string, secret string, now time.Time) (*APIKey, error) {
	if len(secret) < 16 {
		return nil, FieldErrorf("secret", "an API key must be at least 16 characters")
	}
	if name = strings.TrimSpace(name); name == "" || len(name) > 64 {
		return nil, FieldErrorf("name", "a key needs a name of 1 to 64 characters")
	}
	if len(scopes) == 0 {
		return nil, FieldErrorf("scopes", "a key needs at least one scope")
	}
	for _, s := range scopes {
		if !slices.Contains(KeyScopes, s) {
			return nil, FieldErrorf("scopes", "unknown scope %q: want %s", s, strings.Join(KeyScopes, ", "))
		}
	}
	var b [5]byte // the id shows nothing of the secret
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	id := "key_" + strings.ToLower(keyEncoding.EncodeToString(b[:]))
	return &APIKey{ID: id, Name: name, Scopes: scopes, Hash: HashAPIKey(secret), CreatedAt: now.UTC()}, nil
}
