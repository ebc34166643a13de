package monitor

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxNoteSize bounds a signed checkpoint (body and signature lines).
const maxNoteSize = 64 << 10

// Checkpoint is a C2SP tlog-checkpoint whose log signature has been
// verified.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	// Note is the signed note exactly as received, including any
	// cosignatures it carried.
	Note []byte
}

// emptyRoot is the RFC 6962 hash of the empty tree.
var emptyRoot = tlog.Hash(sha256.Sum256(nil))

// openCheckpoint verifies msg's signature by v and parses its body. The
// origin line must equal origin. Signatures by other keys (witness
// cosignatures) are allowed and kept in Note; a signature by v that does
// not verify is an error.
func openCheckpoint(msg []byte, v note.Verifier, origin string) (*Checkpoint, error) {
	if len(msg) > maxNoteSize {
		return nil, fmt.Errorf("checkpoint is %d bytes, over the limit of %d", len(msg), maxNoteSize)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return nil, fmt.Errorf("checkpoint carries no signature by the log key %s", v.Name())
		}
		return nil, fmt.Errorf("couldn't verify the checkpoint's log signature: %w", err)
	}
	cp, err := parseCheckpointText(n.Text)
	if err != nil {
		return nil, err
	}
	if cp.Origin != origin {
		return nil, fmt.Errorf("checkpoint origin %q, want %q", cp.Origin, origin)
	}
	cp.Note = append([]byte(nil), msg...)
	return cp, nil
}

// parseCheckpointText parses a checkpoint body: origin, decimal size,
// base64 root hash, then optional extension lines.
func parseCheckpointText(text string) (*Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return nil, errors.New("malformed checkpoint: want origin, size and root hash lines ending in a newline")
	}
	for _, ext := range lines[3 : len(lines)-1] {
		if ext == "" {
			return nil, errors.New("malformed checkpoint: empty extension line")
		}
	}
	origin := lines[0]
	if origin == "" {
		return nil, errors.New("malformed checkpoint: empty origin line")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("malformed checkpoint: size %q is not a decimal tree size", lines[1])
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return nil, fmt.Errorf("malformed checkpoint: root hash %q is not 32 bytes of base64", lines[2])
	}
	cp := &Checkpoint{Origin: origin, Size: size}
	copy(cp.Root[:], h)
	if size == 0 && cp.Root != emptyRoot {
		return nil, errors.New("malformed checkpoint: size 0 with a root hash other than the empty tree's")
	}
	return cp, nil
}

// originOf returns the first line of a note without verifying it, to pick
// the log key that must have signed it.
func originOf(msg []byte) string {
	i := bytes.IndexByte(msg, '\n')
	if i < 0 {
		return ""
	}
	return string(msg[:i])
}

// originID is the hex SHA-256 of an origin, as in the C2SP witness
// monitoring read path (/<originID>/checkpoint).
func originID(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return fmt.Sprintf("%x", h)
}

func (c *Checkpoint) tree() tlog.Tree { return tlog.Tree{N: c.Size, Hash: c.Root} }

func (c *Checkpoint) String() string { return fmt.Sprintf("%s@%d(%s)", c.Origin, c.Size, c.Root) }
