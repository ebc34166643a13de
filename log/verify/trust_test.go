package verify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/verify"
)

func TestParseTrust(t *testing.T) {
	dir := t.TempDir()
	la, lb := bundletest.NewLog("a.example/log"), bundletest.NewLog("b.example/log")
	w := bundletest.NewWitness("w.example")
	for name, l := range map[string]*bundletest.Log{"a.policy": la, "b.policy": lb} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(bundletest.Policy(l.VKey, 1, w)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := "# two logs\n\nmin-logs 2\ngrace 90s\n" +
		"log " + la.VKey + " https://a.example/log/v1/keys.bundle a.policy max-age=2h\n" +
		"log " + lb.VKey + " b.bundle " + filepath.Join(dir, "b.policy") + " origin=b.example/log\n"
	tr, err := verify.ParseTrust([]byte(good), dir, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if tr.MinLogs != 2 || !tr.MinLogsSet || tr.Grace != 90*time.Second || len(tr.Logs) != 2 {
		t.Fatalf("parsed %+v", tr)
	}
	a, b := tr.Logs[0], tr.Logs[1]
	if a.Name != "a.example/log" || a.MaxAge != 2*time.Hour || a.PolicyFile != filepath.Join(dir, "a.policy") || a.Line != 5 || a.Policy == nil {
		t.Errorf("log a: %+v", a)
	}
	if u, err := a.LogURL(); err != nil || u != "https://a.example/log" {
		t.Errorf("log a URL %q, %v", u, err)
	}
	if b.Bundle != filepath.Join(dir, "b.bundle") || b.IsURL() || b.Origin != "b.example/log" {
		t.Errorf("log b: %+v", b)
	}
	if _, err := b.LogURL(); err == nil {
		t.Error("a file bundle gave a log URL")
	}

	// Defaults: min-logs 2 for two logs, 1 for one; grace DefaultGrace.
	two := "log " + la.VKey + " https://a.example/v1/keys.bundle a.policy\nlog " + lb.VKey + " https://b.example/v1/keys.bundle b.policy\n"
	if tr, err := verify.ParseTrust([]byte(two), dir, os.ReadFile); err != nil || tr.MinLogs != 2 || tr.MinLogsSet || tr.Grace != verify.DefaultGrace {
		t.Errorf("defaults for two logs: %+v, %v", tr, err)
	}
	one := "log " + la.VKey + " https://a.example/v1/keys.bundle a.policy\n"
	if tr, err := verify.ParseTrust([]byte(one), dir, os.ReadFile); err != nil || tr.MinLogs != 1 {
		t.Errorf("defaults for one log: %+v, %v", tr, err)
	}

	for _, tc := range []struct{ name, text, want string }{
		{"empty", "# nothing\n", "names no log"},
		{"unknown directive", "mins-logs 2\n" + one, `line 1: unknown directive "mins-logs"`},
		{"k too large", "min-logs 3\n" + two, "min-logs is 3 but the file names only 2 logs"},
		{"k zero", "min-logs 0\n" + two, `line 1: min-logs "0"`},
		{"k twice", "min-logs 1\nmin-logs 2\n" + two, "line 2: min-logs is set twice"},
		{"bad grace", "grace soon\n" + one, `line 1: grace "soon"`},
		{"short log line", "log " + la.VKey + " https://a.example/v1/keys.bundle\n", "line 1: want \"log VKEY"},
		{"bad vkey", "log nope https://a.example/v1/keys.bundle a.policy\n", "line 1: bad log verifier key"},
		{"duplicate log", one + one, "line 2: log a.example/log is already named on line 1"},
		{"missing policy", "log " + la.VKey + " https://a.example/v1/keys.bundle missing.policy\n", "couldn't read witness policy"},
		{"policy of another log", "log " + la.VKey + " https://a.example/v1/keys.bundle b.policy\n", "not one of the 1 logs the witness policy lists"},
		{"bad option", "log " + la.VKey + " https://a.example/v1/keys.bundle a.policy colour=red\n", `unknown option "colour"`},
		{"bad max-age", "log " + la.VKey + " https://a.example/v1/keys.bundle a.policy max-age=-1s\n", `max-age "-1s"`},
		{"other scheme", "log " + la.VKey + " ftp://a.example/v1/keys.bundle a.policy\n", "neither an http(s) URL nor a file path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verify.ParseTrust([]byte(tc.text), dir, os.ReadFile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}

	path := filepath.Join(dir, "trust")
	if err := os.WriteFile(path, []byte(two), 0o644); err != nil {
		t.Fatal(err)
	}
	if tr, err := verify.ReadTrustFile(path); err != nil || len(tr.Logs) != 2 {
		t.Errorf("ReadTrustFile: %+v, %v", tr, err)
	}
	if _, err := verify.ReadTrustFile(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "couldn't read trust file") {
		t.Errorf("ReadTrustFile of a missing file: %v", err)
	}
}
