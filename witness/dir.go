package witness

import (
	"context"
	"errors"
	"fmt"
	"github.com/keycommit/keycommit/log/durable"
	"os"
	"path/filepath"

	"github.com/keycommit/keycommit/log/c2sp"
)

// Files in a witness data directory.
const (
	KeyFile  = "witness.key"  // cosignature private key, mode 0600
	VKeyFile = "witness.vkey" // cosignature verifier key (public)
	DBFile   = "witness.db"   // SQLite state
)

// InitDir creates a witness in dir (created if missing): a new cosignature
// key for name and an empty state database. It refuses to overwrite an
// existing key or database. It returns the witness's vkey.
func InitDir(ctx context.Context, dir, name string) (vkey string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("couldn't create witness directory %s: %w", dir, err)
	}
	for _, f := range []string{KeyFile, DBFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return "", fmt.Errorf("refusing to initialize witness in %s: %s already exists", dir, f)
		}
	}
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		return "", err
	}
	keyPath := filepath.Join(dir, KeyFile)
	if err := durable.WriteNew(keyPath, []byte(skey+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("couldn't write witness key file %s: %w", keyPath, err)
	}
	if err := durable.WriteNew(filepath.Join(dir, VKeyFile), []byte(vkey+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("couldn't write witness vkey file: %w", err)
	}
	s, err := CreateStore(ctx, filepath.Join(dir, DBFile), name, vkey)
	if err != nil {
		return "", err
	}
	if err := s.Close(); err != nil {
		return "", fmt.Errorf("couldn't close new witness database: %w", err)
	}
	return vkey, nil
}

// Dir is an opened witness data directory.
type Dir struct {
	Store  *Store
	Signer c2sp.Signer
	Name   string
	VKey   string
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
	signer, vkey, err := NewSigner(string(skey))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	name, storedVKey, err := s.Identity(ctx)
	if err != nil {
		return nil, err
	}
	if storedVKey != vkey {
		return nil, errors.New("witness key file does not match the identity recorded in the database")
	}
	return &Dir{Store: s, Signer: signer, Name: name, VKey: vkey}, nil
}

// Close closes the directory's store.
func (d *Dir) Close() error { return d.Store.Close() }
