package witness

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/keycommit/keycommit/log/c2sp"
)

// GenerateKey makes a new Ed25519 cosignature key for a witness named name.
// skey is the private key in the signed-note private key encoding
// `PRIVATE+KEY+<name>+<hex key ID>+base64(0x04 ‖ seed)`, which NewSigner
// (and formats/note.NewSignerForCosignatureV1) reads; vkey is the C2SP
// verifier key `<name>+<hex key ID>+base64(0x04 ‖ public key)`.
func GenerateKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = c2sp.GenerateKey(rand.Reader, name, c2sp.TypeCosignatureV1)
	if err != nil {
		return "", "", fmt.Errorf("couldn't generate witness key: %w", err)
	}
	return skey, vkey, nil
}

// NewSigner reads a cosignature private key (see GenerateKey) and returns a
// tlog-cosignature/v1 signer and the matching vkey. It checks that the key ID
// written in skey is the one the key has.
func NewSigner(skey string) (c2sp.Signer, string, error) {
	s, vkey, err := c2sp.NewSigner(strings.TrimSpace(skey))
	if err != nil {
		return nil, "", fmt.Errorf("couldn't read witness private key: %w", err)
	}
	if k, err := c2sp.ParseVKey(vkey); err != nil || k.Type != c2sp.TypeCosignatureV1 {
		return nil, "", fmt.Errorf("couldn't read witness private key: want signature type 0x%02x (cosignature/v1)", c2sp.TypeCosignatureV1)
	}
	return s, vkey, nil
}
