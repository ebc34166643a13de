package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/keycommit/keycommit/log/c2sp"
)

// Tile geometry of C2SP tlog-tiles.
const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
	// maxBundleSize bounds an entry bundle: 256 entries of at most
	// 65,535 bytes, each with its 2-byte length.
	maxBundleSize = tileWidth * (2 + 0xffff)
)

// errNotFound is returned (wrapped) when the log answers 404.
var errNotFound = errors.New("not found")

// tileClient reads a log's C2SP tlog-tiles read path. It trusts nothing
// it reads: callers authenticate tiles with tlog.TileHashReader.
type tileClient struct {
	base string // URL prefix, no trailing slash
	hc   *http.Client

	mu    sync.Mutex
	cache map[tlog.Tile][]byte // authenticated hash tiles (see tileReader.SaveTiles)
}

const tileCacheSize = 1024 // at most 8 MiB

func newTileClient(base string, hc *http.Client) *tileClient {
	return &tileClient{base: strings.TrimSuffix(base, "/"), hc: hc, cache: map[tlog.Tile][]byte{}}
}

// get fetches base/path, failing on any status but 200 and on bodies
// over limit bytes.
func (c *tileClient) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	return httpGet(ctx, c.hc, c.base+"/"+path, limit)
}

func httpGet(ctx context.Context, hc *http.Client, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("couldn't GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := readBody(resp, limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't read %s: %w", url, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("GET %s: %w", url, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, b)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: response over the limit of %d bytes", url, limit)
	}
	return b, nil
}

// readBody reads at most limit+1 bytes of resp's body, in one allocation
// when the length is announced.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		// The body must end where it said it would.
		if k, _ := resp.Body.Read(make([]byte, 1)); k != 0 {
			return nil, fmt.Errorf("body longer than its Content-Length %d", n)
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit+1))
}

// tilePath returns the C2SP path of t; t.L == -1 is an entry bundle.
func tilePath(t tlog.Tile) string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.L == -1 {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(t.L))
	}
	b.WriteByte('/')
	var parts []string
	n := t.N
	for {
		parts = append(parts, fmt.Sprintf("%03d", n%1000))
		n /= 1000
		if n == 0 {
			break
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		if i > 0 {
			b.WriteByte('x')
		}
		b.WriteString(parts[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	if t.W != tileWidth {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(t.W))
	}
	return b.String()
}

// hashTile fetches hash tile t. When the log no longer serves a partial
// tile of width t.W, a wider tile serves, since a narrower tile's data is
// a prefix of a wider one's.
func (c *tileClient) hashTile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	want := t.W * tlog.HashSize
	b, err := c.get(ctx, tilePath(t), int64(want))
	if errors.Is(err, errNotFound) && t.W < tileWidth {
		full := t
		full.W = tileWidth
		b, err = c.get(ctx, tilePath(full), tileWidth*tlog.HashSize)
		if err == nil && len(b) >= want {
			b = b[:want]
		}
	}
	if err != nil {
		return nil, err
	}
	if len(b) != want {
		return nil, fmt.Errorf("tile %s is %d bytes, want %d", tilePath(t), len(b), want)
	}
	return b, nil
}

// bundle fetches entry bundle n and returns its first w entries (slices of
// one buffer). A partial bundle the log no longer serves is read from the
// full bundle.
func (c *tileClient) bundle(ctx context.Context, n int64, w int) ([][]byte, error) {
	t := tlog.Tile{H: tileHeight, L: -1, N: n, W: w}
	b, err := c.get(ctx, tilePath(t), maxBundleSize)
	exact := true
	if errors.Is(err, errNotFound) && w < tileWidth {
		t.W = tileWidth
		b, err = c.get(ctx, tilePath(t), maxBundleSize)
		exact = false
	}
	if err != nil {
		return nil, err
	}
	var entries [][]byte
	if exact {
		entries, err = c2sp.ParseEntryBundle(b, w)
	} else {
		entries, _, err = c2sp.SplitEntryBundle(b, w)
	}
	if err != nil {
		return nil, fmt.Errorf("entry bundle %s: %w", tilePath(t), err)
	}
	return entries, nil
}

func (c *tileClient) cached(t tlog.Tile) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.cache[t]
	return b, ok
}

func (c *tileClient) save(t tlog.Tile, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= tileCacheSize {
		// Authenticated tiles stay valid forever; dropping them all
		// only costs refetches.
		clear(c.cache)
	}
	c.cache[t] = b
}

func (c *tileClient) dropCache() {
	c.mu.Lock()
	clear(c.cache)
	c.mu.Unlock()
}

// tileReader is the tlog.TileReader behind tlog.TileHashReader. Level-0
// tiles of the bundles being verified come from own (the leaf hashes the
// monitor computed from the entry bundles): TileHashReader authenticating
// them against the checkpoint is what proves every entry's inclusion.
// Other tiles come from the cache of authenticated tiles or the log.
type tileReader struct {
	ctx context.Context
	c   *tileClient
	own map[tlog.Tile][]byte
}

func (r *tileReader) Height() int { return tileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if b, ok := r.own[t]; ok {
			out[i] = b
			continue
		}
		if b, ok := r.c.cached(t); ok {
			out[i] = b
			continue
		}
		b, err := r.c.hashTile(r.ctx, t)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// SaveTiles keeps the authenticated hash tiles above level 0 (and the
// level-0 tiles the log served), so that following the log fetches each
// upper tile once.
func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		if _, own := r.own[t]; own {
			continue
		}
		r.c.save(t, data[i])
	}
}
