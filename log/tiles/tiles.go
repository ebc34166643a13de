// Package tiles is the pure tree math of the log: C2SP tlog-tiles paths,
// tiles of height 8, the tiles that change when leaves are appended, and
// hash readers over tile data. It builds on golang.org/x/mod/sumdb/tlog
// and does no I/O.
//
// A hash tile at level L holds up to 256 hashes of the tree level 8·L
// (32 bytes each); an entry bundle (level -1 here, "entries" in paths)
// holds up to 256 entries, each a big-endian uint16 length and the entry
// bytes. Tile N at width W < 256 is a partial tile. Tile data at a given
// (L, N, W) never changes, and the data of a narrower tile is a prefix of
// the data of a wider one.
package tiles

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Height is the tile height: each tile spans 8 levels of the tree.
const Height = 8

// Width is the number of hashes (or entries) in a full tile.
const Width = 1 << Height

// EntriesLevel is the level used for entry bundles in tlog.Tile values.
const EntriesLevel = -1

// LeafHash returns the RFC 6962 leaf hash of the entry bytes:
// SHA-256(0x00 ‖ entry).
func LeafHash(entry []byte) tlog.Hash { return tlog.RecordHash(entry) }

// Path returns the C2SP tlog-tiles path of t (without a leading slash):
// tile/<L>/<N>[.p/<W>] for hash tiles and tile/entries/<N>[.p/<W>] for
// entry bundles (t.L == EntriesLevel).
func Path(t tlog.Tile) string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.L == EntriesLevel {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(t.L))
	}
	b.WriteByte('/')
	b.WriteString(encodeN(t.N))
	if t.W < Width {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(t.W))
	}
	return b.String()
}

// encodeN writes n in 3-digit path elements, all but the last with an x
// prefix: 1234067 -> x001/x234/067.
func encodeN(n int64) string {
	s := fmt.Sprintf("%03d", n)
	for len(s)%3 != 0 {
		s = "0" + s
	}
	var parts []string
	for i := 0; i < len(s); i += 3 {
		p := s[i : i+3]
		if i+3 < len(s) {
			p = "x" + p
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "/")
}

// ErrBadPath is returned (wrapped) for a malformed tile path.
var ErrBadPath = errors.New("malformed tile path")

// maxLevel bounds the level of a hash tile: 8·64 tree levels is more than
// any int64 tree size needs.
const maxLevel = 63

// ParsePath parses a C2SP tlog-tiles path such as "tile/0/x001/234" or
// "tile/entries/005.p/17" (a leading slash is allowed). Only the canonical
// spelling is accepted: no leading zeros beyond the 3-digit elements, no
// empty elements, widths 1..255 for partial tiles.
func ParsePath(path string) (tlog.Tile, error) {
	bad := func(why string) (tlog.Tile, error) {
		return tlog.Tile{}, fmt.Errorf("%w %q: %s", ErrBadPath, path, why)
	}
	p := strings.TrimPrefix(path, "/")
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return bad("does not start with tile/")
	}
	elems := strings.Split(rest, "/")
	if len(elems) < 2 {
		return bad("want tile/<L>/<N>")
	}
	t := tlog.Tile{H: Height, W: Width}
	if elems[0] == "entries" {
		t.L = EntriesLevel
	} else {
		l, err := strconv.Atoi(elems[0])
		if err != nil || l < 0 || l > maxLevel || strconv.Itoa(l) != elems[0] {
			return bad("level must be a decimal integer 0.." + strconv.Itoa(maxLevel) + " or \"entries\"")
		}
		t.L = l
	}
	nElems := elems[1:]
	// A partial tile ends in "<NNN>.p/<W>".
	if last := nElems[len(nElems)-1]; len(nElems) >= 2 && strings.HasSuffix(nElems[len(nElems)-2], ".p") {
		w, err := strconv.Atoi(last)
		if err != nil || w < 1 || w >= Width || strconv.Itoa(w) != last {
			return bad("partial width must be a decimal integer 1..255")
		}
		t.W = w
		nElems = nElems[:len(nElems)-1]
		nElems[len(nElems)-1] = strings.TrimSuffix(nElems[len(nElems)-1], ".p")
	}
	var digits strings.Builder
	for i, e := range nElems {
		if i < len(nElems)-1 {
			if !strings.HasPrefix(e, "x") {
				return bad("every element of N but the last needs an x prefix")
			}
			e = e[1:]
		}
		if len(e) != 3 {
			return bad("elements of N are 3 digits")
		}
		for _, c := range []byte(e) {
			if c < '0' || c > '9' {
				return bad("elements of N are 3 digits")
			}
		}
		digits.WriteString(e)
	}
	if len(nElems) > 1 && strings.HasPrefix(nElems[0], "x000") {
		return bad("N has a leading zero element")
	}
	if digits.Len() > 18 {
		return bad("N is too large")
	}
	n, err := strconv.ParseInt(digits.String(), 10, 64)
	if err != nil {
		return bad("N is not a number")
	}
	t.N = n
	return t, nil
}

