package schema

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
)

// keyPossessionContext starts the message a new account key signs, so the
// proof can never be mistaken for a statement signature.
const keyPossessionContext = "keycommit/account-key-possession/v1\n"

// KeyPossessionMessage returns the bytes the new account key of r signs to
// prove possession: a context string, then the canonical registration
// statement for issuer with prev and r with KeyProof left out. It binds
// the proof to the origin, the issuer's history (prev) and the contact,
// so it cannot be replayed for another origin or a later change.
func KeyPossessionMessage(issuer string, prev []byte, r *Registration) ([]byte, error) {
	c := *r
	c.KeyProof = nil
	body, err := canonicalJSON(&c)
	if err != nil {
		return nil, err
	}
	if len(prev) == 0 {
		prev = nil
	}
	st, err := canonicalJSON(&Statement{Kind: KindRegistration, Issuer: issuer, Prev: prev, Body: body})
	if err != nil {
		return nil, err
	}
	return append([]byte(keyPossessionContext), st...), nil
}

// ProveKeyPossession sets r.KeyProof to newKey's signature over
// KeyPossessionMessage. newKey must be the private key of r.AccountKey.
func (r *Registration) ProveKeyPossession(issuer string, prev []byte, newKey ed25519.PrivateKey) error {
	if !bytes.Equal(newKey.Public().(ed25519.PublicKey), r.AccountKey) {
		return fmt.Errorf("the private key given is not the one for account_key")
	}
	msg, err := KeyPossessionMessage(issuer, prev, r)
	if err != nil {
		return err
	}
	r.KeyProof = ed25519.Sign(newKey, msg)
	return nil
}

// VerifyKeyPossession checks r.KeyProof against r.AccountKey.
func (r *Registration) VerifyKeyPossession(issuer string, prev []byte) error {
	if len(r.KeyProof) == 0 {
		return fmt.Errorf("registration changes the account key but has no key_proof signed by the new key")
	}
	msg, err := KeyPossessionMessage(issuer, prev, r)
	if err != nil {
		return err
	}
	if len(r.AccountKey) != ed25519.PublicKeySize || !ed25519.Verify(r.AccountKey, msg, r.KeyProof) {
		return fmt.Errorf("key_proof does not verify under the new account key")
	}
	return nil
}
