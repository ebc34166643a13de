package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/trillianstore/trilliantest"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestLogMigrateJSON: `log migrate` refuses a directory log serve holds;
// then, with --json, prints one object valid under cli/log-migrate.json of
// the golden shape, and reports its progress on stderr (entries done, the
// rate, the time taken). Without --json it exits the same.
func TestLogMigrateJSON(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.Options{})
	dir := filepath.Join(t.TempDir(), "log")
	if out, _, code := runBin(t, keycommitBin, "log", "init", "--data", dir, "--origin", "keycommit.example/log/migrate"); code != 0 {
		t.Fatalf("log init: %s", out)
	}
	srv, _ := startServe(t, keycommitBin, dir)
	if _, stderr, code := runBin(t, keycommitBin, "log", "migrate", "--data", dir, "--trillian", env.RPCAddr, "--trillian-mysql", env.MySQLURI); code == 0 || !strings.Contains(stderr, lockFile) {
		t.Errorf("migrate while log serve runs: exit %d %s", code, stderr)
	}
	srv.Process.Kill()
	srv.Wait()
	os.Remove(filepath.Join(dir, trillianConfigFile))

	stdout, stderr, code := runBin(t, keycommitBin, "log", "migrate", "--data", dir, "--trillian", env.RPCAddr, "--trillian-mysql", env.MySQLURI, "--json")
	if code != 0 {
		t.Fatalf("migrate --json: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"copy: 1 of 1 entries (100%)", "prove: 1 of 1 entries (100%)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no progress %q on stderr:\n%s", want, stderr)
		}
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(stdout))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if err := jsonSchemas(t)("log-migrate").Validate(inst); err != nil {
		t.Errorf("output does not follow cli/log-migrate.json: %v\n%s", err, stdout)
	}
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(shape(v), "", "  ")
	golden := filepath.Join("testdata", "json", "log-migrate.json")
	if *updateGolden {
		os.WriteFile(golden, append(got, '\n'), 0o644)
	} else if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(want, append(got, '\n')) {
		t.Errorf("the shape of log migrate --json changed (%v): got\n%s\nwant\n%s", err, got, want)
	}
	os.Remove(filepath.Join(dir, trillianConfigFile))
	if out, errOut, code := runBin(t, keycommitBin, "log", "migrate", "--data", dir, "--trillian", env.RPCAddr, "--trillian-mysql", env.MySQLURI); code != 0 {
		t.Errorf("migrate without --json: exit %d\n%s%s", code, out, errOut)
	}
}
