package explorer

import (
	"fmt"
	"strconv"
	"time"
)

// timelineEvent is one commitment on an issuer's timeline.
type timelineEvent struct {
	Index     uint64
	Time      int64 // ms
	Rotation  bool
	Emergency bool
}

// timeline is an issuer's commitments drawn as SVG on the server: each
// rotation opens a window of the policy's minimum rotation interval
// (shaded), commitments are dots, emergencies red triangles.
type timeline struct {
	Width, Height int
	Axis          float64 // y of the axis
	Windows       []svgWindow
	Marks         []svgMark
	Ticks         []svgTick
	NowX          string
	IntervalDays  int64
	Desc          string
}

type svgWindow struct {
	X, W  string
	Label string
}

type svgMark struct {
	X         string
	Points    string // the triangle of an emergency
	Emergency bool
	Rotation  bool
	Label     string
	Href      string
}

type svgTick struct {
	X, Label string
}

const (
	tlWidth  = 800
	tlHeight = 110
	tlPad    = 20
)

func fx(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func newTimeline(events []timelineEvent, intervalMs, now int64) *timeline {
	if len(events) == 0 {
		return nil
	}
	t0 := events[0].Time
	t1 := max(now, events[len(events)-1].Time+intervalMs)
	span := max(t1-t0, 24*3600*1000)
	t0 -= span / 50
	t1 += span / 50
	span = t1 - t0
	x := func(t int64) float64 {
		return tlPad + float64(t-t0)/float64(span)*float64(tlWidth-2*tlPad)
	}
	tl := &timeline{Width: tlWidth, Height: tlHeight, Axis: 70, NowX: fx(x(now)), IntervalDays: intervalMs / 86_400_000}
	rot, em := 0, 0
	for _, ev := range events {
		ts := time.UnixMilli(ev.Time).UTC().Format("2006-01-02")
		if ev.Rotation {
			rot++
			w := x(ev.Time+intervalMs) - x(ev.Time)
			tl.Windows = append(tl.Windows, svgWindow{X: fx(x(ev.Time)), W: fx(w),
				Label: fmt.Sprintf("%d-day window after the rotation at entry %d (%s)", tl.IntervalDays, ev.Index, ts)})
		}
		m := svgMark{X: fx(x(ev.Time)), Emergency: ev.Emergency, Rotation: ev.Rotation, Href: "/entries/" + strconv.FormatUint(ev.Index, 10)}
		kind := "commitment"
		if ev.Rotation {
			kind = "rotation"
		}
		if ev.Emergency {
			em++
			kind = "emergency rotation"
			cx := x(ev.Time)
			m.Points = fmt.Sprintf("%s,%s %s,%s %s,%s", fx(cx), fx(tl.Axis-9), fx(cx-7), fx(tl.Axis+5), fx(cx+7), fx(tl.Axis+5))
		}
		m.Label = fmt.Sprintf("%s at entry %d, %s", kind, ev.Index, ts)
		tl.Marks = append(tl.Marks, m)
	}
	tl.Ticks = ticks(t0, t1, x)
	tl.Desc = fmt.Sprintf("%d commitments from %s to %s, %d of them rotations and %d emergencies; shaded: the %d days after each rotation, before which a normal rotation is refused.",
		len(events), time.UnixMilli(events[0].Time).UTC().Format("2006-01-02"),
		time.UnixMilli(events[len(events)-1].Time).UTC().Format("2006-01-02"), rot, em, tl.IntervalDays)
	return tl
}

// ticks labels the first day of months (or years) between t0 and t1,
// at most 8 of them.
func ticks(t0, t1 int64, x func(int64) float64) []svgTick {
	a, b := time.UnixMilli(t0).UTC(), time.UnixMilli(t1).UTC()
	months := (b.Year()-a.Year())*12 + int(b.Month()-a.Month()) + 1
	step := 1
	for months/step > 8 {
		step++
	}
	if step > 12 {
		step = (step + 11) / 12 * 12
	}
	var out []svgTick
	m := time.Date(a.Year(), a.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1, 0)
	if step >= 12 {
		m = time.Date(a.Year()+1, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	for ; !m.After(b) && len(out) < 12; m = m.AddDate(0, step, 0) {
		label := m.Format("Jan 2006")
		if step >= 12 {
			label = m.Format("2006")
		}
		out = append(out, svgTick{X: fx(x(m.UnixMilli())), Label: label})
	}
	return out
}
