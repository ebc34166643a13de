package monitor

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/keycommit/keycommit/log/c2sp"
)

// maxNoteSize bounds a signed checkpoint (body and signature lines).
const maxNoteSize = c2sp.MaxNoteSize

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

// openCheckpoint verifies msg's signature by v and parses its body
// (c2sp.OpenCheckpoint). The origin line must equal origin. Signatures by
// other keys (witness cosignatures) are allowed and kept in Note; a
// signature by v that does not verify is an error, and so is a tree of
// size 0 whose root is not the empty tree's.
func openCheckpoint(msg []byte, v c2sp.Verifier, origin string) (*Checkpoint, error) {
	c, _, _, err := c2sp.OpenCheckpoint(msg, origin, v)
	if errors.Is(err, c2sp.ErrUnverified) {
		return nil, fmt.Errorf("checkpoint carries no signature by the log key %s", v.Name())
	}
	if err != nil {
		return nil, err
	}
	cp := &Checkpoint{Origin: c.Origin, Size: int64(c.Size), Root: c.Hash, Note: append([]byte(nil), msg...)}
	if cp.Size == 0 && cp.Root != emptyRoot {
		return nil, errors.New("malformed checkpoint: size 0 with a root hash other than the empty tree's")
	}
	return cp, nil
}

// originOf returns the first line of a note without verifying it, to pick
// the log key that must have signed it.
func originOf(msg []byte) string {
	o, _ := c2sp.CheckpointOrigin(msg)
	return o
}

// originID is the hex SHA-256 of an origin, as in the C2SP witness
// monitoring read path (/<originID>/checkpoint).
func originID(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return fmt.Sprintf("%x", h)
}

func (c *Checkpoint) tree() tlog.Tree { return tlog.Tree{N: c.Size, Hash: c.Root} }

func (c *Checkpoint) String() string { return fmt.Sprintf("%s@%d(%s)", c.Origin, c.Size, c.Root) }
