package schema

import (
	"fmt"
	"time"
)

// MinDiscovered is the earliest plausible discovery time of an incident,
// 2000-01-01T00:00:00Z in milliseconds since the Unix epoch: a smaller
// value is almost surely seconds (or microseconds misread), not
// milliseconds. A discovered time in seconds since the epoch of any date
// since 1970-12 reads as a date in 1970 in milliseconds.
var MinDiscovered = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// MaxDiscovered is the latest plausible one, 3000-01-01T00:00:00Z: a
// larger value is almost surely microseconds (today in microseconds reads
// as a date after the year 50000).
var MaxDiscovered = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// CheckDiscovered refuses an incident report whose discovered time is not
// a plausible date in milliseconds: before MinDiscovered (seconds given
// instead of milliseconds; now is used to suggest the fix) or after
// MaxDiscovered (microseconds). Issuer tools call it before signing and
// the log refuses new submissions that fail it (CheckIncidentTimes); the
// policy's replay does not apply it, so entries logged before the check
// existed replay the same.
func (r *IncidentReport) CheckDiscovered(now time.Time) error {
	d := r.Discovered
	switch {
	case d < MinDiscovered:
		at := time.UnixMilli(d).UTC().Format(time.RFC3339)
		hint := ""
		if s := time.Unix(d, 0).UTC(); d > 0 && s.Year() >= 2000 && s.Before(now.Add(24*time.Hour)) {
			hint = fmt.Sprintf(" (as seconds it would be %s: write %d)", s.Format(time.RFC3339), d*1000)
		}
		return fmt.Errorf("incident report: discovered %d is %s in milliseconds since the epoch, before 2000: it must be milliseconds, not seconds%s", d, at, hint)
	case d > MaxDiscovered:
		return fmt.Errorf("incident report: discovered %d is after the year 3000 in milliseconds since the epoch: it must be milliseconds, not microseconds (write %d)", d, d/1000)
	}
	return nil
}

// CheckIncidentTimes applies CheckDiscovered to the incident report e
// carries, if any: an emergency key commitment's or a final incident
// report's. An entry without one, or whose body does not parse (the
// policy refuses that as malformed), passes. The log applies it to new
// submissions only, never in replay (see CheckDiscovered).
func (e *Entry) CheckIncidentTimes(now time.Time) error {
	if e.Kind != KindKeyCommitment && e.Kind != KindIncidentReport {
		return nil
	}
	body, err := e.ParsedBody()
	if err != nil {
		return nil
	}
	var r *IncidentReport
	switch b := body.(type) {
	case *KeyCommitment:
		r = b.Emergency
	case *IncidentFinal:
		r = &b.Report
	}
	if r == nil {
		return nil
	}
	return r.CheckDiscovered(now)
}
