package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// KeyID identifies a public key independently of how a format encodes it:
//
//   - a P-384 VOPRF key (PST VOPRF, Privacy Pass token-type 1):
//     SHA-256 of the compressed point, which is the RFC 9578 token_key_id;
//   - a PST PMB key: SHA-256 of its three points, compressed, concatenated;
//   - a Privacy Pass token-type 2 key: SHA-256 of its SubjectPublicKeyInfo,
//     the RFC 9578 token_key_id.
//
// The policy uses it to refuse a key used by two issuers or brought back
// after it was retired.
type KeyID [sha256.Size]byte

// String returns the key id in hex.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 bytes of the key id in hex, for messages.
func (id KeyID) Short() string { return hex.EncodeToString(id[:8]) }

func keyIDOfPoints(points [][]byte) KeyID {
	h := sha256.New()
	for _, p := range points {
		h.Write(p)
	}
	var id KeyID
	h.Sum(id[:0])
	return id
}

// Privacy Pass protocol names used in CommittedKey.Protocol.
const (
	ProtocolPrivacyPassVOPRF    = "PrivacyPassToken1VOPRF"
	ProtocolPrivacyPassBlindRSA = "PrivacyPassToken2BlindRSA"
)

// CommittedKey is one key of a key commitment, validated.
type CommittedKey struct {
	ID KeyID
	// Protocol is the PST protocol version, or ProtocolPrivacyPassVOPRF /
	// ProtocolPrivacyPassBlindRSA.
	Protocol string
	// Label is the PST key label, or the key's position in a Privacy Pass
	// directory's token-keys ("0", "1", ...).
	Label string
	label uint32
	// Expiry is a PST key's expiry in microseconds since the epoch; 0 for
	// Privacy Pass keys, which have none.
	Expiry uint64
	// NotBefore is a Privacy Pass key's not-before (Unix seconds), if set.
	NotBefore *int64
}

// Keys validates the commitment and returns its keys: for PST, versions in
// sorted order and each version's keys in numeric label order; for Privacy
// Pass, in token-keys order. A key present under two PST versions appears
// once per version. A commitment returned by ParseBody remembers its keys:
// do not modify it afterwards.
func (c *KeyCommitment) Keys() ([]CommittedKey, error) {
	if c.keys != nil {
		return append([]CommittedKey(nil), c.keys...), nil
	}
	switch {
	case len(c.PST) != 0 && c.PrivacyPass == nil:
		return c.PST.parseKeys()
	case len(c.PST) == 0 && c.PrivacyPass != nil:
		return c.PrivacyPass.parseKeys()
	case len(c.PST) == 0:
		return nil, fmt.Errorf("key commitment has neither pst nor privacy_pass")
	default:
		return nil, fmt.Errorf("key commitment has both pst and privacy_pass; submit them separately")
	}
}