// TileAt returns hash tile n of level l (or entry bundle n, for l ==
// EntriesLevel) with the width it has in a tree of the given size. ok is
// false when the tile has no data at that size.
func TileAt(l int, n int64, size int64) (t tlog.Tile, ok bool) {
	shift := uint(0)
	if l > 0 { // entry bundles count leaves, like level 0
		shift = uint(l * Height)
	}
	count := size >> shift // hashes (or entries) at this level
	start := n << Height
	if n < 0 || count <= start {
		return tlog.Tile{}, false
	}
	w := count - start
	if w > Width {
		w = Width
	}
	return tlog.Tile{H: Height, L: l, N: n, W: int(w)}, true
}

// InTree reports whether tile t (hash tile or entry bundle) exists, at
// least as wide as t.W, in a tree of the given size.
func InTree(t tlog.Tile, size int64) bool {
	l := t.L
	if l == EntriesLevel {
		l = 0
	}
	full, ok := TileAt(l, t.N, size)
	return ok && full.W >= t.W
}

// EdgeTiles returns, for a tree of the given size, the last tile of every
// level that has one (full or partial): exactly the tiles holding every
// hash that appending to the tree, computing its root, or proving a new
// leaf can need beyond the new leaves themselves.
func EdgeTiles(size int64) []tlog.Tile {
	var ts []tlog.Tile
	for l := 0; size>>uint(l*Height) > 0; l++ {
		count := size >> uint(l*Height)
		n := (count - 1) >> Height
		t, _ := TileAt(l, n, size)
		ts = append(ts, t)
	}
	return ts
}

// NewTiles returns the hash tiles that change when the tree grows from
// oldSize to newSize, each with its width at newSize.
func NewTiles(oldSize, newSize int64) []tlog.Tile {
	return tlog.NewTiles(Height, oldSize, newSize)
}

// A TileFunc returns the data of hash tile t (level t.L, number t.N) with
// at least t.W hashes. It may return more data (a wider version of the
// same tile); only the first t.W hashes are used.
type TileFunc func(t tlog.Tile) ([]byte, error)

// HashReader returns a tlog.HashReader that reads stored hashes out of the
// tiles returned by read. It does not authenticate the tiles: use it over
// tiles you wrote or already verified (tlog.TileHashReader verifies
// tiles from untrusted sources).
func HashReader(read TileFunc) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var last tlog.Tile
		var lastData []byte
		for i, x := range indexes {
			t := tlog.TileForIndex(Height, x)
			data := lastData
			if lastData == nil || last.L != t.L || last.N != t.N || len(lastData) < t.W*tlog.HashSize {
				d, err := read(t)
				if err != nil {
					return nil, fmt.Errorf("couldn't read tile %s for hash %d: %w", Path(t), x, err)
				}
				if len(d) < t.W*tlog.HashSize {
					return nil, fmt.Errorf("tile %s has %d bytes, want at least %d", Path(t), len(d), t.W*tlog.HashSize)
				}
				data, last, lastData = d, t, d
			}
			h, err := tlog.HashFromTile(t, data[:t.W*tlog.HashSize], x)
			if err != nil {
				return nil, fmt.Errorf("couldn't read hash %d from tile %s: %w", x, Path(t), err)
			}
			out[i] = h
		}
		return out, nil
	})
}
