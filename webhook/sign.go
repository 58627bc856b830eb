package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// Sign returns the webhook-signature header of a message per Standard Webhooks: for each
// secret, "v1," and the base64 of HMAC-SHA256 over "id.timestamp.body", keyed with the
// secret's base64-decoded part after "whsec_"; several are separated by spaces, so a
// receiver holding either the old or the new secret verifies during a rotation.
// (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)
func Sign(secrets []string, id string, ts time.Time, body []byte) string {
	var b strings.Builder
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil {
			continue // secrets are validated when stored
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write(strconv.AppendInt(nil, ts.Unix(), 10))
		mac.Write([]byte{'.'})
		mac.Write(body)
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}
