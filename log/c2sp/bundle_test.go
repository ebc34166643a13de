package c2sp_test

import (
	"testing"

	"github.com/keycommit/keycommit/log/c2sp"
)

// TestAppendEntryBundleAllocs: a full bundle is written into one
// allocation of its size, not grown entry by entry (the tiles a log or a
// log double serves are built this way on every read). Grow b by append
// alone and a bundle of 256 entries of 700 bytes takes about 20.
func TestAppendEntryBundleAllocs(t *testing.T) {
	entries := make([][]byte, c2sp.EntryBundleWidth)
	for i := range entries {
		entries[i] = make([]byte, 700)
	}
	var b []byte
	allocs := testing.AllocsPerRun(20, func() {
		var err error
		if b, err = c2sp.AppendEntryBundle(nil, entries); err != nil {
			t.Fatal(err)
		}
	})
	// One for the bundle; the race detector's instrumentation may add one.
	if allocs > 2 {
		t.Errorf("AppendEntryBundle of %d entries: %.0f allocations, want 1", len(entries), allocs)
	}
	if want := len(entries) * (2 + 700); len(b) != want {
		t.Errorf("bundle is %d bytes, want %d", len(b), want)
	}
}
