package issuer

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/keycommit/keycommit/schema"
)

// PSTKeyPair is one generated PST VOPRF key: the commitment's public Y and
// the private scalar an issuance server needs.
type PSTKeyPair struct {
	Label   string `json:"label"`
	Y       string `json:"Y"`
	Private string `json:"private"` // big-endian P-384 scalar, standard base64
	Expiry  string `json:"expiry"`
}

// NewPSTKey returns a fresh VOPRF key with key id kid: Y in standard
// base64 (the 4-byte big-endian id followed by the uncompressed P-384
// point) and the private key.
func NewPSTKey(kid uint32) (y string, priv *ecdh.PrivateKey, err error) {
	k, err := ecdh.P384().GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, err
	}
	b := binary.BigEndian.AppendUint32(nil, kid)
	b = append(b, k.PublicKey().Bytes()...)
	return base64.StdEncoding.EncodeToString(b), k, nil
}

// NewPSTCommitment makes a PrivateStateTokenV1VOPRF commitment with n
// fresh P-384 keys labelled first..first+n-1 (the label is also the key id
// that starts Y), expiring at expiry, and returns it validated with its
// key pairs.
func NewPSTCommitment(id uint32, first uint32, n int, batch int, expiry time.Time) (schema.PSTCommitment, []PSTKeyPair, error) {
	if n < 1 {
		return nil, nil, fmt.Errorf("need at least one key, got %d", n)
	}
	keys := map[string]schema.PSTKey{}
	var pairs []PSTKeyPair
	exp := strconv.FormatInt(expiry.UnixMicro(), 10)
	for i := 0; i < n; i++ {
		kid := first + uint32(i)
		y, k, err := NewPSTKey(kid)
		if err != nil {
			return nil, nil, err
		}
		label := strconv.FormatUint(uint64(kid), 10)
		keys[label] = schema.PSTKey{Y: y, Expiry: exp}
		pairs = append(pairs, PSTKeyPair{Label: label, Y: y, Private: base64.StdEncoding.EncodeToString(k.Bytes()), Expiry: exp})
	}
	c := schema.PSTCommitment{schema.PSTV1VOPRF: {ProtocolVersion: schema.PSTV1VOPRF, ID: id, BatchSize: batch, Keys: keys}}
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	return c, pairs, nil
}
