package verify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keycommit/keycommit/witness/quorum"
)

// The trust file (docs/multilog.md) names the logs a user agent trusts and
// the rule it applies across them. It is UTF-8 text, one directive a line;
// blank lines and lines starting with # are ignored:
//
//	min-logs K
//	grace DURATION
//	log VKEY BUNDLE_URL WITNESS_POLICY_FILE [max-age=DURATION] [origin=ORIGIN]
//
// VKEY is the log's C2SP verifier key (its key name, normally the
// checkpoint origin, names the log everywhere). BUNDLE_URL is where the
// log serves its keys bundle: an http(s) URL ending in /v1/keys.bundle
// (the log's URL is what comes before that suffix), or, for tests and
// offline use, a file path. WITNESS_POLICY_FILE is the log's witness policy
// (Sigsum/Tessera text format); relative paths are relative to the trust
// file's directory. min-logs defaults to 2 when the file names two or more
// logs (1 otherwise); grace defaults to DefaultGrace.

// DefaultGrace is the grace window of a trust file that sets none: how long
// after an issuer's newest commitment was logged the logs that do not hold
// it yet are taken as not having caught up rather than as disagreeing.
const DefaultGrace = 10 * time.Minute

// Trust file limits: at most MaxTrustedLogs log lines, each line at most
// maxTrustLine bytes, the file at most MaxTrustFileSize bytes.
const (
	MaxTrustedLogs   = 64
	MaxTrustFileSize = 1 << 20
	maxTrustLine     = 64 << 10
)

// BundleSuffix is the path under a log's URL where it serves its keys bundle.
const BundleSuffix = "/v1/keys.bundle"

// Trust is a parsed trust file.
type Trust struct {
	// MinLogs is k: an issuer's keys are used only when at least MinLogs of
	// the trusted logs hold the identical commitment.
	MinLogs int
	// MinLogsSet reports whether the file set min-logs (a command-line
	// override may replace an unset default without a warning).
	MinLogsSet bool
	// Grace is the grace window for rotations that reach the logs at
	// different times.
	Grace time.Duration
	// Logs are the trusted logs, in file order.
	Logs []TrustedLog
}

// TrustedLog is one log line of a trust file.
type TrustedLog struct {
	// Name is the log's name: its verifier key's key name.
	Name string
	// VKey is the log's C2SP verifier key.
	VKey string
	// Bundle is the bundle URL or file path (a relative path is resolved
	// against the trust file's directory).
	Bundle string
	// PolicyFile is the witness policy's path (resolved like Bundle) and
	// Policy the policy parsed from it.
	PolicyFile string
	Policy     *quorum.Policy
	// MaxAge is the cosignature maximum age for this log; 0 means the
	// verifier's default.
	MaxAge time.Duration
	// Origin is the checkpoint origin to require; "" means Name.
	Origin string
	// Line is the line of the trust file that named the log.
	Line int
}

// IsURL reports whether Bundle is an http(s) URL rather than a file.
func (l *TrustedLog) IsURL() bool {
	return strings.HasPrefix(l.Bundle, "https://") || strings.HasPrefix(l.Bundle, "http://")
}

// LogURL returns the log's URL: Bundle without its BundleSuffix. It is an
// error for a file bundle or a URL that does not end in BundleSuffix.
func (l *TrustedLog) LogURL() (string, error) {
	if !l.IsURL() {
		return "", fmt.Errorf("log %s (trust file line %d): bundle %q is a file, not a log URL", l.Name, l.Line, l.Bundle)
	}
	u, ok := strings.CutSuffix(l.Bundle, BundleSuffix)
	if !ok {
		return "", fmt.Errorf("log %s (trust file line %d): bundle URL %q does not end in %s, so it names no log URL", l.Name, l.Line, l.Bundle, BundleSuffix)
	}
	return u, nil
}

// Config returns the verifier configuration for the log; now is the clock
// (nil means time.Now).
func (l *TrustedLog) Config(now func() time.Time) Config {
	return Config{LogKey: l.VKey, Origin: l.Origin, Policy: l.Policy, MaxAge: l.MaxAge, Now: now}
}

// ReadTrustFile reads and parses a trust file (see ParseTrust); relative
// paths in it are resolved against its directory.
func ReadTrustFile(path string) (*Trust, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read trust file: %w", err)
	}
	defer f.Close()
	b, err := readAtMost(f, MaxTrustFileSize)
	if err != nil {
		return nil, fmt.Errorf("couldn't read trust file %s: %w", path, err)
	}
	t, err := ParseTrust(b, filepath.Dir(path), os.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("trust file %s: %w", path, err)
	}
	return t, nil
}

func readAtMost(f *os.File, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("file is over %d bytes", limit)
	}
	return b, nil
}

