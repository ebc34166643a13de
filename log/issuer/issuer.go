// Package issuer is an issuer's side of the log, shared by the keycommit
// CLI and tests: its Ed25519 account key file, the statements it signs
// (kind, origin, prev, canonical body), the tracking of prev (the leaf
// hash of its latest logged entry, learnt from the log and advanced by
// each accepted submission), and submissions whose answer is verified
// (log/client checks the returned entry against the submission, the
// checkpoint's signature under the log key and the inclusion proof).
package issuer

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/keycommit/keycommit/log/durable"
	"net/http"
	"os"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

// Sign returns the submission of a statement of kind with body (a Go
// value or JSON bytes, canonicalized first) by origin after prev, for the
// log named log (its checkpoint origin), signed by key.
func Sign(key ed25519.PrivateKey, log, origin string, prev []byte, kind schema.Kind, body any) (*schema.Submission, error) {
	return sign(key, schema.Statement{Kind: kind, Log: log, Issuer: origin, Prev: prev}, body)
}

// SignDryRun is Sign for a dry run (POST /v1/check): the statement is
// signed in the dry-run context and can never be logged.
func SignDryRun(key ed25519.PrivateKey, log, origin string, prev []byte, kind schema.Kind, body any) (*schema.Submission, error) {
	return sign(key, schema.Statement{Kind: kind, Log: log, Issuer: origin, Prev: prev, DryRun: true}, body)
}

func sign(key ed25519.PrivateKey, st schema.Statement, body any) (*schema.Submission, error) {
	raw, err := schema.CanonicalizeBody(st.Kind, body)
	if err != nil {
		return nil, err
	}
	st.Body = raw
	return schema.Sign(st, key)
}

// Issuer is an issuer talking to one log.
type Issuer struct {
	// Client talks to the log and verifies its answers.
	Client *client.Client
	// Origin is the issuer's normalized HTTPS origin.
	Origin string
	// Key is the account key that signs.
	Key ed25519.PrivateKey
	// Status is the log's view of the issuer when Open (or Refresh) ran,
	// nil if it was not registered.
	Status *policy.IssuerStatus
	// Prev is the leaf hash of the issuer's latest logged entry (nil
	// before it registers): the prev of its next statement.
	Prev []byte
}

// Open returns the issuer origin (any spelling; it is normalised) with
// account key key on the log of c, with its status and prev fetched from
// the log.
func Open(ctx context.Context, c *client.Client, origin string, key ed25519.PrivateKey) (*Issuer, error) {
	o, err := schema.NormalizeOrigin(origin)
	if err != nil {
		return nil, err
	}
	is := &Issuer{Client: c, Origin: o, Key: key}
	if err := is.Refresh(ctx); err != nil {
		return nil, err
	}
	return is, nil
}

// Refresh fetches the log's view of the issuer again: Status, and Prev
// from its latest entry.
func (is *Issuer) Refresh(ctx context.Context) error {
	res, err := is.Client.Issuer(ctx, is.Origin)
	var he *client.HTTPError
	if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
		is.Status, is.Prev = nil, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("couldn't fetch the log's view of %s: %w", is.Origin, err)
	}
	is.Status, is.Prev = res.Status, res.Status.LastLeafHash
	return nil
}

// Sign returns the issuer's statement of kind with body after Prev, for
// the log of Client (the name of its key).
func (is *Issuer) Sign(kind schema.Kind, body any) (*schema.Submission, error) {
	return Sign(is.Key, is.Client.Verifier().Name(), is.Origin, is.Prev, kind, body)
}

// Submit signs and submits a statement of kind with body. The log's
// answer is verified (see client.Submit); once it is, Prev becomes the
// new entry's leaf hash. A policy refusal is returned as is (see
// client.Reject).
func (is *Issuer) Submit(ctx context.Context, kind schema.Kind, body any) (*client.Submitted, error) {
	sub, err := is.Sign(kind, body)
	if err != nil {
		return nil, err
	}
	res, err := is.Client.Submit(ctx, sub)
	if err != nil {
		return nil, err
	}
	is.Prev = append([]byte(nil), res.LeafHash...)
	return res, nil
}

// Check signs a dry-run statement of kind with body and asks the log's
// policy about it (POST /v1/check); nothing is logged, the statement can
// never be, and Prev is unchanged.
func (is *Issuer) Check(ctx context.Context, kind schema.Kind, body any) (*api.CheckResult, error) {
	sub, err := SignDryRun(is.Key, is.Client.Verifier().Name(), is.Origin, is.Prev, kind, body)
	if err != nil {
		return nil, err
	}
	return is.Client.Check(ctx, sub)
}

// WriteKeyFile creates a new Ed25519 account key in a new file at path
// (PKCS#8 PEM, mode 0600, never overwriting) and returns its public key.
func WriteKeyFile(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	err = WriteNewFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	var pe *os.PathError
	switch {
	case err == nil:
		return pub, nil
	case errors.Is(err, os.ErrExist):
		return nil, fmt.Errorf("refusing to overwrite existing key file %s", path)
	case errors.As(err, &pe) && pe.Op == "open":
		return nil, fmt.Errorf("couldn't create key file: %w", err)
	}
	return nil, fmt.Errorf("couldn't write key file %s: %w", path, err)
}

// WriteNewFile is durable.WriteNew: it writes b to a new file at path
// with mode perm, syncing the file and its directory, for the issuer's
// secrets (account keys, private token keys). It never overwrites.
func WriteNewFile(path string, b []byte, perm os.FileMode) error {
	return durable.WriteNew(path, b, perm)
}

// ReadKeyFile reads an Ed25519 account key written by WriteKeyFile (any
// PKCS#8 PEM Ed25519 key). It refuses a key file others can read.
func ReadKeyFile(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read account key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("account key file %s has mode %v; it must not be readable by others (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read account key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("account key file %s is not a PEM \"PRIVATE KEY\"", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("account key file %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("account key file %s holds a %T, want an Ed25519 key", path, k)
	}
	return priv, nil
}
