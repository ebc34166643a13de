package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyCheckBinary runs `keycommit policy check` and `policy params`
// from the real binary on served commitment files.
func TestPolicyCheckBinary(t *testing.T) {
	bin := buildBinary(t)
	pst := filepath.Join("..", "..", "testdata", "schema", "pst-served.json")
	dir := filepath.Join("..", "..", "testdata", "schema", "directory-served.json")
	broken := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(broken, []byte(`{"PrivateStateTokenV1VOPRF":{"protocol_version":"PrivateStateTokenV1VOPRF","id":"1","batchsize":1,"keys":{}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"acceptable PST", []string{"policy", "check", pst, "--at", "2026-06-01T00:00:00Z"}, 0,
			[]string{`note: PrivateStateTokenV1VOPRF: key label "+01" rewritten as "1"`, "with 3 keys is acceptable as the first commitment of a new issuer (at 2026-06-01T00:00:00Z)"}},
		{"expired PST", []string{"policy", "check", pst, "--at", "2027-06-01T00:00:00Z"}, exitRefused,
			[]string{"refused by rule expiry: PrivateStateTokenV1PMB key 1 expired at 2027-01-15T08:00:00Z", "refused by rule expiry: PrivateStateTokenV1VOPRF key 2"}},
		{"acceptable directory", []string{"policy", "check", dir, "--issuer", "issuer.example", "--at", "2026-06-01T00:00:00Z"}, 0,
			[]string{"Privacy Pass issuer directory with 2 keys is acceptable"}},
		{"malformed", []string{"policy", "check", broken}, exitRefused, []string{"id is a string, want a JSON integer"}},
		{"params", []string{"policy", "params"}, 0, []string{"min_rotation_interval  60 days", "rotation         a rotation", "requirements for inclusion", "  - Rotate (submit a commitment that adds a key) at most once every 60 days"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := exec.Command(bin, c.args...).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code {
				t.Errorf("exit code %d, want %d\n%s", code, c.code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
