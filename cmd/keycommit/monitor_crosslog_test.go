package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/monitor"
	"github.com/keycommit/keycommit/monitor/monitortest"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestMonitorCheckCrossLogEvidence checks the cross-log evidence vector
// (made by the monitor in TestCrossLogEquivocation) with the binary: valid
// with both logs' keys and the witness policy, and refused with one key,
// without the policy, with a larger --cross-log-grace than its overlap,
// or with a byte flipped in any of its members.
func TestMonitorCheckCrossLogEvidence(t *testing.T) {
	bin := monitorBinary(t)
	dir := filepath.Join("..", "..", "testdata", "monitor", "evidence", "cross-log")
	file, policy := filepath.Join(dir, "cross-log.json"), filepath.Join(dir, "policy")
	vk, err := os.ReadFile(filepath.Join(dir, "vkeys"))
	if err != nil {
		t.Fatal(err)
	}
	vkeys := strings.Fields(string(vk))
	args := func(file string, extra ...string) []string {
		return append([]string{"monitor", "check-evidence", file, "--log-vkey", vkeys[0], "--log-vkey", vkeys[1], "--witness-policy", policy}, extra...)
	}
	out, errOut, code := runBin(t, bin, args(file)...)
	if code != 0 || !strings.Contains(out, "valid cross-log evidence") || !strings.Contains(out, "https://x.example") {
		t.Fatalf("check-evidence: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runBin(t, bin, args(file, "--json")...)
	if code != 0 {
		t.Fatalf("check-evidence --json: exit %d\n%s%s", code, out, errOut)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := jsonSchemas(t)("monitor-check-evidence").Validate(inst); err != nil {
		t.Errorf("--json output does not follow its schema: %v\n%s", err, out)
	}
	var res evidenceResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Issuer != "https://x.example" || len(res.Logs) != 2 {
		t.Errorf("--json output %s (%v): want the issuer and both logs", out, err)
	}
	for name, a := range map[string][]string{
		"one log key":      {"monitor", "check-evidence", file, "--log-vkey", vkeys[0], "--witness-policy", policy},
		"no policy":        {"monitor", "check-evidence", file, "--log-vkey", vkeys[0], "--log-vkey", vkeys[1]},
		"grace of 2 hours": args(file, "--cross-log-grace", "2h"),
	} {
		if out, errOut, code := runBin(t, bin, a...); code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s%s", name, code, out, errOut)
		}
	}
	// A byte flipped in the middle of each member of each side, and in
	// the reason and grace (the monitor package flips every byte).
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, member := range []string{`"checkpoint": "`, `"commitment": "`, `"commitment_proof": [`, `"snapshot": "`, `"snapshot_proof": [`, `"key_set": "`, `"reason": "`, `"grace": "`} {
		for k, at := 0, 0; k < 2; k++ {
			i := bytes.Index(raw[at:], []byte(member))
			if i < 0 {
				break
			}
			at += i + len(member)
			b := append([]byte(nil), raw...)
			off := 4 // inside the string
			if strings.HasSuffix(member, "[") {
				off = 12 // past the newline and indent, inside the first hash
			}
			b[at+off] ^= 1
			f := filepath.Join(tmp, "flipped.json")
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, errOut, code := runBin(t, bin, args(f)...); code != 1 {
				t.Errorf("byte flipped in %s of side %d: exit %d, want 1\n%s%s", member, k+1, code, out, errOut)
			}
		}
	}
}

// TestMonitorCrossLogOnce runs `keycommit monitor --once` on two logs in
// which an issuer committed different keys: exit 2 with one cross-log
// alert; a second run over the same data raises it no more.
func TestMonitorCrossLogOnce(t *testing.T) {
	bin := monitorBinary(t)
	ws := []*bundletest.Witness{bundletest.NewWitness("w1.example"), bundletest.NewWitness("w2.example")}
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy")
	if err := os.WriteFile(policy, []byte(bundletest.Policy("", 2, ws...)), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	var args []string
	for i, origin := range []string{"keycommit.example/log/a", "keycommit.example/log/b"} {
		l, vkey, err := monitortest.NewWithKey(origin)
		if err != nil {
			t.Fatal(err)
		}
		g := monitortest.NewGen(l, start, uint64(i+1))
		for _, step := range []func() (uint64, error){
			func() (uint64, error) { return g.Register("https://x.example") },
			func() (uint64, error) { return g.Commit("https://x.example", 2, 3) },
			g.Snapshot,
			func() (uint64, error) { g.Advance(time.Hour); return g.Snapshot() },
		} {
			if _, err := step(); err != nil {
				t.Fatal(err)
			}
		}
		srv := httptest.NewServer(monitortest.CosignedHandler(l, func(text []byte) []byte {
			var lines []byte
			for _, w := range ws {
				lines = append(lines, w.CosignatureLine(text, uint64(g.Now/1000))...)
			}
			return lines
		}))
		t.Cleanup(srv.Close)
		args = append(args, "--log", srv.URL, "--log-vkey", vkey)
	}
	data := filepath.Join(dir, "data")
	schemas := jsonSchemas(t)
	run := func() (int, []monitor.Alert) {
		t.Helper()
		out, errOut, code := runBin(t, bin, append([]string{"monitor", "--once", "--json", "--data", data, "--witness-policy", policy, "--log-level", "error"}, args...)...)
		var rep struct {
			AlertList []monitor.Alert `json:"alert_list"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("monitor --once --json: %v\n%s%s", err, out, errOut)
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas("monitor-once").Validate(inst); err != nil {
			t.Errorf("monitor --once --json does not follow its schema: %v\n%s", err, out)
		}
		return code, rep.AlertList
	}
	code, alerts := run()
	if code != 2 || len(alerts) != 1 || alerts[0].Kind != monitor.KindCrossLog || alerts[0].Issuer != "https://x.example" {
		t.Fatalf("first run: exit %d, alerts %+v; want exit 2 and one cross-log alert", code, alerts)
	}
	if code, alerts := run(); code != 2 || len(alerts) != 0 {
		t.Fatalf("second run: exit %d (want 2: the evidence is on record), alerts %+v (want none)", code, alerts)
	}
	if out, errOut, code := runBin(t, bin, append([]string{"monitor", "--once", "--data", filepath.Join(dir, "other"), "--cross-log-grace", "-1m"}, args...)...); code != 1 || !strings.Contains(errOut, "--cross-log-grace must not be negative") {
		t.Errorf("a negative --cross-log-grace: exit %d\n%s%s", code, out, errOut)
	}
}
