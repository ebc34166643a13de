package explorer

import (
	"log/slog"
	"testing"
	"time"
)

// TestDefaults: both explorers' shared defaults (clock, logger, page size
// 50, at most 500) and Date's zero-time dash.
func TestDefaults(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, 50}, {-3, 50}, {7, 7}, {500, 500}, {501, 500}} {
		var now func() time.Time
		var logger *slog.Logger
		n := tc.in
		Defaults(&now, &logger, &n)
		if n != tc.want || now == nil || logger == nil {
			t.Errorf("Defaults(page size %d): %d (clock set %v, logger set %v), want %d", tc.in, n, now != nil, logger != nil, tc.want)
		}
	}
	fixed := func() time.Time { return time.Unix(1, 0) }
	now, n := fixed, 10
	logger := slog.Default()
	Defaults(&now, &logger, &n)
	if now().Unix() != 1 || logger != slog.Default() || n != 10 {
		t.Error("Defaults replaced settings that were given")
	}
	if Date(time.Time{}) != "—" || Date(time.Unix(0, 0)) != "1970-01-01 00:00:00 UTC" {
		t.Errorf("Date: %q, %q", Date(time.Time{}), Date(time.Unix(0, 0)))
	}
}