// ParseTrust parses a trust file's text. Relative paths are resolved
// against dir and witness policies read with readFile. Every error names
// the line.
func ParseTrust(text []byte, dir string, readFile func(string) ([]byte, error)) (*Trust, error) {
	if len(text) > MaxTrustFileSize {
		return nil, fmt.Errorf("trust file is %d bytes, over the limit of %d", len(text), MaxTrustFileSize)
	}
	t := &Trust{Grace: DefaultGrace}
	graceSet := false
	names := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), maxTrustLine)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Fields(s)
		switch f[0] {
		case "min-logs":
			if t.MinLogsSet {
				return nil, fmt.Errorf("line %d: min-logs is set twice", line)
			}
			if len(f) != 2 {
				return nil, fmt.Errorf("line %d: want \"min-logs K\"", line)
			}
			k, err := strconv.Atoi(f[1])
			if err != nil || k < 1 {
				return nil, fmt.Errorf("line %d: min-logs %q is not a positive whole number", line, f[1])
			}
			t.MinLogs, t.MinLogsSet = k, true
		case "grace":
			if graceSet {
				return nil, fmt.Errorf("line %d: grace is set twice", line)
			}
			if len(f) != 2 {
				return nil, fmt.Errorf("line %d: want \"grace DURATION\" (e.g. 10m)", line)
			}
			d, err := time.ParseDuration(f[1])
			if err != nil || d < 0 {
				return nil, fmt.Errorf("line %d: grace %q is not a duration of zero or more (e.g. 10m)", line, f[1])
			}
			t.Grace, graceSet = d, true
		case "log":
			if len(f) < 4 {
				return nil, fmt.Errorf("line %d: want \"log VKEY BUNDLE_URL WITNESS_POLICY_FILE [max-age=DURATION] [origin=ORIGIN]\"", line)
			}
			if len(t.Logs) == MaxTrustedLogs {
				return nil, fmt.Errorf("line %d: more than %d logs", line, MaxTrustedLogs)
			}
			l, err := parseTrustedLog(f[1:], dir, readFile)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			l.Line = line
			if prev, ok := names[l.Name]; ok {
				return nil, fmt.Errorf("line %d: log %s is already named on line %d", line, l.Name, prev)
			}
			names[l.Name] = line
			t.Logs = append(t.Logs, l)
		default:
			return nil, fmt.Errorf("line %d: unknown directive %q (want min-logs, grace or log)", line, f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if len(t.Logs) == 0 {
		return nil, errors.New("names no log (want at least one \"log VKEY BUNDLE_URL WITNESS_POLICY_FILE\" line)")
	}
	if !t.MinLogsSet {
		t.MinLogs = min(2, len(t.Logs))
	}
	if t.MinLogs > len(t.Logs) {
		return nil, fmt.Errorf("min-logs is %d but the file names only %d logs", t.MinLogs, len(t.Logs))
	}
	return t, nil
}

func parseTrustedLog(f []string, dir string, readFile func(string) ([]byte, error)) (TrustedLog, error) {
	lk, err := quorum.ParseLogVKey(f[0])
	if err != nil {
		return TrustedLog{}, fmt.Errorf("bad log verifier key: %w", err)
	}
	l := TrustedLog{Name: lk.KeyName, VKey: f[0], Bundle: f[1], PolicyFile: f[2]}
	if !l.IsURL() {
		if strings.Contains(l.Bundle, "://") {
			return TrustedLog{}, fmt.Errorf("log %s: bundle %q is neither an http(s) URL nor a file path", l.Name, l.Bundle)
		}
		l.Bundle = resolve(dir, l.Bundle)
	}
	l.PolicyFile = resolve(dir, l.PolicyFile)
	for _, opt := range f[3:] {
		k, v, ok := strings.Cut(opt, "=")
		switch {
		case !ok:
			return TrustedLog{}, fmt.Errorf("log %s: option %q is not NAME=VALUE", l.Name, opt)
		case k == "max-age":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return TrustedLog{}, fmt.Errorf("log %s: max-age %q is not a positive duration", l.Name, v)
			}
			l.MaxAge = d
		case k == "origin":
			if v == "" {
				return TrustedLog{}, fmt.Errorf("log %s: empty origin", l.Name)
			}
			l.Origin = v
		default:
			return TrustedLog{}, fmt.Errorf("log %s: unknown option %q (want max-age or origin)", l.Name, k)
		}
	}
	text, err := readFile(l.PolicyFile)
	if err != nil {
		return TrustedLog{}, fmt.Errorf("log %s: couldn't read witness policy: %w", l.Name, err)
	}
	if l.Policy, err = quorum.Parse(text); err != nil {
		return TrustedLog{}, fmt.Errorf("log %s: witness policy %s: %w", l.Name, l.PolicyFile, err)
	}
	if _, err := New(l.Config(nil)); err != nil {
		return TrustedLog{}, fmt.Errorf("log %s: %w", l.Name, err)
	}
	return l, nil
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}
