package main

import (
	"strings"
	"testing"
	"time"
)

// TestProgress: log migrate's progress names the step, done of total,
// the rate and the time left at that rate, at most once per interval and
// always at the end of a step.
func TestProgress(t *testing.T) {
	var b strings.Builder
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newProgress(&b, "entries")
	p.now = func() time.Time { return now }
	p.update("copy", 0, 10000)
	now = now.Add(500 * time.Millisecond)
	p.update("copy", 500, 10000) // within the interval: not printed
	now = now.Add(1500 * time.Millisecond)
	p.update("copy", 2000, 10000)
	now = now.Add(6 * time.Second)
	p.update("copy", 10000, 10000)
	p.update("prove", 10000, 10000)
	want := "copy: 0 of 10000 entries (0%)\n" +
		"copy: 2000 of 10000 entries (20%), 1000 entries/s, about 8 s left\n" +
		"copy: 10000 of 10000 entries (100%), 1250 entries/s, took 8 s\n" +
		"prove: 10000 of 10000 entries (100%)\n"
	if b.String() != want {
		t.Errorf("progress:\n%s\nwant\n%s", b.String(), want)
	}
	for d, want := range map[time.Duration]string{3 * time.Second: "3 s", 250 * time.Second: "4 min 10 s", 125 * time.Minute: "2 h 5 min"} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for s, want := range map[int64]string{365 * 86400: "365 days", 86400: "1 day", 7200: "2 hours", 90 * 60: "90 minutes", 45: "45 seconds"} {
		if got := humanSeconds(s); got != want {
			t.Errorf("humanSeconds(%d) = %q, want %q", s, got, want)
		}
	}
}
