package main

import (
	"encoding/json"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/api"
	"github.com/spf13/cobra"
)

// TestEveryCommandHasExamples walks the whole command tree: every command's
// --help has an Examples section, and each example line runs this binary.
func TestEveryCommandHasExamples(t *testing.T) {
	n := 0
	walkCommands(newRootCmd(), func(c *cobra.Command) {
		n++
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no Example (add it to examples in examples.go)", c.CommandPath())
			return
		}
		for _, line := range strings.Split(c.Example, "\n") {
			if l := strings.TrimSpace(line); !strings.HasPrefix(l, "keycommit") && !strings.HasPrefix(l, "export ") && !strings.HasPrefix(l, "go run ./cmd/keycommit") {
				t.Errorf("%q: example line %q does not run keycommit", c.CommandPath(), line)
			}
		}
	})
	if n < 20 {
		t.Errorf("walked %d commands, want the whole tree", n)
	}
	out, _, code := runBin(t, keycommitBin, "issuer", "submit", "--help")
	if code != 0 || !strings.Contains(out, "Examples:\n  keycommit issuer submit") {
		t.Errorf("issuer submit --help has no Examples section:\n%s", out)
	}
}

// TestCompletionOfFlagValues: the shell completion completes the values of
// --storage and --log-level on every command that has them.
func TestCompletionOfFlagValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"log", "serve", "--storage", ""}, []string{"sqlite", "trillian"}},
		{[]string{"log", "init", "--storage", "tr"}, []string{"sqlite", "trillian"}},
		{[]string{"log", "serve", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"dev", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"witness", "serve", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"monitor", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
	} {
		out, _, code := runBin(t, keycommitBin, append([]string{"__complete"}, c.args...)...)
		if code != 0 {
			t.Errorf("__complete %v: exit %d", c.args, code)
			continue
		}
		var got []string
		for _, line := range strings.Split(out, "\n") {
			if line == "" || strings.HasPrefix(line, ":") {
				continue
			}
			v, _, _ := strings.Cut(line, "\t")
			got = append(got, v)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("__complete %v = %q, want %q", c.args, got, c.want)
		}
	}
}

// TestVersion: `keycommit version`, `--version` and `version --json` name
// the module, its version and the Go version that built the binary, and
// the VCS revision when the build recorded one.
func TestVersion(t *testing.T) {
	line, _, code := runBin(t, keycommitBin, "version")
	if code != 0 || !strings.HasPrefix(line, "keycommit ") || !strings.Contains(line, runtime.Version()) {
		t.Errorf("keycommit version = %q (exit %d), want the Go version %s", line, code, runtime.Version())
	}
	if v, _, _ := runBin(t, keycommitBin, "--version"); v != line {
		t.Errorf("--version = %q, version = %q", v, line)
	}
	out, _, code := runBin(t, keycommitBin, "version", "--json")
	var v api.Version
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
		t.Fatalf("version --json: %v (exit %d)\n%s", err, code, out)
	}
	if v.Module != "github.com/keycommit/keycommit" || v.Version == "" || v.GoVersion != runtime.Version() {
		t.Errorf("version --json = %+v", v)
	}
	if v.Revision != "" && !strings.Contains(line, v.Revision) {
		t.Errorf("version line %q does not name the revision %s", line, v.Revision)
	}
	if got := versionLine(api.Version{Version: "v1.2.3", Revision: "abc123", Modified: true, Time: "2026-01-02T03:04:05Z", GoVersion: "go1.99"}); got != "keycommit v1.2.3, revision abc123 (modified) of 2026-01-02T03:04:05Z, built with go1.99" {
		t.Errorf("versionLine = %q", got)
	}
}

// getVersion checks that base/v1/version answers this binary's version.
func getVersion(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + api.PathVersion)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v api.Version
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 || v.GoVersion != runtime.Version() || v.Module == "" {
		t.Errorf("GET %s%s: %s %+v %v", base, api.PathVersion, resp.Status, v, err)
	}
}
