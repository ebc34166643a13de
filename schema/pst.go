package schema

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
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

// Sizes of a PST key's Y bytes: a 4-byte big-endian key id followed by one
// (VOPRF) or three (PMB) uncompressed P-384 points.
const (
	p384UncompressedSize = 97
	PSTVOPRFKeySize      = 4 + p384UncompressedSize
	PSTPMBKeySize        = 4 + 3*p384UncompressedSize
	// ChromeMaxBatchSize is the largest batch size Chrome accepts.
	ChromeMaxBatchSize = 100
)

// PSTCommitment is an issuer's Private State Token key commitment: protocol
// version -> commitment for that version.
type PSTCommitment map[string]PSTVersionCommitment

// PSTVersionCommitment is the commitment for one protocol version.
type PSTVersionCommitment struct {
	ProtocolVersion string            `json:"protocol_version"`
	ID              uint32            `json:"id"`
	BatchSize       int               `json:"batchsize"`
	Keys            map[string]PSTKey `json:"keys"`
}

// PSTKey is one key: Y is standard base64 of the key bytes, Expiry the
// decimal number of microseconds since the Unix epoch.
type PSTKey struct {
	Y      string `json:"Y"`
	Expiry string `json:"expiry"`
}

// IsPMB reports whether version v uses PMB (three-point) keys.
func IsPMB(v string) bool { return v == PSTV1PMB || v == PSTV3PMB }

func knownPSTVersion(v string) bool {
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
func (c PSTCommitment) Validate() error {
	if len(c) == 0 {
		return fmt.Errorf("PST commitment has no protocol versions")
	}
	for _, v := range c.Versions() {
		vc := c[v]
		if !knownPSTVersion(v) {
			return fmt.Errorf("unknown PST protocol version %q", v)
		}
		if vc.ProtocolVersion != v {
			return fmt.Errorf("%s: protocol_version %q does not match its key %q", v, vc.ProtocolVersion, v)
		}
		if vc.ID == 0 {
			return fmt.Errorf("%s: id must be a positive integer", v)
		}
		if vc.BatchSize <= 0 {
			return fmt.Errorf("%s: batchsize must be a positive integer, got %d", v, vc.BatchSize)
		}
		if len(vc.Keys) == 0 {
			return fmt.Errorf("%s: no keys", v)
		}
		for _, label := range sortedKeys(vc.Keys) {
			if _, err := vc.Keys[label].Parse(v, label); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParsedPSTKey is a validated PST key.
type ParsedPSTKey struct {
	Label  uint32
	KeyID  uint32 // the 4-byte big-endian id that starts Y
	Y      []byte // the decoded key bytes, id included
	Expiry uint64 // microseconds since the Unix epoch
}

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
		return nil, fmt.Errorf("%s key %s: Y is not standard base64: %v", v, label, err)
	}
	want := PSTVOPRFKeySize
	if IsPMB(v) {
		want = PSTPMBKeySize
	}
	if len(y) != want {
		return nil, fmt.Errorf("%s key %s: Y is %d bytes, want %d", v, label, len(y), want)
	}
	for i := 4; i < len(y); i += p384UncompressedSize {
		if err := validateP384Point(y[i : i+p384UncompressedSize]); err != nil {
			return nil, fmt.Errorf("%s key %s: point at byte %d: %w", v, label, i, err)
		}
	}
	return &ParsedPSTKey{Label: uint32(l), KeyID: binary.BigEndian.Uint32(y[:4]), Y: y, Expiry: exp}, nil
}

// validateP384Point checks that b is an uncompressed P-384 point on the
// curve and not the identity, using circl's OPRF key decoding.
func validateP384Point(b []byte) error {
	if len(b) != p384UncompressedSize || b[0] != 0x04 {
		return fmt.Errorf("not an uncompressed P-384 point (want %d bytes starting 0x04)", p384UncompressedSize)
	}
	var pk oprf.PublicKey
	if err := pk.UnmarshalBinary(oprf.SuiteP384, b); err != nil {
		return fmt.Errorf("invalid P-384 point: %w", err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
