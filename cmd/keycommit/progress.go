package main

import (
	"fmt"
	"io"
	"time"
)

// progress prints the progress of a long command (log migrate) on w,
// at most once per interval and at the end of each step: done of total,
// the rate, and the time left at that rate.
type progress struct {
	w        io.Writer
	now      func() time.Time
	interval time.Duration
	unit     string

	step        string
	start, last time.Time
	from        uint64
}

func newProgress(w io.Writer, unit string) *progress {
	return &progress{w: w, now: time.Now, interval: time.Second, unit: unit}
}

// update reports done of total in step.
func (p *progress) update(step string, done, total uint64) {
	now := p.now()
	if step != p.step {
		p.step, p.start, p.last, p.from = step, now, time.Time{}, 0
		if done > 0 && done < total {
			// A resumed step: the rate counts from here.
			p.from = done
		}
	}
	if done < total && now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	line := fmt.Sprintf("%s: %d of %d %s (%.0f%%)", step, done, total, p.unit, pct)
	if n := done - p.from; n > 0 && elapsed > 0 {
		rate := float64(n) / elapsed.Seconds()
		line += fmt.Sprintf(", %.0f %s/s", rate, p.unit)
		if done < total {
			eta := time.Duration(float64(total-done) / rate * float64(time.Second))
			line += ", about " + humanDuration(eta) + " left"
		} else {
			line += ", took " + humanDuration(elapsed)
		}
	}
	fmt.Fprintln(p.w, line)
}

// humanDuration rounds d for people: "3 s", "4 min 10 s", "2 h 5 min".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%d min %d s", int(d/time.Minute), int(d%time.Minute/time.Second))
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}
