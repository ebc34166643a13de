// Package checkpoint reads and writes the log's C2SP tlog-checkpoint
// signed notes and its Ed25519 log key.
//
// A checkpoint body is the origin line, the decimal tree size, the
// standard-base64 RFC 6962 root hash, and optional extension lines, each
// ending in a newline. It is signed as a C2SP signed-note (the format of
// golang.org/x/mod/sumdb/note) by the log key, whose name is the origin.
package checkpoint

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a parsed checkpoint body.
type Checkpoint struct {
	Origin string
	Size   uint64
	Hash   tlog.Hash
	// Extensions are the optional lines after the root hash (without
	// their newlines).
	Extensions []string
}

// Marshal returns the checkpoint body.
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseBody parses a checkpoint body strictly: a non-empty origin, a
// decimal size without leading zeros, a canonical base64 32-byte hash, and
// non-empty extension lines.
func ParseBody(text []byte) (Checkpoint, error) {
	var c Checkpoint
	s := string(text)
	if !strings.HasSuffix(s, "\n") {
		return c, errors.New("malformed checkpoint: does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) < 3 {
		return c, fmt.Errorf("malformed checkpoint: %d lines, want at least 3 (origin, size, root hash)", len(lines))
	}
	if lines[0] == "" {
		return c, errors.New("malformed checkpoint: empty origin line")
	}
	c.Origin = lines[0]
	n, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != lines[1] {
		return c, fmt.Errorf("malformed checkpoint: size %q is not a decimal integer", lines[1])
	}
	c.Size = n
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize || base64.StdEncoding.EncodeToString(h) != lines[2] {
		return c, fmt.Errorf("malformed checkpoint: root hash %q is not 32 bytes in standard base64", lines[2])
	}
	copy(c.Hash[:], h)
	for _, e := range lines[3:] {
		if e == "" {
			return c, errors.New("malformed checkpoint: empty extension line")
		}
		c.Extensions = append(c.Extensions, e)
	}
	return c, nil
}

// GenerateKey returns a new Ed25519 log key named origin, as a note
// signer key ("PRIVATE+KEY+<origin>+<hash>+<base64>") and a C2SP vkey
// ("<origin>+<hash>+<base64>").
func GenerateKey(origin string) (skey, vkey string, err error) {
	if err := CheckOrigin(origin); err != nil {
		return "", "", err
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, origin)
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
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("couldn't create key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("couldn't sync %s: %w", path, err)
	}
	return f.Close()
}

// LoadSigner reads the log's signer key from dir/log.key. It refuses a
// file that others can read.
func LoadSigner(dir string) (note.Signer, error) {
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
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("couldn't parse log key %s (the key itself is not shown): %w", path, errors.Unwrap(err))
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
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", fmt.Errorf("couldn't parse log verifier key %q: %w", vkey, err)
	}
	return vkey, nil
}

// Sign returns c signed by the log key s as a note. The signer's name
// must be c's origin.
func Sign(c Checkpoint, s note.Signer) ([]byte, error) {
	if s.Name() != c.Origin {
		return nil, fmt.Errorf("log key is named %q, checkpoint origin is %q", s.Name(), c.Origin)
	}
	b, err := note.Sign(&note.Note{Text: string(c.Marshal())}, s)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign checkpoint: %w", err)
	}
	return b, nil
}

// Open verifies that signed is a checkpoint note signed by the log key v
// and returns the checkpoint and the note (whose Sigs hold the verified
// signature; UnverifiedSigs hold others, such as witness cosignatures).
// The checkpoint's origin must be the key's name.
func Open(signed []byte, v note.Verifier) (Checkpoint, *note.Note, error) {
	if err := checkSignatureEncoding(signed); err != nil {
		return Checkpoint{}, nil, err
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("couldn't verify checkpoint signature by %s: %w", v.Name(), err)
	}
	c, err := ParseBody([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, nil, fmt.Errorf("checkpoint origin %q is not the log key's name %q", c.Origin, v.Name())
	}
	return c, n, nil
}

// NewVerifier parses a C2SP vkey.
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse log verifier key %q: %w", vkey, err)
	}
	return v, nil
}

// checkSignatureEncoding rejects signature lines whose base64 is not
// canonical (non-zero padding bits), which note.Open tolerates, so that
// every checkpoint has exactly one accepted encoding.
func checkSignatureEncoding(signed []byte) error {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return errors.New("malformed checkpoint note: no signature block")
	}
	sigs := strings.TrimSuffix(string(signed[i+2:]), "\n")
	for _, line := range strings.Split(sigs, "\n") {
		j := strings.LastIndexByte(line, ' ')
		if j < 0 {
			return fmt.Errorf("malformed checkpoint signature line %q", line)
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(line[j+1:]); err != nil {
			return fmt.Errorf("checkpoint signature line is not canonical base64: %v", err)
		}
	}
	return nil
}
