package explorer

import (
	"html/template"
	"time"
)

// Date is how both explorers show a time: UTC to the second, "—" for the
// zero time.
func Date(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

var funcs = template.FuncMap{
	"date": Date,
	"ms": func(ms int64) string {
		if ms <= 0 {
			return "—"
		}
		return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"days":       func(s int64) int64 { return s / 86400 },
	"issuerPath": IssuerPath,
	"short":      func(s string, n int) string { return Truncate(s, n) },
	"add":        func(a, b int) int { return a + b },
	"inc":        func(i uint64) uint64 { return i + 1 },
	"dec":        func(i uint64) uint64 { return i - 1 },
}
