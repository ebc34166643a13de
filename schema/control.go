package schema

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// OriginControl is what a log records, in a registration entry, of the
// proof of control of the origin it checked before admitting the first
// registration of an origin or a reclaim after a lapse: which method,
// what it fetched, and when. It is written by the log, not signed by the
// issuer; the policy checks that it is the proof the statement needs
// (see ChallengeURL).
type OriginControl struct {
	// Method is how control was proven: ControlHTTPS.
	Method string `json:"method"`
	// URL is what the log fetched.
	URL string `json:"url"`
	// Time is when the log checked it (ms since the epoch).
	Time int64 `json:"time"`
}

// ControlHTTPS is the HTTPS challenge method: the log fetched
// ChallengeURL over HTTPS and got exactly Challenge.
const ControlHTTPS = "https"

// ChallengePath is where, under the origin, challenges are served; the
// last path element is the hex SHA-256 of the challenge.
const ChallengePath = "/.well-known/keycommit-challenge/"

// Challenge returns the exact bytes an origin serves to prove, to the log
// named log, that it lets accountKey register it. They bind the log, the
// origin and the key (in the spirit of ACME HTTP-01's key authorization):
//
//	keycommit-challenge/v1
//	log <log>
//	origin <origin>
//	account-key <base64 of the 32-byte Ed25519 key>
func Challenge(log, origin string, accountKey ed25519.PublicKey) []byte {
	return fmt.Appendf(nil, "keycommit-challenge/v1\nlog %s\norigin %s\naccount-key %s\n",
		log, origin, base64.StdEncoding.EncodeToString(accountKey))
}

// ChallengeURL returns the URL under origin where Challenge(log, origin,
// accountKey) is served.
func ChallengeURL(log, origin string, accountKey ed25519.PublicKey) string {
	d := sha256.Sum256(Challenge(log, origin, accountKey))
	return origin + ChallengePath + hex.EncodeToString(d[:])
}

func (c *OriginControl) validate() error {
	if c.Method != ControlHTTPS {
		return fmt.Errorf("unknown method %q (want %q)", c.Method, ControlHTTPS)
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "https" || !strings.Contains(u.Path, ChallengePath) {
		return fmt.Errorf("url %q is not an https challenge URL", c.URL)
	}
	if c.Time < 0 {
		return fmt.Errorf("time %d is negative", c.Time)
	}
	return nil
}
