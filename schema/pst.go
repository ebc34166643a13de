package schema

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/cloudflare/circl/oprf"
)

// PST protocol versions Chrome accepts, preferred first.
const (
	PSTV1VOPRF = "PrivateStateTokenV1VOPRF"
	PSTV1PMB   = "PrivateStateTokenV1PMB"
	PSTV3VOPRF = "PrivateStateTokenV3VOPRF"
	PSTV3PMB   = "PrivateStateTokenV3PMB"
)

// PSTVersions lists the PST protocol versions Chrome accepts, in Chrome's
// order of preference. Chrome uses the first of them that a commitment
// has and ignores the others; keycommit validates every one present.
var PSTVersions = []string{PSTV1VOPRF, PSTV1PMB, PSTV3VOPRF, PSTV3PMB}

// Sizes of a PST key's Y bytes: a 4-byte big-endian key id followed by one
// (VOPRF) or three (PMB) uncompressed P-384 points.
const (
	p384UncompressedSize = 97
	PSTVOPRFKeySize      = 4 + p384UncompressedSize
	PSTPMBKeySize        = 4 + 3*p384UncompressedSize
	// ChromeMaxBatchSize is the largest batch size Chrome accepts.
	ChromeMaxBatchSize = 100
	// ChromeMaxKeysVOPRF and ChromeMaxKeysPMB are the most keys Chrome
	// uses from one commitment.
	ChromeMaxKeysVOPRF = 6
	ChromeMaxKeysPMB   = 3
	// ChromeMaxInt is the largest id or batchsize Chrome reads: it reads
	// both with base::Value::FindInt, a C++ int (32 bits); a larger JSON
	// number is a double to it, and the commitment is dropped.
	ChromeMaxInt = math.MaxInt32
)

// PSTCommitment is an issuer's Private State Token key commitment: protocol
// version -> commitment for that version.
type PSTCommitment map[string]PSTVersionCommitment

// PSTVersionCommitment is the commitment for one protocol version.
type PSTVersionCommitment struct {
	ProtocolVersion string `json:"protocol_version"`
	// ID identifies the commitment; it must increase with every new
	// commitment. A JSON integer in 1..2147483647.
	ID uint32 `json:"id"`
	// BatchSize is the most tokens issued per request, 1..2147483647
	// for Chrome's parser (policy bounds it further).
	BatchSize int `json:"batchsize"`
	// Keys maps key labels (uint32 in canonical decimal) to keys.
	Keys map[string]PSTKey `json:"keys"`
}

// PSTKey is one key: Y is standard base64 of the key bytes, Expiry the
// decimal number of microseconds since the Unix epoch.
type PSTKey struct {
	Y      string `json:"Y"`
	Expiry string `json:"expiry"`
}

// IsPMB reports whether version v uses PMB (three-point) keys.
func IsPMB(v string) bool { return v == PSTV1PMB || v == PSTV3PMB }

// KnownPSTVersion reports whether v is a PST protocol version Chrome knows.
func KnownPSTVersion(v string) bool {
	switch v {
	case PSTV1VOPRF, PSTV1PMB, PSTV3VOPRF, PSTV3PMB:
		return true
	}
	return false
}

// Versions returns the commitment's protocol versions, sorted.
func (c PSTCommitment) Versions() []string {
	vs := make([]string, 0, len(c))
	for v := range c {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	return vs
}

// Validate checks the commitment against the format Chrome parses, and
// every key against its protocol (a valid P-384 point that is not the
// identity). One bad key makes the whole commitment invalid, as in Chrome.
// Unlike Chrome, which reads only the preferred version present, every
// version present is checked, and a version without keys or with the same
// key twice is refused.
func (c PSTCommitment) Validate() error {
	_, err := c.parseKeys()
	return err
}

// parseKeys validates c and returns its keys in a fixed order (versions
// sorted, then labels in numeric order).
func (c PSTCommitment) parseKeys() ([]CommittedKey, error) {
	if len(c) == 0 {
		return nil, fmt.Errorf("PST commitment has no protocol versions")
	}
	var out []CommittedKey
	for _, v := range c.Versions() {
		vc := c[v]
		if !KnownPSTVersion(v) {
			return nil, fmt.Errorf("unknown PST protocol version %q (Chrome knows %s, %s, %s, %s)", v, PSTV1VOPRF, PSTV1PMB, PSTV3VOPRF, PSTV3PMB)
		}
		if vc.ProtocolVersion != v {
			return nil, fmt.Errorf("%s: protocol_version %q does not match its key %q", v, vc.ProtocolVersion, v)
		}
		if vc.ID == 0 {
			return nil, fmt.Errorf("%s: id must be a positive integer", v)
		}
		if vc.ID > ChromeMaxInt {
			return nil, fmt.Errorf("%s: id %d is above %d, the largest Chrome reads", v, vc.ID, ChromeMaxInt)
		}
		if vc.BatchSize <= 0 {
			return nil, fmt.Errorf("%s: batchsize must be a positive integer, got %d", v, vc.BatchSize)
		}
		if vc.BatchSize > ChromeMaxInt {
			return nil, fmt.Errorf("%s: batchsize %d is above %d, the largest Chrome reads", v, vc.BatchSize, ChromeMaxInt)
		}
		if len(vc.Keys) == 0 {
			return nil, fmt.Errorf("%s: no keys", v)
		}
		keys := make([]CommittedKey, 0, len(vc.Keys))
		seen := map[KeyID]string{}
		for label, k := range vc.Keys {
			pk, err := k.Parse(v, label)
			if err != nil {
				return nil, err
			}
			id := pk.Identity()
			if other, dup := seen[id]; dup {
				return nil, fmt.Errorf("%s: keys %s and %s are the same key", v, minLabel(other, label), maxLabel(other, label))
			}
			seen[id] = label
			keys = append(keys, CommittedKey{ID: id, Protocol: v, Label: label, label: pk.Label, Expiry: pk.Expiry})
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].label < keys[j].label })
		out = append(out, keys...)
	}
	return out, nil
}

