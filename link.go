package prefsync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"io"
	"time"
)

// Link purposes: what a signed link lets its holder do.
const (
	// LinkUnsubscribe opts the contact out of the link's scope (RFC 8058 one-click).
	LinkUnsubscribe byte = 1
	// LinkPreferences opens the contact's preference page.
	LinkPreferences byte = 2
	// LinkForm is a page's form token (CSRF protection): it names the contact the page
	// was made for, and expires.
	LinkForm byte = 3
)

// Link is what a signed link grants: a purpose, for one contact and scope, until it
// expires (never, when Expires is zero).
type Link struct {
	Purpose   byte
	ContactID string
	Scope     Scope
	Expires   time.Time
}

// LinkKey signs links. Keys have ids so they can rotate: links signed with an older key
// verify as long as the key is kept.
type LinkKey struct {
	ID     byte   `json:"id"`
	Secret []byte `json:"secret"`
}

// LinkSigner signs links with its first key and verifies them with any of its keys.
type LinkSigner struct {
	Keys []LinkKey
}

// ErrBadLink is the answer to a link that is malformed, tampered with, signed by an
// unknown key or expired: the holder learns nothing about which.
var ErrBadLink = Errorf(ENOTFOUND, "this link is not valid: it may be incomplete, altered or expired")

const (
	linkVersion = 1
	linkMACSize = 16 // a truncated HMAC-SHA256: 128 bits cannot be guessed
)

// Sign returns the token of a link: opaque, URL-safe, and unforgeable without the key.
// Its layout: version, key id, purpose, contact number (8 bytes), expiry (Unix seconds,
// 8 bytes), channel and topic (length-prefixed), then the MAC of all that.
func (s *LinkSigner) Sign(l Link) string {
	k := s.Keys[0]
	n, _ := ContactNumber(l.ContactID)
	b := []byte{linkVersion, k.ID, l.Purpose}
	b = binary.BigEndian.AppendUint64(b, n)
	var exp int64
	if !l.Expires.IsZero() {
		exp = l.Expires.Unix()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(exp))
	b = append(b, byte(len(l.Scope.Channel)))
	b = append(b, l.Scope.Channel...)
	b = append(b, byte(len(l.Scope.Topic)))
	b = append(b, l.Scope.Topic...)
	b = append(b, linkMAC(k.Secret, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Verify checks a token and returns the link it grants, or ErrBadLink.
func (s *LinkSigner) Verify(token string, now time.Time) (Link, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 3+16+2+linkMACSize || b[0] != linkVersion {
		return Link{}, ErrBadLink
	}
	body, mac := b[:len(b)-linkMACSize], b[len(b)-linkMACSize:]
	var key *LinkKey
	for i := range s.Keys {
		if s.Keys[i].ID == body[1] {
			key = &s.Keys[i]
		}
	}
	if key == nil || !hmac.Equal(mac, linkMAC(key.Secret, body)) {
		return Link{}, ErrBadLink
	}
	l := Link{Purpose: body[2], ContactID: ContactIDFromNumber(binary.BigEndian.Uint64(body[3:11]))}
	if exp := int64(binary.BigEndian.Uint64(body[11:19])); exp != 0 {
		l.Expires = time.Unix(exp, 0).UTC()
		if !now.Before(l.Expires) {
			return Link{}, ErrBadLink
		}
	}
	rest := body[19:]
	var ok bool
	if l.Scope.Channel, rest, ok = cutField(rest); !ok {
		return Link{}, ErrBadLink
	}
	if l.Scope.Topic, rest, ok = cutField(rest); !ok || len(rest) != 0 {
		return Link{}, ErrBadLink
	}
	return l, nil
}

func cutField(b []byte) (string, []byte, bool) {
	if len(b) == 0 || len(b) < 1+int(b[0]) {
		return "", nil, false
	}
	return string(b[1 : 1+b[0]]), b[1+b[0]:], true
}

func linkMAC(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)[:linkMACSize]
}

// NewLinkKey returns a key with the id and 32 bytes from random.
func NewLinkKey(id byte, random io.Reader) LinkKey {
	k := LinkKey{ID: id, Secret: make([]byte, 32)}
	if _, err := io.ReadFull(random, k.Secret); err != nil {
		panic(err)
	}
	return k
}
