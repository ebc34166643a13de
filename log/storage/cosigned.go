package storage

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/keycommit/keycommit/log/c2sp"
)

// ErrCosignedConflict is wrapped by SetCosigned's error when the note has
// the stored cosigned checkpoint's size but a different checkpoint body.
var ErrCosignedConflict = errors.New("cosigned checkpoint of the stored size has a different body")

// MergeCosigned is the rule every backend's SetCosigned applies, under
// the same lock or transaction as the write: given the stored cosigned
// checkpoint (stored nil if none) and a new one, it returns the note to
// store, or nil to keep the stored one.
//
//   - A larger size replaces the stored note; a smaller one is ignored.
//   - The same size with the same checkpoint body (the text before the
//     signatures) is merged signature line by signature line: for each
//     key (name and key ID) the line with the newer tlog-cosignature
//     timestamp is kept, and keys only one note has are all kept, so a
//     quorum assembled over several rounds survives and a note with older
//     cosignatures never replaces newer ones. Lines keep the stored
//     note's order, new keys come after.
//   - The same size with a different body is refused with
//     ErrCosignedConflict.
//
// It does not verify signatures: the writer (the sequencer's witness
// loop) stores only verified ones.
func MergeCosigned(storedSize uint64, stored []byte, size uint64, note []byte) ([]byte, error) {
	if stored == nil || size > storedSize {
		if _, _, err := splitSigned(note); err != nil {
			return nil, fmt.Errorf("couldn't store cosigned checkpoint of size %d: %w", size, err)
		}
		return note, nil
	}
	if size < storedSize {
		return nil, nil
	}
	oldText, oldLines, err := splitSigned(stored)
	if err != nil {
		// A stored note this code did not write: the new one wins.
		return note, nil
	}
	text, lines, err := splitSigned(note)
	if err != nil {
		return nil, fmt.Errorf("couldn't store cosigned checkpoint of size %d: %w", size, err)
	}
	if !bytes.Equal(text, oldText) {
		return nil, fmt.Errorf("couldn't store cosigned checkpoint of size %d: %w", size, ErrCosignedConflict)
	}
	merged := make([]sigLine, len(oldLines))
	copy(merged, oldLines)
	changed := false
	for _, l := range lines {
		i := indexKey(merged, l.key)
		switch {
		case i < 0:
			merged = append(merged, l)
			changed = true
		case l.time > merged[i].time:
			merged[i] = l
			changed = true
		}
	}
	if !changed {
		return nil, nil
	}
	var b bytes.Buffer
	b.Write(text)
	b.WriteByte('\n')
	for _, l := range merged {
		b.Write(l.line)
	}
	return b.Bytes(), nil
}

type sigLine struct {
	key  string // name and key ID
	time uint64 // tlog-cosignature timestamp (0 if the signature has none)
	line []byte // with its newline
}

func indexKey(ls []sigLine, key string) int {
	for i, l := range ls {
		if l.key == key {
			return i
		}
	}
	return -1
}

// splitSigned splits a signed note (c2sp.SplitNote) into its text (with
// its final newline) and signature lines. A tlog-cosignature (Ed25519 or
// ML-DSA-44) is timestamp ‖ signature; a log's own Ed25519 signature is 64
// bytes and has no timestamp. (Two different lines of any other key keep
// one of the two, either being as good.)
func splitSigned(msg []byte) ([]byte, []sigLine, error) {
	n, err := c2sp.SplitNote(msg)
	if err != nil {
		return nil, nil, fmt.Errorf("not a signed note: %w", err)
	}
	out := make([]sigLine, 0, len(n.Sigs))
	for _, s := range n.Sigs {
		l := sigLine{key: fmt.Sprintf("%s %08x", s.Name, s.Hash), line: s.Line()}
		if len(s.Sig) >= 8+64 {
			l.time, _ = c2sp.CosignatureTimestamp(s.Sig)
		}
		out = append(out, l)
	}
	return n.Text, out, nil
}