func minLabel(a, b string) string {
	x, _ := strconv.ParseUint(a, 10, 32)
	y, _ := strconv.ParseUint(b, 10, 32)
	if x < y {
		return a
	}
	return b
}

func maxLabel(a, b string) string {
	if minLabel(a, b) == a {
		return b
	}
	return a
}

// ParsedPSTKey is a validated PST key.
type ParsedPSTKey struct {
	Label  uint32
	KeyID  uint32 // the 4-byte big-endian id that starts Y
	Y      []byte // the decoded key bytes, id included
	Expiry uint64 // microseconds since the Unix epoch
	// Points holds the key's P-384 points in compressed form (one for
	// VOPRF, three for PMB).
	Points [][]byte
}

// Identity returns the key's identity: SHA-256 of its points in compressed
// form. The 4-byte id that starts Y is not part of it, so the same key
// material under another id is the same key; a VOPRF key's identity is
// the RFC 9578 token_key_id the same point would have as a Privacy Pass
// token-type 1 key.
func (k *ParsedPSTKey) Identity() KeyID { return keyIDOfPoints(k.Points) }

// Parse validates the key as a key of protocol version v under label.
func (k PSTKey) Parse(v, label string) (*ParsedPSTKey, error) {
	l, err := strconv.ParseUint(label, 10, 32)
	if err != nil || strconv.FormatUint(l, 10) != label {
		return nil, fmt.Errorf("%s: key label %q is not a uint32 in canonical decimal", v, label)
	}
	exp, err := strconv.ParseUint(k.Expiry, 10, 64)
	if err != nil || strconv.FormatUint(exp, 10) != k.Expiry {
		return nil, fmt.Errorf("%s key %s: expiry %q is not a uint64 in canonical decimal (microseconds since the epoch)", v, label, k.Expiry)
	}
	y, err := base64.StdEncoding.Strict().DecodeString(k.Y)
	if err != nil {
		return nil, fmt.Errorf("%s key %s: Y is not canonical standard base64: %v", v, label, err)
	}
	want := PSTVOPRFKeySize
	if IsPMB(v) {
		want = PSTPMBKeySize
	}
	if len(y) != want {
		return nil, fmt.Errorf("%s key %s: Y is %d bytes, want %d", v, label, len(y), want)
	}
	var points [][]byte
	for i := 4; i < len(y); i += p384UncompressedSize {
		c, err := validateP384Point(y[i : i+p384UncompressedSize])
		if err != nil {
			return nil, fmt.Errorf("%s key %s: point at byte %d: %w", v, label, i, err)
		}
		points = append(points, c)
	}
	return &ParsedPSTKey{Label: uint32(l), KeyID: binary.BigEndian.Uint32(y[:4]), Y: y, Expiry: exp, Points: points}, nil
}

// validateP384Point checks that b is an uncompressed P-384 point on the
// curve and not the identity, using circl's OPRF key decoding, and returns
// its compressed form.
func validateP384Point(b []byte) ([]byte, error) {
	if len(b) != p384UncompressedSize || b[0] != 0x04 {
		return nil, fmt.Errorf("not an uncompressed P-384 point (want %d bytes starting 0x04)", p384UncompressedSize)
	}
	return p384Point(b)
}

// p384Point validates an encoded P-384 point (compressed or uncompressed)
// with circl's OPRF key decoding, which refuses off-curve points and the
// identity, and returns its compressed form.
func p384Point(b []byte) ([]byte, error) {
	if c, ok := cachedPoint(b); ok {
		return c, nil
	}
	var pk oprf.PublicKey
	if err := pk.UnmarshalBinary(oprf.SuiteP384, b); err != nil {
		return nil, fmt.Errorf("invalid P-384 point: %w", err)
	}
	c, err := pk.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("couldn't compress P-384 point: %w", err)
	}
	cachePoint(b, c)
	return c, nil
}
