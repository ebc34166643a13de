//go:build race

package policy_test

// raceEnabled is set when the tests run under the race detector, which
// slows the JSON and signature work of the replay test about tenfold
// without adding anything for single-threaded code.
const raceEnabled = true
