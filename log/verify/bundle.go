package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/keycommit/keycommit/log/c2sp"
)

// BundleHeader is the first line of a version 1 keys bundle.
const BundleHeader = "keycommit.bundle/v1"

// Limits on a bundle's parts. A key set of 1,000 issuers with 6 PST keys
// each is about 1.2 MB.
const (
	MaxBundleSize        = 64 << 20
	MaxEntrySize         = c2sp.MaxEntrySize // as tlog-tiles entry bundles allow
	MaxInclusionHashes   = c2sp.MaxInclusionHashes
	MaxConsistencyHashes = 126
)

// Bundle is a parsed keys bundle (docs/bundle.md): the complete key set, the
// snapshot entry committing to it, the entry's index and inclusion proof,
// optionally a consistency proof from an older tree size, and the checkpoint
// (a signed note with its witness cosignatures), byte for byte.
type Bundle struct {
	// KeySet is the canonical JSON encoding of the key set.
	KeySet []byte
	// Entry is the snapshot entry, exactly the log leaf.
	Entry []byte
	// Consistency, if not nil, proves the checkpoint's tree extends the
	// tree of size Consistency.OldSize.
	Consistency *ConsistencyProof
	// Index is the entry's index in the log.
	Index uint64
	// Inclusion is the RFC 6962 inclusion proof of the entry in the
	// checkpoint's tree, from the leaf's sibling up.
	Inclusion [][]byte
	// Checkpoint is the signed checkpoint note, verbatim.
	Checkpoint []byte
}

// ConsistencyProof is an RFC 6962 consistency proof from tree size OldSize
// to the size of the bundle's checkpoint.
type ConsistencyProof struct {
	OldSize uint64
	Hashes  [][]byte
}

// Marshal encodes the bundle. It refuses a bundle that ParseBundle would
// refuse, so that Marshal and ParseBundle are exact inverses.
func (b *Bundle) Marshal() ([]byte, error) {
	out, _ := b.encode(len(b.KeySet), func(dst []byte) []byte { return append(dst, b.KeySet...) })
	if _, err := ParseBundle(out); err != nil {
		return nil, fmt.Errorf("couldn't encode bundle: %w", err)
	}
	return out, nil
}

// encode returns b's encoding with the key set appended by appendKeySet
// (keySetLen bytes, which b.KeySet need not hold) into one buffer of
// exactly the encoding's size, and where the key set starts in it. It
// checks nothing: Marshal does, and the verifier encodes only bundles
// whose parts were read by ParseBundle or ParseDelta (with the size
// checked, encodedLen).
func (b *Bundle) encode(keySetLen int, appendKeySet func([]byte) []byte) (out []byte, keySetStart int) {
	keySetWrites.Add(1)
	out = make([]byte, 0, b.encodedLen(keySetLen))
	out = append(out, BundleHeader+"\nkeyset "...)
	keySetStart = len(out)
	out = appendKeySet(out)
	out = append(out, "\nentry "...)
	out = append(out, b.Entry...)
	out = append(out, '\n')
	if b.Consistency != nil {
		out = append(out, "consistency "...)
		out = strconv.AppendUint(out, b.Consistency.OldSize, 10)
		out = append(out, '\n')
		out = appendHashes(out, b.Consistency.Hashes)
	}
	out = append(out, "index "...)
	out = strconv.AppendUint(out, b.Index, 10)
	out = append(out, '\n')
	out = appendHashes(out, b.Inclusion)
	out = append(out, '\n')
	return append(out, b.Checkpoint...), keySetStart
}

// keySetWrites counts the key sets written into a new buffer (a bundle's
// encoding, or a key set's alone), so that a test can tell that a delta
// writes none before its bytes are asked for.
var keySetWrites atomic.Int64

// encodedLen returns the length of b's encoding with a key set of
// keySetLen bytes.
func (b *Bundle) encodedLen(keySetLen int) int {
	var dec [20]byte
	n := len(BundleHeader+"\nkeyset ") + keySetLen + len("\nentry ") + len(b.Entry) + 1
	if c := b.Consistency; c != nil {
		n += len("consistency ") + len(strconv.AppendUint(dec[:0], c.OldSize, 10)) + 1 + hashesLen(c.Hashes)
	}
	n += len("index ") + len(strconv.AppendUint(dec[:0], b.Index, 10)) + 1 + hashesLen(b.Inclusion)
	return n + 1 + len(b.Checkpoint)
}

func appendHashes(out []byte, hs [][]byte) []byte {
	for _, h := range hs {
		out = base64.StdEncoding.AppendEncode(out, h)
		out = append(out, '\n')
	}
	return out
}

func hashesLen(hs [][]byte) int {
	n := 0
	for _, h := range hs {
		n += base64.StdEncoding.EncodedLen(len(h)) + 1
	}
	return n
}

