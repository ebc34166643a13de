// Package checkpoint is keycommit's glue around its log key: the key files
// in a log's data directory, the rule for origins, and signing and opening
// checkpoints under keycommit's convention that the log key is named for
// the origin. The formats themselves (C2SP signed-note, vkeys,
// tlog-checkpoint) are package log/c2sp's.
package checkpoint

import (
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/keycommit/keycommit/log/durable"
	"os"
	"path/filepath"
	"strings"

	"github.com/keycommit/keycommit/log/c2sp"
)

// Checkpoint is a parsed checkpoint body (c2sp.Checkpoint).
type Checkpoint = c2sp.Checkpoint

// GenerateKey returns a new Ed25519 log key named origin, as a note
// signer key ("PRIVATE+KEY+<origin>+<hash>+<base64>") and a C2SP vkey
// ("<origin>+<hash>+<base64>").
func GenerateKey(origin string) (skey, vkey string, err error) {
	if err := CheckOrigin(origin); err != nil {
		return "", "", err
	}
	skey, vkey, err = c2sp.GenerateKey(rand.Reader, origin, c2sp.TypeEd25519)
	if err != nil {
		return "", "", fmt.Errorf("couldn't generate log key: %w", err)
	}
	return skey, vkey, nil
}

// CheckOrigin checks that origin can name a log and its key: non-empty,
// printable, and without spaces or '+'.
func CheckOrigin(origin string) error {
	if origin == "" {
		return errors.New("log origin is empty")
	}
	for _, r := range origin {
		if r <= ' ' || r == '+' || r == 0x7f || r > 0x7e {
			return fmt.Errorf("log origin %q: only printable ASCII without spaces or '+' is allowed", origin)
		}
	}
	return nil
}

// Key file names inside a log's data directory.
const (
	PrivateKeyFile = "log.key"
	PublicKeyFile  = "log.vkey"
)

// WriteKeyFiles writes skey to dir/log.key (mode 0600) and vkey to
// dir/log.vkey (mode 0644). It refuses to overwrite either file.
func WriteKeyFiles(dir, skey, vkey string) error {
	if err := writeNew(filepath.Join(dir, PrivateKeyFile), []byte(skey+"\n"), 0o600); err != nil {
		return err
	}
	return writeNew(filepath.Join(dir, PublicKeyFile), []byte(vkey+"\n"), 0o644)
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	if err := durable.WriteNew(path, data, mode); err != nil {
		return fmt.Errorf("couldn't write key file %s: %w", path, err)
	}
	return nil
}

// LoadSigner reads the log's signer key from dir/log.key. It refuses a
// file that others can read.
func LoadSigner(dir string) (c2sp.Signer, error) {
	path := filepath.Join(dir, PrivateKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read log key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("log key %s has mode %v; want 0600 (chmod 600 it)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read log key: %w", err)
	}
	return NewSigner(strings.TrimSpace(string(b)))
}

// NewSigner reads a log signer key: an Ed25519 (type 0x01) key in the
// signed-note private key encoding. Errors never show the key.
func NewSigner(skey string) (c2sp.Signer, error) {
	s, vkey, err := c2sp.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse log key (the key itself is not shown): %w", err)
	}
	if k, err := c2sp.ParseVKey(vkey); err != nil || k.Type != c2sp.TypeEd25519 {
		return nil, errors.New("couldn't parse log key: it is not an Ed25519 (type 0x01) key")
	}
	return s, nil
}

// LoadVerifierKey reads the log's vkey from dir/log.vkey.
func LoadVerifierKey(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		return "", fmt.Errorf("couldn't read log verifier key: %w", err)
	}
	vkey := strings.TrimSpace(string(b))
	if _, err := NewVerifier(vkey); err != nil {
		return "", err
	}
	return vkey, nil
}

// Sign returns c signed by the log key s as a note. The signer's name
// must be c's origin.
func Sign(c Checkpoint, s c2sp.Signer) ([]byte, error) {
	if s.Name() != c.Origin {
		return nil, fmt.Errorf("log key is named %q, checkpoint origin is %q", s.Name(), c.Origin)
	}
	b, err := c2sp.Sign(c.Marshal(), s)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign checkpoint: %w", err)
	}
	return b, nil
}

// Open verifies that signed is a checkpoint note signed by the log key v,
// whose name must be the checkpoint's origin (c2sp.OpenCheckpoint), and
// returns the checkpoint and the note (all its signature lines: the log's
// and others, such as witness cosignatures).
func Open(signed []byte, v c2sp.Verifier) (Checkpoint, *c2sp.Note, error) {
	c, n, _, err := c2sp.OpenCheckpoint(signed, v.Name(), v)
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("couldn't open checkpoint signed by %s: %w", v.Name(), err)
	}
	return c, n, nil
}

// NewVerifier parses a log's C2SP vkey: an Ed25519 (type 0x01) key.
func NewVerifier(vkey string) (c2sp.Verifier, error) {
	k, err := c2sp.ParseVKey(vkey)
	if err == nil && k.Type != c2sp.TypeEd25519 {
		err = fmt.Errorf("signature type 0x%02x, want Ed25519 (0x01)", k.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't parse log verifier key %q: %w", vkey, err)
	}
	return k.Verifier()
}
