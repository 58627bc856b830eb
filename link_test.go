package prefsync

import (
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"
)

func TestLinkTokens(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	old, cur := NewLinkKey(1, rand.Reader), NewLinkKey(2, rand.Reader)
	signer := &LinkSigner{Keys: []LinkKey{cur, old}}
	l := Link{Purpose: LinkUnsubscribe, ContactID: ContactIDFromNumber(123456789), Scope: Scope{"email", "newsletter"}}
	tok := signer.Sign(l)
	t.Run("OK", func(t *testing.T) {
		got, err := signer.Verify(tok, now)
		if err != nil || got != l {
			t.Errorf("Verify = %+v, %v; want %+v", got, err, l)
		}
	})
	t.Run("RotatedKey", func(t *testing.T) {
		// A link signed before a rotation verifies while its key is kept, and not after.
		before := (&LinkSigner{Keys: []LinkKey{old}}).Sign(l)
		if _, err := signer.Verify(before, now); err != nil {
			t.Errorf("link of the previous key: %v", err)
		}
		if _, err := (&LinkSigner{Keys: []LinkKey{cur}}).Verify(before, now); err != ErrBadLink {
			t.Errorf("link of a dropped key: %v", err)
		}
	})
	t.Run("Tampered", func(t *testing.T) {
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		for i := range raw {
			b := append([]byte(nil), raw...)
			b[i] ^= 0x01
			if _, err := signer.Verify(base64.RawURLEncoding.EncodeToString(b), now); err != ErrBadLink {
				t.Fatalf("byte %d flipped: %v", i, err)
			}
		}
		for _, bad := range []string{"", "x", tok[:len(tok)-1], tok + "A", "!!!" + tok} {
			if _, err := signer.Verify(bad, now); err != ErrBadLink {
				t.Errorf("Verify(%q) = %v", bad, err)
			}
		}
	})
	t.Run("Expiry", func(t *testing.T) {
		e := l
		e.Purpose, e.Expires = LinkPreferences, now.Add(time.Hour)
		tok := signer.Sign(e)
		if got, err := signer.Verify(tok, now.Add(59*time.Minute)); err != nil || got != e {
			t.Errorf("before expiry: %+v, %v", got, err)
		}
		if _, err := signer.Verify(tok, now.Add(time.Hour)); err != ErrBadLink {
			t.Errorf("at expiry: %v", err)
		}
	})
	t.Run("OtherSecret", func(t *testing.T) {
		forger := &LinkSigner{Keys: []LinkKey{NewLinkKey(2, rand.Reader)}} // the right id, not the secret
		if _, err := signer.Verify(forger.Sign(l), now); err != ErrBadLink {
			t.Errorf("forged link: %v", err)
		}
	})
}
