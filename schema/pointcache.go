package schema

import "sync"

// pointCache remembers P-384 points that passed validation (keyed by
// their encoding, uncompressed or compressed) with their compressed form.
// Validation is a pure function of the bytes, and the same keys are
// checked again and again: by every commitment that keeps them, and twice
// per evaluation (parsing and signature checking both parse the body).
// Decompressing a point costs a modular square root, about a millisecond.
var pointCache = struct {
	sync.Mutex
	m map[string][]byte
}{m: map[string][]byte{}}

const pointCacheSize = 1 << 14

func cachedPoint(enc []byte) ([]byte, bool) {
	pointCache.Lock()
	defer pointCache.Unlock()
	c, ok := pointCache.m[string(enc)]
	return append([]byte(nil), c...), ok
}

func cachePoint(enc, compressed []byte) {
	pointCache.Lock()
	defer pointCache.Unlock()
	if len(pointCache.m) >= pointCacheSize {
		clear(pointCache.m) // crude, but bounded and rarely hit
	}
	pointCache.m[string(enc)] = compressed
}
