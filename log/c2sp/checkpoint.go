package c2sp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// MaxTreeSize is the largest tree size a checkpoint may carry: sizes are
// int64 in golang.org/x/mod/sumdb/tlog and in the tile math.
const MaxTreeSize = 1<<63 - 1

// Checkpoint is a C2SP tlog-checkpoint body.
type Checkpoint struct {
	Origin string
	Size   uint64
	// Hash is the RFC 6962 root hash of the tree of Size leaves.
	Hash [HashSize]byte
	// Extensions are the optional lines after the root hash, without
	// their newlines.
	Extensions []string
}

// Marshal returns the checkpoint body: origin, decimal size, base64 root
// hash and extension lines, each ending in a newline.
func (c Checkpoint) Marshal() []byte {
	b := make([]byte, 0, len(c.Origin)+66)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Hash[:])
	b = append(b, '\n')
	for _, e := range c.Extensions {
		b = append(b, e...)
		b = append(b, '\n')
	}
	return b
}

// ParseCheckpoint parses a checkpoint body strictly: a non-empty origin
// line, a canonical decimal size up to MaxTreeSize, a canonical base64
// 32-byte root hash, then non-empty extension lines, each line ending in
// a newline, valid note text. It verifies nothing.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	var c Checkpoint
	if len(text) > MaxNoteSize {
		return c, fmt.Errorf("checkpoint body is %d bytes, over the limit of %d", len(text), MaxNoteSize)
	}
	if err := checkText(text); err != nil {
		return c, fmt.Errorf("malformed checkpoint: %w", err)
	}
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return c, errors.New("malformed checkpoint: body does not end in a newline")
	}
	r := lines{rest: text}
	origin, _ := r.next()
	size, ok1 := r.next()
	hash, ok2 := r.next()
	if !ok1 || !ok2 {
		return c, fmt.Errorf("malformed checkpoint: %d lines, want at least 3 (origin, size, root hash)", bytes.Count(text, []byte("\n")))
	}
	if len(origin) == 0 {
		return c, errors.New("malformed checkpoint: empty origin line")
	}
	c.Origin = string(origin)
	n, err := ParseDecimal(string(size))
	if err != nil {
		return c, fmt.Errorf("malformed checkpoint: size: %w", err)
	}
	if n > MaxTreeSize {
		return c, fmt.Errorf("malformed checkpoint: size %d is above 2^63-1", n)
	}
	c.Size = n
	if c.Hash, err = ParseHash(string(hash)); err != nil {
		return c, fmt.Errorf("malformed checkpoint: root hash: %w", err)
	}
	for {
		e, ok := r.next()
		if !ok {
			break
		}
		if len(e) == 0 {
			return c, errors.New("malformed checkpoint: empty extension line")
		}
		c.Extensions = append(c.Extensions, string(e))
	}
	return c, nil
}

// OpenCheckpoint opens a signed checkpoint: it splits the note, parses its
// text as a checkpoint whose origin must be origin, and verifies it with
// the log's keys (Note.Verify: signatures by other keys, such as
// cosignatures, are ignored; one by a log key that does not verify is an
// error). It returns the checkpoint, the note (all its signatures) and the
// verified signatures.
func OpenCheckpoint(msg []byte, origin string, logKeys ...Verifier) (Checkpoint, *Note, []Signature, error) {
	n, err := SplitNote(msg)
	if err != nil {
		return Checkpoint{}, nil, nil, err
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, nil, nil, err
	}
	if c.Origin != origin {
		return Checkpoint{}, nil, nil, fmt.Errorf("checkpoint origin %q, want %q", c.Origin, origin)
	}
	verified, err := n.Verify(logKeys...)
	if err != nil {
		return Checkpoint{}, nil, nil, fmt.Errorf("couldn't verify the checkpoint's log signature: %w", err)
	}
	return c, n, verified, nil
}
