package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
)

// TestIssuerSeveralLogs runs the issuer commands against two loopback
// logs through the real binary: a registration while log B is down is
// logged in A and reported failed for B (exit 1); the same command again
// submits only to B (A reports "already" and its tree does not grow); a
// commitment submitted to A alone makes `issuer status` over both logs
// report the difference (exit 4) naming both logs, and over a --logs
// trust file, after the commitment reaches B too, agreement. Every --json
// output is valid under its command's JSON Schema.
func TestIssuerSeveralLogs(t *testing.T) {
	schemas := jsonSchemas(t)
	dir := t.TempDir()
	web := startStoryOrigin(t, dir, "multi.example")
	type testLog struct{ name, dir, vkey, url string }
	logs := []*testLog{{name: "a.multi.example/log"}, {name: "b.multi.example/log"}}
	for i, l := range logs {
		l.dir = filepath.Join(dir, "log"+string(rune('a'+i)))
		out, err := exec.Command(keycommitBin, "log", "init", "--data", l.dir, "--origin", l.name).CombinedOutput()
		if err != nil {
			t.Fatalf("log init: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		l.vkey = lines[len(lines)-1]
	}
	serve := func(l *testLog) {
		_, u := startServe(t, keycommitBin, l.dir, append(web.serveArgs(), "--log-level", "warn")...)
		l.url = strings.TrimSuffix(u, "/")
	}
	serve(logs[0])
	// Log B is down: its URL is a loopback port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs[1].url = "http://" + ln.Addr().String()
	ln.Close()

	key := filepath.Join(dir, "issuer.key")
	commitment := filepath.Join(dir, "commitment.json")
	origin := "https://multi.example"
	run := func(wantCode int, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(keycommitBin, args...)
		cmd.Env = append(os.Environ(), "KEYCOMMIT_LOG=", "KEYCOMMIT_LOG_VKEY=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("keycommit %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, wantCode, out, stderr.String())
		}
		return out
	}
	both := func() []string {
		return []string{"--log", logs[0].url, "--log-vkey", logs[0].vkey, "--log", logs[1].url, "--log-vkey", logs[1].vkey}
	}
	// decode checks out against the schema of the command and decodes it.
	decode := func(schema string, out []byte, v any) {
		t.Helper()
		var doc any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", schema, err, out)
		}
		if err := schemas(schema).Validate(doc); err != nil {
			t.Fatalf("output is not valid under cli/%s.json: %v\n%s", schema, err, out)
		}
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatal(err)
		}
	}
	type report struct {
		Kind string
		Logs []struct {
			Log, URL, Outcome, Error string
			Index                    *uint64
			TreeSize                 uint64 `json:"tree_size"`
		}
	}
	outcomes := func(r report) string {
		var s []string
		for _, o := range r.Logs {
			s = append(s, o.Log+"="+o.Outcome)
		}
		return strings.Join(s, " ")
	}

	run(0, "issuer", "keygen", "--out", key)
	run(0, "issuer", "gen-commitment", "--out", commitment, "--keys-out", filepath.Join(dir, "keys.json"))
	for _, l := range logs {
		web.serveChallengeFor(t, l.name, origin, key)
	}
	register := func(code int) report {
		var r report
		decode("issuer-submit", run(code, append([]string{"issuer", "register", "--key", key, "--origin", origin, "--contact", "mailto:keys@multi.example", "--json"}, both()...)...), &r)
		return r
	}
	r := register(1)
	if got := outcomes(r); got != "a.multi.example/log=logged b.multi.example/log=failed" || r.Logs[1].Error == "" {
		t.Fatalf("registration with log B down: %s (%+v)", got, r)
	}
	sizeA := r.Logs[0].TreeSize

	// B is back (at a new address): the retry submits to B only.
	serve(logs[1])
	r = register(0)
	if got := outcomes(r); got != "a.multi.example/log=already b.multi.example/log=logged" {
		t.Fatalf("retried registration: %s", got)
	}
	if r.Logs[0].TreeSize != sizeA {
		t.Errorf("log A's tree grew from %d to %d on a retry it should have skipped", sizeA, r.Logs[0].TreeSize)
	}

	// A commitment reaches A only: the logs differ.
	run(0, "issuer", "submit", "--key", key, "--origin", origin, "--commitment", commitment, "--log", logs[0].url, "--log-vkey", logs[0].vkey)
	type status struct {
		Agree       bool
		Differences []string
		Logs        []struct {
			Log        string
			Registered bool
			Commitment *struct{ SHA256 string }
		}
	}
	var st status
	decode("issuer-status", run(4, append([]string{"issuer", "status", "--origin", origin, "--json"}, both()...)...), &st)
	if st.Agree || len(st.Differences) != 1 || !strings.Contains(st.Differences[0], "a.multi.example/log holds commitment") ||
		!strings.Contains(st.Differences[0], "b.multi.example/log has no key commitment") {
		t.Fatalf("status with the commitment in A only: %+v", st)
	}
	human := string(run(4, append([]string{"issuer", "status", "--origin", origin}, both()...)...))
	if !strings.Contains(human, "DIFFER") {
		t.Errorf("human status does not show the difference:\n%s", human)
	}

	// The same submit over both logs: A already holds it, B gets it.
	var sr report
	decode("issuer-submit", run(0, append([]string{"issuer", "submit", "--key", key, "--origin", origin, "--commitment", commitment, "--json"}, both()...)...), &sr)
	if got := outcomes(sr); got != "a.multi.example/log=already b.multi.example/log=logged" {
		t.Fatalf("commitment over both logs: %s", got)
	}

	// A trust file names both logs (--logs): they agree now.
	trust := filepath.Join(dir, "trust")
	var tf strings.Builder
	for i, l := range logs {
		pf := filepath.Join(dir, "policy"+string(rune('a'+i)))
		if err := os.WriteFile(pf, []byte(bundletest.Policy(l.vkey, 1, bundletest.NewWitness("w.multi.example"))), 0o644); err != nil {
			t.Fatal(err)
		}
		tf.WriteString("log " + l.vkey + " " + l.url + "/v1/keys.bundle " + pf + "\n")
	}
	if err := os.WriteFile(trust, []byte(tf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	st = status{}
	decode("issuer-status", run(0, "issuer", "status", "--origin", origin, "--json", "--logs", trust), &st)
	if !st.Agree || len(st.Logs) != 2 || st.Logs[0].Commitment == nil || st.Logs[1].Commitment == nil || st.Logs[0].Commitment.SHA256 != st.Logs[1].Commitment.SHA256 {
		t.Fatalf("status over the trust file: %+v", st)
	}
	// Everything is already there: nothing is submitted, exit 0.
	if out := string(run(0, "issuer", "submit", "--key", key, "--origin", origin, "--commitment", commitment, "--logs", trust)); strings.Count(out, "already the issuer's latest entry") != 2 {
		t.Errorf("resubmission over the trust file:\n%s", out)
	}

	// The account key moves to a new key on both logs; the same command
	// again finds it done everywhere (the possession proof is bound to
	// each log's prev, so only what the registration registers counts).
	next := filepath.Join(dir, "next.key")
	run(0, "issuer", "keygen", "--out", next)
	move := []string{"issuer", "register", "--key", key, "--new-key", next, "--origin", origin, "--contact", "mailto:keys@multi.example", "--json", "--logs", trust}
	var mr report
	decode("issuer-submit", run(0, move...), &mr)
	if got := outcomes(mr); got != "a.multi.example/log=logged b.multi.example/log=logged" {
		t.Fatalf("key move over both logs: %s", got)
	}
	mr = report{}
	decode("issuer-submit", run(0, move...), &mr)
	if got := outcomes(mr); got != "a.multi.example/log=already b.multi.example/log=already" {
		t.Fatalf("key move repeated: %s", got)
	}

	// Usage errors name what is wrong.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log", logs[0].url, "--log-vkey", logs[0].vkey, "--log", logs[1].url}, "--log is given 2 times and --log-vkey 1 times"},
		{[]string{"--logs", trust, "--log", logs[0].url}, "either --logs or --log/--log-vkey"},
		{[]string{"--log", logs[0].url, "--log-vkey", logs[0].vkey, "--log", logs[0].url, "--log-vkey", logs[1].vkey}, "is named twice"},
		{[]string{"--log", logs[0].url, "--log-vkey", logs[0].vkey, "--log", logs[1].url, "--log-vkey", "not-a-vkey"}, "log " + logs[1].url + `: bad verifier key "not-a-vkey"`},
	} {
		cmd := exec.Command(keycommitBin, append([]string{"issuer", "status", "--origin", origin}, tc.args...)...)
		cmd.Env = append(os.Environ(), "KEYCOMMIT_LOG=", "KEYCOMMIT_LOG_VKEY=")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("issuer status %v: %v\n%s\nwant an error containing %q", tc.args, err, out, tc.want)
		}
	}
}
