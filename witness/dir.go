package witness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/durable"
)

// Files in a witness data directory.
const (
	KeyFile  = "witness.key"  // cosignature private keys, one a line, mode 0600
	VKeyFile = "witness.vkey" // cosignature verifier keys, one a line (public)
	DBFile   = "witness.db"   // SQLite state
)

// Keys selects the cosignature keys InitDirKeys makes: an Ed25519
// cosignature/v1 key (type 0x04), an ML-DSA-44 one (type 0x06, which C2SP
// tlog-cosignature recommends for new deployments), or both; a witness with
// both returns both cosignatures on every checkpoint.
type Keys struct {
	Ed25519, MLDSA44 bool
}

// InitDir creates a witness in dir (created if missing): a new Ed25519
// cosignature key for name and an empty state database. It refuses to
// overwrite an existing key or database. It returns the witness's vkey.
func InitDir(ctx context.Context, dir, name string) (vkey string, err error) {
	vkeys, err := InitDirKeys(ctx, dir, name, Keys{Ed25519: true})
	if err != nil {
		return "", err
	}
	return vkeys[0], nil
}

// InitDirKeys is InitDir with the keys of keys (at least one): the key
// file holds one private key a line (Ed25519 first), the vkey file the
// matching vkeys, and the database records them all. It returns the vkeys.
func InitDirKeys(ctx context.Context, dir, name string, keys Keys) (vkeys []string, err error) {
	if !keys.Ed25519 && !keys.MLDSA44 {
		return nil, errors.New("a witness needs an Ed25519 or an ML-DSA-44 key")
	}
	if err := durable.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("couldn't create witness directory %s: %w", dir, err)
	}
	for _, f := range []string{KeyFile, DBFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("refusing to initialize witness in %s: %s already exists", dir, f)
		}
	}
	var skeys []string
	for _, g := range []struct {
		want bool
		gen  func(string) (string, string, error)
	}{{keys.Ed25519, GenerateKey}, {keys.MLDSA44, GenerateMLDSAKey}} {
		if !g.want {
			continue
		}
		skey, vkey, err := g.gen(name)
		if err != nil {
			return nil, err
		}
		skeys, vkeys = append(skeys, skey), append(vkeys, vkey)
	}
	keyPath := filepath.Join(dir, KeyFile)
	if err := durable.WriteNew(keyPath, []byte(strings.Join(skeys, "\n")+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("couldn't write witness key file %s: %w", keyPath, err)
	}
	if err := durable.WriteNew(filepath.Join(dir, VKeyFile), []byte(strings.Join(vkeys, "\n")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("couldn't write witness vkey file: %w", err)
	}
	s, err := CreateStore(ctx, filepath.Join(dir, DBFile), name, strings.Join(vkeys, "\n"))
	if err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, fmt.Errorf("couldn't close new witness database: %w", err)
	}
	return vkeys, nil
}

// Dir is an opened witness data directory.
type Dir struct {
	Store *Store
	// Signer and VKey are the first key (Ed25519 if the witness has one).
	Signer c2sp.Signer
	Name   string
	VKey   string
	// Signers and VKeys are all the witness's keys, in key file order.
	Signers []c2sp.Signer
	VKeys   []string
}

// OpenDir opens the state and key of a directory made by InitDir. It checks
// that the key file is private and matches the identity in the database.
func OpenDir(ctx context.Context, dir string) (*Dir, error) {
	s, err := OpenStore(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		return nil, err
	}
	d, err := openKey(ctx, dir, s)
	if err != nil {
		s.Close()
		return nil, err
	}
	return d, nil
}

// OpenDirStore opens only the state of a witness directory (for commands
// that do not sign).
func OpenDirStore(ctx context.Context, dir string) (*Store, error) {
	return OpenStore(ctx, filepath.Join(dir, DBFile))
}

func openKey(ctx context.Context, dir string, s *Store) (*Dir, error) {
	keyPath := filepath.Join(dir, KeyFile)
	skey, err := durable.ReadPrivate(keyPath, "witness key file")
	if err != nil {
		return nil, err
	}
	signers, vkeys, err := NewSigners(string(skey))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	name, storedVKey, err := s.Identity(ctx)
	if err != nil {
		return nil, err
	}
	if storedVKey != strings.Join(vkeys, "\n") {
		return nil, errors.New("witness key file does not match the identity recorded in the database")
	}
	return &Dir{Store: s, Signer: signers[0], Name: name, VKey: vkeys[0], Signers: signers, VKeys: vkeys}, nil
}

// Close closes the directory's store.
func (d *Dir) Close() error { return d.Store.Close() }
