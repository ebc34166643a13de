package httpguard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// The frontends of one log authenticate the batches they forward to its
// writer with a key they share (log/trillianstore keeps it in the shared
// store): ForwardMAC is HMAC-SHA256 under that key of a label and the
// request body, in standard base64, sent in api.HeaderForwardMAC.
const forwardMACLabel = "keycommit/forward/v1\n"

// ForwardMAC returns the MAC of a forwarded batch's body under key.
func ForwardMAC(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(forwardMACLabel))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ForwardMACValid reports, in constant time, whether mac is the MAC of
// body under key. An empty key accepts nothing.
func ForwardMACValid(key, body []byte, mac string) bool {
	if len(key) == 0 {
		return false
	}
	return hmac.Equal([]byte(ForwardMAC(key, body)), []byte(mac))
}