// ParseBundle parses a version 1 keys bundle. It checks the format only
// (one encoding, limits); it verifies nothing. Errors are *Error with
// Check CheckFormat.
func ParseBundle(raw []byte) (*Bundle, error) {
	b, err := parseBundle(raw)
	if err != nil {
		return nil, failErr(CheckFormat, err)
	}
	return b, nil
}

func parseBundle(raw []byte) (*Bundle, error) {
	if len(raw) > MaxBundleSize {
		return nil, fmt.Errorf("bundle is %d bytes, over the limit of %d", len(raw), MaxBundleSize)
	}
	r := lineReader{rest: raw}
	line, ok := r.next()
	if !ok || string(line) != BundleHeader {
		return nil, fmt.Errorf("bundle does not start with the line %q", BundleHeader)
	}
	b := &Bundle{}
	var err error
	if b.KeySet, err = r.field("keyset"); err != nil {
		return nil, err
	}
	if len(b.KeySet) == 0 {
		return nil, errors.New("keyset is empty")
	}
	if b.Entry, err = r.field("entry"); err != nil {
		return nil, err
	}
	if len(b.Entry) == 0 || len(b.Entry) > MaxEntrySize {
		return nil, fmt.Errorf("entry is %d bytes, want 1 to %d", len(b.Entry), MaxEntrySize)
	}
	line, ok = r.next()
	if !ok {
		return nil, errors.New("bundle ends after the entry")
	}
	if v, found := bytes.CutPrefix(line, []byte("consistency ")); found {
		old, err := c2sp.ParseDecimal(string(v))
		if err != nil {
			return nil, fmt.Errorf("consistency: old size %w", err)
		}
		if old == 0 {
			return nil, errors.New("consistency: old size is 0 (no proof is needed from the empty tree)")
		}
		c := &ConsistencyProof{OldSize: old}
		for {
			if line, ok = r.next(); !ok {
				return nil, errors.New("bundle ends inside the consistency proof")
			}
			if bytes.HasPrefix(line, []byte("index ")) {
				break
			}
			h, err := decodeHash(string(line))
			if err != nil {
				return nil, fmt.Errorf("consistency proof: %w", err)
			}
			if len(c.Hashes) == MaxConsistencyHashes {
				return nil, fmt.Errorf("consistency proof has more than %d hashes", MaxConsistencyHashes)
			}
			c.Hashes = append(c.Hashes, h)
		}
		b.Consistency = c
	}
	v, found := bytes.CutPrefix(line, []byte("index "))
	if !found {
		return nil, fmt.Errorf("want an index line, got %.40q", line)
	}
	if b.Index, err = c2sp.ParseDecimal(string(v)); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	for {
		if line, ok = r.next(); !ok {
			return nil, errors.New("bundle ends inside the inclusion proof")
		}
		if len(line) == 0 {
			break
		}
		h, err := decodeHash(string(line))
		if err != nil {
			return nil, fmt.Errorf("inclusion proof: %w", err)
		}
		if len(b.Inclusion) == MaxInclusionHashes {
			return nil, fmt.Errorf("inclusion proof has more than %d hashes", MaxInclusionHashes)
		}
		b.Inclusion = append(b.Inclusion, h)
	}
	b.Checkpoint = r.rest
	if len(b.Checkpoint) == 0 {
		return nil, errors.New("bundle has no checkpoint")
	}
	if len(b.Checkpoint) > MaxNoteSize {
		return nil, fmt.Errorf("checkpoint is %d bytes, over the limit of %d", len(b.Checkpoint), MaxNoteSize)
	}
	return b, nil
}

// decodeHash decodes a canonical base64 SHA-256 hash (c2sp.ParseHash).
func decodeHash(s string) ([]byte, error) {
	h, err := c2sp.ParseHash(s)
	if err != nil {
		return nil, err
	}
	return h[:], nil
}

// lineReader splits input into "\n"-terminated lines; a final line without
// a newline is not a line.
type lineReader struct{ rest []byte }

func (r *lineReader) next() ([]byte, bool) {
	i := bytes.IndexByte(r.rest, '\n')
	if i < 0 {
		return nil, false
	}
	line := r.rest[:i]
	r.rest = r.rest[i+1:]
	return line, true
}

// field reads a line `<name> <value>` and returns value.
func (r *lineReader) field(name string) ([]byte, error) {
	line, ok := r.next()
	if !ok {
		return nil, fmt.Errorf("bundle ends before the %s line", name)
	}
	v, found := bytes.CutPrefix(line, []byte(name+" "))
	if !found {
		return nil, fmt.Errorf("want a %s line, got %.40q", name, line)
	}
	return v, nil
}
