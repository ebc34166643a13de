package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/keycommit/keycommit/witness/quorum"
)

// algCosignatureV1 is the C2SP signed-note signature type of timestamped
// Ed25519 cosignatures (tlog-cosignature).
const algCosignatureV1 = 0x04

// GenerateKey makes a new Ed25519 cosignature key for a witness named name.
// skey is the private key in the signed-note private key encoding
// `PRIVATE+KEY+<name>+<hex key ID>+base64(0x04 ‖ seed)`, which
// formats/note.NewSignerForCosignatureV1 reads; vkey is the C2SP verifier
// key `<name>+<hex key ID>+base64(0x04 ‖ public key)`.
func GenerateKey(name string) (skey, vkey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("couldn't generate witness key: %w", err)
	}
	id := quorum.KeyID(name, algCosignatureV1, pub)
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, id,
		base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, priv.Seed()...)))
	// Round-trip through the parser so an invalid name fails here, not later.
	if _, vkey, err = NewSigner(skey); err != nil {
		return "", "", err
	}
	return skey, vkey, nil
}

// NewSigner reads a cosignature private key (see GenerateKey) and returns a
// tlog-cosignature/v1 signer and the matching vkey. It checks that the key ID
// written in skey is the one the key has.
func NewSigner(skey string) (*fnote.Signer, string, error) {
	skey = strings.TrimSpace(skey)
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, "", fmt.Errorf("couldn't read witness private key: %w", err)
	}
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != algCosignatureV1 {
		return nil, "", fmt.Errorf("couldn't read witness private key: want type 0x%02x and a %d-byte seed", algCosignatureV1, ed25519.SeedSize)
	}
	id, err := strconv.ParseUint(parts[3], 16, 32)
	if err != nil || uint32(id) != s.KeyHash() {
		return nil, "", fmt.Errorf("couldn't read witness private key: key ID %q does not match the key (want %08x)", parts[3], s.KeyHash())
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return s, quorum.VKey(s.Name(), algCosignatureV1, pub), nil
}
