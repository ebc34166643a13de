package schema

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCheckDiscovered: a discovered time in seconds (a 1970 date in
// milliseconds) or in microseconds is refused with the fix; a plausible
// millisecond date is accepted.
func TestCheckDiscovered(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		discovered int64
		want       string
	}{
		{now.Add(-time.Hour).UnixMilli(), ""},
		{MinDiscovered, ""},
		{now.Add(-time.Hour).Unix(), "write " + strconv.FormatInt(now.Add(-time.Hour).Unix()*1000, 10)},
		{MinDiscovered - 1, "before 2000"},
		{1, "1970-01-01T00:00:00Z"},
		{now.Add(48 * time.Hour).UnixMilli(), ""},
		{now.UnixMicro(), "write " + strconv.FormatInt(now.UnixMilli(), 10)},
		{MaxDiscovered + 1, "not microseconds"},
	} {
		r := &IncidentReport{Discovered: c.discovered}
		err := r.CheckDiscovered(now)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("discovered %d: %v", c.discovered, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("discovered %d: %v, want an error with %q", c.discovered, err, c.want)
		}
	}
}
