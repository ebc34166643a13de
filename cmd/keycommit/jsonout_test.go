package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/client"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/cobra"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/json/*.json (the shapes of the --json outputs)")

// jsonSchemas compiles every JSON Schema document under schema/jsonschema
// (the wire formats and cli/, the --json outputs) by its $id.
func jsonSchemas(t *testing.T) func(name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	root := filepath.Join("..", "..", "schema", "jsonschema")
	files, _ := filepath.Glob(filepath.Join(root, "*.json"))
	cli, _ := filepath.Glob(filepath.Join(root, "cli", "*.json"))
	for _, f := range append(files, cli...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return func(name string) *jsonschema.Schema {
		t.Helper()
		s, err := c.Compile("https://keycommit.example/schema/v1/cli/" + name + ".json")
		if err != nil {
			t.Fatalf("JSON Schema cli/%s: %v", name, err)
		}
		return s
	}
}

// shape is v with every string replaced by "string", every number by 0 and
// every array by its first element's shape: what a --json output's
// consumers rely on, without the values that change from run to run.
func shape(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = shape(e)
		}
		return out
	case []any:
		if len(v) == 0 {
			return []any{}
		}
		return []any{shape(v[0])}
	case string:
		return "string"
	case json.Number, float64:
		return 0
	}
	return v
}

// TestJSONOutputs runs every command that prints a result with --json
// (on a running dev deployment), in success and failure: stdout is one
// JSON object valid under the command's JSON Schema (or cli/error), whose
// shape is the golden file testdata/json/<case>.json (go test -run
// TestJSONOutputs -update rewrites them), and the exit code is the one of
// the same command without --json. Every command with --json has a case.
func TestJSONOutputs(t *testing.T) {
	schemas := jsonSchemas(t)
	dir := t.TempDir()
	_, info, _ := startDev(t, filepath.Join(dir, "dev"))
	tmp := func(name string) string { return filepath.Join(dir, name) }
	devKey := info.Issuer.KeyFile
	env := []string{"KEYCOMMIT_LOG=" + info.LogURL, "KEYCOMMIT_LOG_VKEY=" + info.LogVKey}
	_, wrongVKey, err := checkpoint.GenerateKey(devLogOrigin)
	if err != nil {
		t.Fatal(err)
	}
	evidence := filepath.Join("..", "..", "testdata", "monitor", "evidence")
	evKey, err := os.ReadFile(filepath.Join(evidence, "vkey"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		schema string // "" means the command's annotation
		code   int
		// again: the command can run a second time (without --json) to
		// compare exit codes.
		again bool
		check func(t *testing.T, v map[string]any)
	}{
		{name: "version", args: []string{"version"}, again: true},
		{name: "log-init", args: []string{"log", "init", "--data", tmp("log"), "--origin", "keycommit.example/log/json"}},
		{name: "log-init-exists", args: []string{"log", "init", "--data", tmp("log"), "--origin", "keycommit.example/log/json"}, schema: "error", code: 1, again: true},
		{name: "log-backup", args: []string{"log", "backup", "--data", filepath.Join(dir, "dev", "log"), "--out", tmp("backup.db")}},
		{name: "log-backup-exists", args: []string{"log", "backup", "--data", filepath.Join(dir, "dev", "log"), "--out", tmp("backup.db")}, schema: "error", code: 1, again: true},
		{name: "witness-init", args: []string{"witness", "init", "--data", tmp("w"), "--name", "witness.example/json"}},
		{name: "witness-add-log", args: []string{"witness", "add-log", "--data", tmp("w"), "--origin", devLogOrigin, "--vkey", info.LogVKey}},
		{name: "witness-list-logs", args: []string{"witness", "list-logs", "--data", tmp("w")}, again: true},
		{name: "issuer-keygen", args: []string{"issuer", "keygen", "--out", tmp("k.key")}},
		{name: "issuer-gen-commitment", args: []string{"issuer", "gen-commitment", "--id", "2", "--first-key", "3", "--out", tmp("c.json"), "--keys-out", tmp("ck.json")}},
		{name: "issuer-gen-commitment-7", args: []string{"issuer", "gen-commitment", "--keys", "7", "--out", tmp("c7.json"), "--keys-out", tmp("ck7.json")}},
		{name: "issuer-status", args: []string{"issuer", "status", "--origin", info.Issuer.Origin}, again: true, check: func(t *testing.T, v map[string]any) {
			if ver, _ := v["verified"].(map[string]any); ver == nil || ver["checkpoint_size"] == nil {
				t.Errorf("issuer status --json has no verified checkpoint size: %v", v)
			}
		}},
		{name: "issuer-status-unknown", args: []string{"issuer", "status", "--origin", "https://nobody.example"}, schema: "error", code: 1, again: true},
		{name: "issuer-register-dry-run", args: []string{"issuer", "register", "--dry-run", "--origin", info.Issuer.Origin, "--contact", "mailto:keys@demo-issuer.example", "--key", devKey}, again: true},
		{name: "issuer-submit-refused", args: []string{"issuer", "submit", "--origin", info.Issuer.Origin, "--commitment", tmp("c.json"), "--key", devKey}, schema: "error", code: 3, again: true, check: func(t *testing.T, v map[string]any) {
			if v["rule"] == "" || v["rule"] == nil || v["reason"] == nil {
				t.Errorf("refusal without its rule and reason: %v", v)
			}
		}},
		{name: "issuer-register-wrong-vkey", args: []string{"issuer", "register", "--origin", info.Issuer.Origin, "--contact", "mailto:keys@demo-issuer.example", "--key", devKey, "--log-vkey", wrongVKey}, schema: "error", code: 1, again: true},
		{name: "issuer-register", args: []string{"issuer", "register", "--origin", info.Issuer.Origin, "--contact", "mailto:keys@demo-issuer.example", "--key", devKey}},
		{name: "policy-check-offline", args: []string{"policy", "check", tmp("c.json")}, again: true},
		{name: "policy-check-offline-refused", args: []string{"policy", "check", tmp("c7.json")}, schema: "policy-check", code: 3, again: true},
		{name: "policy-check-replay", args: []string{"policy", "check", "--issuer", info.Issuer.Origin, tmp("c.json")}, schema: "policy-check", code: 3, again: true, check: func(t *testing.T, v map[string]any) {
			if v["mode"] != "replay" {
				t.Errorf("policy check --issuer did not judge against $KEYCOMMIT_LOG: %v", v)
			}
		}},
		{name: "policy-check-missing", args: []string{"policy", "check", tmp("nope.json")}, schema: "error", code: 1, again: true},
		{name: "policy-params", args: []string{"policy", "params"}, again: true},
		{name: "verify", args: []string{"verify", "--bundle", info.LogURL + "/v1/keys.bundle", "--witness-policy", info.WitnessPolicy}, again: true},
		{name: "verify-wrong-key", args: []string{"verify", "--bundle", info.LogURL + "/v1/keys.bundle", "--witness-policy", info.WitnessPolicy, "--log-vkey", wrongVKey}, schema: "error", code: 1, again: true},
		{name: "monitor-once", args: []string{"monitor", "--once", "--log-level", "error"}, again: true},
		{name: "monitor-check-evidence", args: []string{"monitor", "check-evidence", filepath.Join(evidence, "proof.json"), "--log-vkey", strings.TrimSpace(string(evKey))}, again: true},
		{name: "dev-bad-port", args: []string{"dev", "--data", tmp("dev-bad-port"), "--base-port", "70000"}, schema: "error", code: 1, again: true},
		{name: "monitor-check-evidence-bad", args: []string{"monitor", "check-evidence", filepath.Join(evidence, "bad-proof.json"), "--log-vkey", strings.TrimSpace(string(evKey))}, schema: "error", code: 1, again: true},
	}
	covered := map[string]bool{}
	c, err := client.New(info.LogURL, info.LogVKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			schema := tc.schema
			if schema == "" {
				schema = annotationOf(t, tc.args)
			}
			before, _, err := c.Checkpoint(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := runEnv(t, env, append(tc.args, "--json")...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout, stderr)
			}
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(stdout))
			if err != nil {
				t.Fatalf("stdout is not one JSON value: %v\n%s", err, stdout)
			}
			if err := schemas(schema).Validate(inst); err != nil {
				t.Errorf("output does not follow cli/%s.json: %v\n%s", schema, err, stdout)
			}
			var v map[string]any
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("stdout is not a JSON object: %v", err)
			}
			if dec.More() {
				t.Errorf("stdout holds more than one JSON value:\n%s", stdout)
			}
			if tc.check != nil {
				tc.check(t, v)
			}
			if code != 0 {
				if n, _ := v["exit_code"].(json.Number); schema == "error" && n.String() != strconv.Itoa(code) {
					t.Errorf("exit_code %v, exit %d", v["exit_code"], code)
				}
			} else {
				covered[schema] = true
			}
			got, _ := json.MarshalIndent(shape(v), "", "  ")
			golden := filepath.Join("testdata", "json", tc.name+".json")
			if *updateGolden {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(want, append(got, '\n')) {
				t.Errorf("the shape of the output changed (%v): got\n%s\nwant (%s)\n%s\n(rerun with -update if intended, and say so in the docs)", err, got, golden, want)
			}
			if tc.again {
				if _, _, textCode := runEnv(t, env, tc.args...); textCode != code {
					t.Errorf("exit %d with --json, %d without", code, textCode)
				}
			}
			if strings.HasSuffix(tc.name, "-wrong-vkey") || strings.HasSuffix(tc.name, "-refused") {
				after, _, err := c.Checkpoint(t.Context())
				if err != nil || after.Size != before.Size {
					t.Errorf("a refused or wrong-key command changed the log: size %d -> %d (%v)", before.Size, after.Size, err)
				}
			}
		})
	}
	// Every command with --json has a successful case.
	walkCommands(newRootCmd(), func(cmd *cobra.Command) {
		name := cmd.Annotations[jsonSchemaAnnotation]
		if cmd.Flags().Lookup("json") == nil {
			return
		}
		if name == "" {
			t.Errorf("%s has --json but no JSON Schema (use addJSONFlag)", cmd.CommandPath())
			return
		}
		if _, err := os.Stat(filepath.Join("..", "..", "schema", "jsonschema", "cli", name+".json")); err != nil {
			t.Errorf("%s: %v", cmd.CommandPath(), err)
		}
		// log migrate needs Trillian (TestLogMigrateJSON); dev runs until
		// stopped (TestDevJSON).
		if !covered[name] && name != "log-migrate" && name != "dev" {
			t.Errorf("%s --json has no successful case in TestJSONOutputs", cmd.CommandPath())
		}
	})
}

// TestDevJSON: dev --json prints, once the deployment is up, one JSON
// object valid under cli/dev.json (shape in testdata/json/dev.json) whose
// URLs answer and whose commands are the ones dev prints; nothing else
// reaches stdout, through shutdown; run again over the same directory it
// says it resumed the log at its size.
func TestDevJSON(t *testing.T) {
	schemas := jsonSchemas(t)
	dir := filepath.Join(t.TempDir(), "dev")
	run := func() (map[string]any, devReady) {
		t.Helper()
		cmd := exec.Command(keycommitBin, "dev", "--data", dir, "--base-port", "0", "--json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		dec := json.NewDecoder(stdout)
		dec.UseNumber()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("dev --json printed no JSON object: %v\n%s", err, stderr.String())
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas("dev").Validate(inst); err != nil {
			t.Errorf("dev --json does not follow cli/dev.json: %v\n%s", err, raw)
		}
		var v map[string]any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		var r devReady
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		// Stop it: the rest of stdout (through "shutting down") must be empty.
		cmd.Process.Signal(os.Interrupt)
		rest, _ := io.ReadAll(stdout)
		if err := cmd.Wait(); err != nil {
			t.Errorf("dev --json did not stop cleanly on SIGINT: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "keycommit dev is running") || !strings.Contains(stderr.String(), "shutting down") {
			t.Errorf("the human summary is not on stderr under --json:\n%s", stderr.String())
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			t.Errorf("dev --json printed more than its one object on stdout: %q", rest)
		}
		return v, r
	}
	v, r := run()
	got, _ := json.MarshalIndent(shape(v), "", "  ")
	golden := filepath.Join("testdata", "json", "dev.json")
	if *updateGolden {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(want, append(got, '\n')) {
		t.Errorf("the shape of dev --json changed (%v): got\n%s\nwant\n%s", err, got, want)
	}
	if r.Resumed || r.ResumedSize != 0 {
		t.Errorf("a new deployment says resumed %v at size %d", r.Resumed, r.ResumedSize)
	}
	info, err := os.ReadFile(r.InfoFile)
	if err != nil {
		t.Fatalf("info_file: %v", err)
	}
	var fromFile devInfo
	if err := json.Unmarshal(info, &fromFile); err != nil {
		t.Fatal(err)
	}
	if fromFile.LogVKey != r.LogVKey || fromFile.LogOrigin != r.LogOrigin || len(fromFile.Witnesses) != len(r.Witnesses) ||
		len(fromFile.Logs) != 1 || fromFile.Logs[0].LogVKey != r.LogVKey || fromFile.TrustFile != r.TrustFile || r.TrustFile == "" {
		t.Errorf("dev --json and %s disagree:\n%+v\n%+v", r.InfoFile, r.devInfo, fromFile)
	}
	if len(r.TryNext) == 0 || !strings.HasPrefix(r.TryNext[0], "export KEYCOMMIT_LOG=") {
		t.Errorf("try_next does not start with the export line: %q", r.TryNext)
	}
	_, r2 := run()
	if !r2.Resumed || r2.ResumedSize == 0 || r2.LogVKey != r.LogVKey {
		t.Errorf("second run over the same directory: resumed %v at size %d (vkey same: %v), want resumed at the log's size", r2.Resumed, r2.ResumedSize, r2.LogVKey == r.LogVKey)
	}
}

// annotationOf returns the JSON Schema name of the command args run.
func annotationOf(t *testing.T, args []string) string {
	t.Helper()
	cmd, _, err := newRootCmd().Find(args)
	if err != nil || cmd.Annotations[jsonSchemaAnnotation] == "" {
		t.Fatalf("%v: no command with --json (%v)", args, err)
	}
	return cmd.Annotations[jsonSchemaAnnotation]
}

// runEnv runs the binary with env added to this process's environment.
func runEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(keycommitBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), exitCodeOf(err)
}
