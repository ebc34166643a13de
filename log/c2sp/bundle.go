package c2sp

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Entry bundle limits (c2sp.org/tlog-tiles): a bundle holds at most 256
// entries, each at most 65,535 bytes behind its 2-byte length.
const (
	EntryBundleWidth = 256
	MaxEntrySize     = 1<<16 - 1
)

// AppendEntryBundle appends the entry bundle of entries to b: each entry's
// length as a big-endian uint16, then its bytes. It refuses more than
// EntryBundleWidth entries and entries over MaxEntrySize. b grows once, to
// the bundle's size.
func AppendEntryBundle(b []byte, entries [][]byte) ([]byte, error) {
	if len(entries) > EntryBundleWidth {
		return nil, fmt.Errorf("entry bundle of %d entries, over the limit of %d", len(entries), EntryBundleWidth)
	}
	size := 0
	for i, e := range entries {
		if len(e) > MaxEntrySize {
			return nil, fmt.Errorf("entry %d is %d bytes, over the limit of %d", i, len(e), MaxEntrySize)
		}
		size += 2 + len(e)
	}
	b = slices.Grow(b, size)
	for _, e := range entries {
		b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
		b = append(b, e...)
	}
	return b, nil
}

// ParseEntryBundle splits an entry bundle that holds exactly n entries
// (1 to EntryBundleWidth) and nothing after them. The entries are slices of
// b with their capacity cut, so appending to one does not touch the next.
func ParseEntryBundle(b []byte, n int) ([][]byte, error) {
	entries, rest, err := SplitEntryBundle(b, n)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("entry bundle has %d bytes after its %d entries", len(rest), n)
	}
	return entries, nil
}

// SplitEntryBundle reads the first n entries (1 to EntryBundleWidth) of
// an entry bundle and returns them and the bytes after them, for a bundle
// that may have grown since (a partial bundle read from a full one).
func SplitEntryBundle(b []byte, n int) (entries [][]byte, rest []byte, err error) {
	if n < 1 || n > EntryBundleWidth {
		return nil, nil, fmt.Errorf("entry bundle width %d is outside 1..%d", n, EntryBundleWidth)
	}
	entries = make([][]byte, 0, n)
	for len(entries) < n {
		if len(b) < 2 {
			return nil, nil, fmt.Errorf("entry bundle is truncated: %d entries, want %d", len(entries), n)
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			return nil, nil, fmt.Errorf("entry bundle: entry %d is truncated: %d bytes of %d", len(entries), len(b)-2, l)
		}
		entries = append(entries, b[2:2+l:2+l])
		b = b[2+l:]
	}
	return entries, b, nil
}
