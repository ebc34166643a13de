//go:build race

package schema

// raceEnabled is set under the race detector, which slows the parsers'
// JSON work about tenfold and adds nothing to single-threaded tests.
const raceEnabled = true
