// Package gen builds test material for the policy and its replay tests:
// deterministic keys, signed entries, and a generator of long logs with
// many issuers, normal and emergency rotations, final reports and refused
// attempts interleaved, each labelled with the decision a simple model of
// the rules expects.
package gen

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"

	"github.com/keycommit/keycommit/schema"
)

// Point returns a valid P-384 point derived from seed, uncompressed
// (97 bytes) and compressed (49 bytes).
func Point(seed string) (uncompressed, compressed []byte) {
	pointMu.Lock()
	defer pointMu.Unlock()
	if p, ok := points[seed]; ok {
		return p[0], p[1]
	}
	for ctr := 0; ; ctr++ {
		d := sha512.Sum384([]byte(fmt.Sprintf("keycommit-test-point/%d/%s", ctr, seed)))
		k, err := ecdh.P384().NewPrivateKey(d[:])
		if err != nil {
			continue // scalar zero or above the group order: try the next
		}
		u := k.PublicKey().Bytes()
		c := append([]byte{0x02 | u[96]&1}, u[1:49]...)
		points[seed] = [2][]byte{u, c}
		return u, c
	}
}

var (
	pointMu sync.Mutex
	points  = map[string][2][]byte{}
)

// PSTKey returns a PST key of version v (VOPRF: one point, PMB: three)
// derived from seed, with the 4-byte key id kid and the expiry expMillis
// (converted to microseconds).
func PSTKey(v string, kid uint32, seed string, expMillis int64) schema.PSTKey {
	y := binary.BigEndian.AppendUint32(nil, kid)
	n := 1
	if schema.IsPMB(v) {
		n = 3
	}
	for i := range n {
		u, _ := Point(fmt.Sprintf("%s/%d", seed, i))
		y = append(y, u...)
	}
	return schema.PSTKey{Y: base64.StdEncoding.EncodeToString(y), Expiry: strconv.FormatInt(expMillis*1000, 10)}
}

// TokenKey returns a Privacy Pass token-type 1 key derived from seed.
func TokenKey(seed string) schema.TokenKey {
	_, c := Point(seed + "/0")
	return schema.TokenKey{TokenType: schema.TokenTypeVOPRF, TokenKey: base64.URLEncoding.EncodeToString(c)}
}

// AccountKey returns a deterministic Ed25519 key for name.
func AccountKey(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("keycommit-test-account/" + name))
	return ed25519.NewKeyFromSeed(s[:])
}

// LogName is the log the generated statements are signed for: bind the
// policy state with policy.NewLogState(LogName).
const LogName = "keycommit.example/log/gen"

// Signed returns the entry for a statement of kind k by origin with body,
// prev and log time, signed with key for Log. A registration carries the
// log's record of a proof of origin control checked a second before, as
// the log writes it when the policy needs one.
func Signed(key ed25519.PrivateKey, origin string, k schema.Kind, prev []byte, body any, timeMillis int64) (*schema.Entry, error) {
	raw, err := schema.CanonicalizeBody(k, body)
	if err != nil {
		return nil, err
	}
	if len(prev) == 0 {
		prev = nil
	}
	sub, err := schema.Sign(schema.Statement{Kind: k, Log: LogName, Issuer: origin, Prev: prev, Body: raw}, key)
	if err != nil {
		return nil, err
	}
	e := schema.NewEntry(sub, timeMillis)
	if r, ok := body.(*schema.Registration); ok {
		e.Control = &schema.OriginControl{Method: schema.ControlHTTPS, URL: schema.ChallengeURL(LogName, origin, r.AccountKey), Time: max(timeMillis-1000, 0)}
	}
	return e, nil
}

// LeafHash returns the RFC 6962 leaf hash of an entry's bytes.
func LeafHash(b []byte) [32]byte { return sha256.Sum256(append([]byte{0}, b...)) }

// Report returns a complete incident report discovered at discovered.
func Report(origin string, discovered int64) *schema.IncidentReport {
	return &schema.IncidentReport{
		Summary:     "signing key exposed in a backup",
		Discovered:  discovered,
		Impact:      "tokens could be forged until rotation",
		RootCause:   "backup bucket was public",
		Remediation: "rotated keys, closed the bucket",
		URL:         origin + "/incidents/" + strconv.FormatInt(discovered, 10),
	}
}
