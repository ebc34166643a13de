package witness

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/c2sp/mldsa"
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

// GenerateMLDSAKey makes a new ML-DSA-44 cosignature key (C2SP
// tlog-cosignature type 0x06) for a witness named name: skey is
// `PRIVATE+KEY+<name>+<hex key ID>+base64(0x06 ‖ 32-byte seed)`, which
// NewSigner (and formats/note.NewMLDSASigner) reads; vkey is the type 0x06
// vkey.
func GenerateMLDSAKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = mldsa.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("couldn't generate witness key: %w", err)
	}
	return skey, vkey, nil
}

// NewSigner reads a cosignature private key (see GenerateKey and
// GenerateMLDSAKey) and returns a tlog-cosignature signer (Ed25519
// cosignature/v1 or ML-DSA-44) and the matching vkey. It checks that the key
// ID written in skey is the one the key has.
func NewSigner(skey string) (c2sp.Signer, string, error) {
	skey = strings.TrimSpace(skey)
	if mldsa.IsPrivateKey(skey) {
		s, vkey, err := mldsa.NewSigner(skey, nil)
		if err != nil {
			return nil, "", fmt.Errorf("couldn't read witness private key: %w", err)
		}
		return s, vkey, nil
	}
	s, vkey, err := c2sp.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("couldn't read witness private key: %w", err)
	}
	if k, err := c2sp.ParseVKey(vkey); err != nil || k.Type != c2sp.TypeCosignatureV1 {
		return nil, "", fmt.Errorf("couldn't read witness private key: want signature type 0x%02x (cosignature/v1) or 0x%02x (ML-DSA-44)", c2sp.TypeCosignatureV1, c2sp.TypeCosignatureMLDSA44)
	}
	return s, vkey, nil
}

// NewSigners reads a witness key file: one private key per non-empty line
// (see NewSigner), at most one Ed25519 and one ML-DSA-44 key, all with the
// same name. It returns the signers and their vkeys in file order.
func NewSigners(keys string) ([]c2sp.Signer, []string, error) {
	var signers []c2sp.Signer
	var vkeys []string
	for _, line := range strings.Split(keys, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		s, vkey, err := NewSigner(line)
		if err != nil {
			return nil, nil, fmt.Errorf("key %d: %w", len(signers)+1, err)
		}
		for i, prev := range vkeys {
			pk, _ := c2sp.ParseVKey(prev)
			k, _ := c2sp.ParseVKey(vkey)
			if pk.Type == k.Type {
				return nil, nil, fmt.Errorf("keys %d and %d have the same signature type 0x%02x", i+1, len(signers)+1, k.Type)
			}
			if signers[i].Name() != s.Name() {
				return nil, nil, fmt.Errorf("keys %d and %d have different names %q and %q", i+1, len(signers)+1, signers[i].Name(), s.Name())
			}
		}
		signers, vkeys = append(signers, s), append(vkeys, vkey)
	}
	if len(signers) == 0 {
		return nil, nil, errors.New("no witness private key")
	}
	return signers, vkeys, nil
}
