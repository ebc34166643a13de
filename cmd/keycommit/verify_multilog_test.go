package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/transparency-dev/merkle/rfc6962"
)

// loopbackLog is one loopback log for `verify --trust`: a bundletest log
// served by the bundle handler, with its own witness and policy file.
type loopbackLog struct {
	name   string
	l      *bundletest.Log
	w      *bundletest.Witness
	ks     *schema.KeySet
	srv    *httptest.Server
	policy string

	mu    sync.Mutex
	index map[string]uint64 // leaf hash (base64) -> index
	data  map[uint64][]byte
	last  map[string][]byte // issuer -> latest leaf
}

func newLoopbackLogs(t *testing.T, dir string, n int) []*loopbackLog {
	t.Helper()
	var out []*loopbackLog
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("log-%c.example/cli", 'a'+i)
		tl := &loopbackLog{name: name, l: bundletest.NewLog(name), w: bundletest.NewWitness(fmt.Sprintf("w-%c.example", 'a'+i)),
			ks:    &schema.KeySet{PST: map[string]schema.PSTCommitment{}, PrivacyPass: map[string]schema.IssuerDirectory{}},
			index: map[string]uint64{}, data: map[uint64][]byte{}, last: map[string][]byte{}}
		tl.l.Append([]byte("filler of " + name))
		tl.policy = filepath.Join(dir, fmt.Sprintf("policy-%d.txt", i))
		if err := os.WriteFile(tl.policy, []byte(bundletest.Policy(tl.l.VKey, 1, tl.w)), 0o644); err != nil {
			t.Fatal(err)
		}
		h, err := bundle.NewHandler(bundle.Config{Source: tl.l})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		h.Register(mux)
		// What the log server answers (log/api), for the entries a
		// rotation's prev names.
		mux.HandleFunc("GET "+api.PathInclusionProof, tl.serveInclusion)
		mux.HandleFunc("GET "+api.PathEntries, tl.serveEntry)
		tl.srv = httptest.NewServer(mux)
		t.Cleanup(tl.srv.Close)
		out = append(out, tl)
	}
	return out
}

// trustKeyExpiry is when every key of the loopback logs expires, the same
// in every log, so that the same key id is the same commitment everywhere.
var trustKeyExpiry = time.Now().Add(90 * 24 * time.Hour).Truncate(time.Hour)

// commit logs a one-key PST commitment (key id id) for issuer at at, then
// a snapshot and a checkpoint cosigned now.
func (tl *loopbackLog) commit(t *testing.T, issuer string, id uint32, at time.Time) {
	t.Helper()
	pt, err := bundletest.P384Point(fmt.Sprint("cli-trust-", id))
	if err != nil {
		t.Fatal(err)
	}
	y := append([]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, pt...)
	c := schema.PSTCommitment{schema.PSTV1VOPRF: {ProtocolVersion: schema.PSTV1VOPRF, ID: 1, BatchSize: 10,
		Keys: map[string]schema.PSTKey{strconv.Itoa(int(id)): {Y: base64.StdEncoding.EncodeToString(y), Expiry: fmt.Sprint(trustKeyExpiry.UnixMicro())}}}}
	acct := ed25519.NewKeyFromSeed(bundletest.Seed("cli-trust-acct " + issuer))
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var prev []byte
	if p := tl.last[issuer]; p != nil {
		prev = rfc6962.DefaultHasher.HashLeaf(p)
	}
	idx, leaf, err := tl.l.AppendCommitment(issuer, &schema.KeyCommitment{PST: c}, acct, prev, at)
	if err != nil {
		t.Fatal(err)
	}
	tl.index[base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(leaf))] = idx
	tl.data[idx], tl.last[issuer] = leaf, leaf
	tl.ks.PST[issuer] = c
	if _, err := tl.l.AppendSnapshot(tl.ks, at); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.l.Publish(time.Now(), tl.w); err != nil {
		t.Fatal(err)
	}
}

func (tl *loopbackLog) serveInclusion(w http.ResponseWriter, r *http.Request) {
	tl.mu.Lock()
	idx, ok := tl.index[r.URL.Query().Get("hash")]
	tl.mu.Unlock()
	size, err := strconv.ParseUint(r.URL.Query().Get("size"), 10, 64)
	if !ok || err != nil {
		http.Error(w, `{"error":"no such entry"}`, http.StatusNotFound)
		return
	}
	p, err := tl.l.InclusionProof(r.Context(), idx, size)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	json.NewEncoder(w).Encode(&api.InclusionProof{Index: idx, TreeSize: size, Proof: p})
}

func (tl *loopbackLog) serveEntry(w http.ResponseWriter, r *http.Request) {
	start, _ := strconv.ParseUint(r.URL.Query().Get("start"), 10, 64)
	tl.mu.Lock()
	d, ok := tl.data[start]
	tl.mu.Unlock()
	if !ok {
		http.Error(w, `{"error":"no such entry"}`, http.StatusNotFound)
		return
	}
	json.NewEncoder(w).Encode(&api.Entries{Entries: []api.Entry{{Index: start, LeafHash: rfc6962.DefaultHasher.HashLeaf(d), Data: d}}})
}

func writeTrustFile(t *testing.T, dir, head string, logs []*loopbackLog) string {
	t.Helper()
	text := "# loopback logs\n" + head + "\n"
	for _, tl := range logs {
		text += fmt.Sprintf("log %s %s%s %s\n", tl.l.VKey, tl.srv.URL, bundle.BundlePath, filepath.Base(tl.policy))
	}
	p := filepath.Join(dir, "trust.txt")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// trustJSON runs `verify --trust --json` and returns the exit code and the
// object, checked against cli/verify-trust.json.
func trustJSON(t *testing.T, bin string, validate func(string) *jsonschema.Schema, args ...string) (int, map[string]any, string) {
	t.Helper()
	out, errOut, code := runBin(t, bin, append([]string{"verify", "--json"}, args...)...)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("stdout is not JSON (exit %d): %v\n%s%s", code, err, out, errOut)
	}
	if err := validate("verify-trust").Validate(inst); err != nil {
		t.Errorf("output does not follow cli/verify-trust.json: %v\n%s", err, out)
	}
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Errorf("stdout holds more than one JSON value (exit %d):\n%s", code, out)
	}
	return code, v, out
}

func decisionOf(t *testing.T, v map[string]any, issuer string) map[string]any {
	t.Helper()
	list, _ := v["issuers"].([]any)
	for _, e := range list {
		if m, _ := e.(map[string]any); m["issuer"] == issuer {
			return m
		}
	}
	t.Fatalf("no decision for %s: %v", issuer, v["issuers"])
	return nil
}

// TestVerifyTrustCommand runs `keycommit verify --trust` (the real binary)
// on two loopback logs: the same keys in both pass with k=2; an issuer
// that equivocates is refused naming the logs and key ids while another
// is accepted; with one log down the issuer is accepted with k=1 and
// refused with k=2; with every log down nothing verifies; --trust with a
// single-log flag is a usage error.
func TestVerifyTrustCommand(t *testing.T) {
	bin := buildBinary(t)
	schemas := jsonSchemas(t)
	dir := t.TempDir()
	logs := newLoopbackLogs(t, dir, 2)
	past := time.Now().Add(-time.Hour)
	const x, y = "https://x.example", "https://y.example"
	for _, tl := range logs {
		tl.commit(t, x, 7, past)
	}
	trust := writeTrustFile(t, dir, "min-logs 2", logs)

	// Same keys in both logs, k=2.
	code, v, out := trustJSON(t, bin, schemas, "--trust", trust)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	if d := decisionOf(t, v, x); d["decision"] != "accepted" || !reflect.DeepEqual(d["logs"], []any{"log-a.example/cli", "log-b.example/cli"}) {
		t.Errorf("x: %v", d)
	}
	pst, _ := v["pst"].(map[string]any)
	b, _ := json.Marshal(logs[0].ks.PST[x])
	var want any
	if err := json.Unmarshal(b, &want); err != nil || !reflect.DeepEqual(pst[x], want) {
		t.Errorf("pst[x] is %v, want the logged commitment %s", pst[x], b)
	}
	got, _ := json.MarshalIndent(shape(v), "", "  ")
	golden := filepath.Join("testdata", "json", "verify-trust.json")
	if *updateGolden {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if w, err := os.ReadFile(golden); err != nil || !bytes.Equal(w, append(got, '\n')) {
		t.Errorf("the shape of the output changed (%v): got\n%s\nwant (%s)\n%s\n(rerun with -update if intended, and say so in the docs)", err, got, golden, w)
	}
	text, errOut, textCode := runBin(t, bin, "verify", "--trust", trust)
	if textCode != 0 || !strings.Contains(text, "log log-a.example/cli: ok") || !strings.Contains(text, "issuer https://x.example: accepted: 2 of 2 logs") ||
		!strings.Contains(text, "merged key set: 1 PST and 0 Privacy Pass issuers (min-logs 2") {
		t.Errorf("exit %d, report:\n%s%s", textCode, text, errOut)
	}

	// y equivocates: key 8 in log a, key 9 in log b.
	logs[0].commit(t, y, 8, past)
	logs[1].commit(t, y, 9, past.Add(time.Second))
	code, v, out = trustJSON(t, bin, schemas, "--trust", trust)
	if code != exitVerifySome {
		t.Fatalf("exit %d, want %d\n%s", code, exitVerifySome, out)
	}
	d := decisionOf(t, v, y)
	if d["decision"] != "refused" || !strings.Contains(d["reason"].(string), "logs disagree") {
		t.Errorf("y: %v", d)
	}
	wantDiv := []any{
		map[string]any{"logs": []any{"log-a.example/cli"}, "key_ids": []any{"pst:PrivateStateTokenV1VOPRF:8"}, "logged": past.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)},
		map[string]any{"logs": []any{"log-b.example/cli"}, "key_ids": []any{"pst:PrivateStateTokenV1VOPRF:9"}, "logged": past.Add(time.Second).UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)},
	}
	if !reflect.DeepEqual(d["divergence"], wantDiv) {
		t.Errorf("y's divergence %v, want %v", d["divergence"], wantDiv)
	}
	if d := decisionOf(t, v, x); d["decision"] != "accepted" {
		t.Errorf("x is not accepted beside the divergent y: %v", d)
	}
	if pst, _ := v["pst"].(map[string]any); pst[x] == nil || pst[y] != nil {
		t.Errorf("merged pst has %v", pst)
	}
	text, _, textCode = runBin(t, bin, "verify", "--trust", trust)
	if textCode != exitVerifySome || !strings.Contains(text, "issuer https://y.example: refused: logs disagree on its commitment: log-a.example/cli hold keys [pst:PrivateStateTokenV1VOPRF:8]; log-b.example/cli hold keys [pst:PrivateStateTokenV1VOPRF:9]") {
		t.Errorf("exit %d, report:\n%s", textCode, text)
	}

	// Log b goes down: x (and y, now in log a only) accepted with k=1,
	// refused with k=2 naming log a.
	logs[1].srv.Close()
	code, v, out = trustJSON(t, bin, schemas, "--trust", trust, "--min-logs", "1")
	if code != exitVerifySome {
		t.Fatalf("k=1, one log down: exit %d, want %d\n%s", code, exitVerifySome, out)
	}
	if d := decisionOf(t, v, x); d["decision"] != "accepted" || !reflect.DeepEqual(d["logs"], []any{"log-a.example/cli"}) {
		t.Errorf("k=1: x: %v", d)
	}
	if l := v["logs"].([]any)[1].(map[string]any); l["status"] != "unavailable" || !strings.Contains(l["error"].(string), "couldn't fetch the bundle") {
		t.Errorf("log b: %v", l)
	}
	code, v, out = trustJSON(t, bin, schemas, "--trust", trust)
	if code != exitVerifySome {
		t.Fatalf("k=2, one log down: exit %d, want %d\n%s", code, exitVerifySome, out)
	}
	if d := decisionOf(t, v, x); d["decision"] != "refused" || !strings.Contains(d["reason"].(string), "held by only 1 log(s) (log-a.example/cli), min-logs is 2") {
		t.Errorf("k=2: x: %v", d)
	}
	if pst, _ := v["pst"].(map[string]any); len(pst) != 0 {
		t.Errorf("k=2 with one log down merged %v", pst)
	}

	// Every log down: nothing verified.
	logs[0].srv.Close()
	if code, _, out := trustJSON(t, bin, schemas, "--trust", trust); code != exitVerifyFailed {
		t.Errorf("every log down: exit %d, want %d\n%s", code, exitVerifyFailed, out)
	}

	// Usage errors.
	for _, args := range [][]string{
		{"verify", "--trust", trust, "--bundle", "keys.bundle"},
		{"verify", "--trust", trust, "--witness-policy", logs[0].policy, "--max-age", "1h"},
		{"verify", "--min-logs", "1", "--bundle", "keys.bundle"},
		{"verify", "--trust", trust, "--min-logs", "3"},
		{"verify", "--trust", filepath.Join(dir, "absent.txt")},
	} {
		_, errOut, code := runBin(t, bin, args...)
		if code != exitVerifyUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitVerifyUsage, errOut)
		}
		if strings.Contains(strings.Join(args, " "), "--bundle") && args[1] == "--trust" && !strings.Contains(errOut, "--trust cannot be combined with --bundle") {
			t.Errorf("%v: %s", args, errOut)
		}
	}
}

// TestVerifyTrustRotation: a rotation reaches log a 30 seconds ago and log b
// not yet. Within the default grace window the issuer is pending with the
// new keys (the binary follows log a's prev over HTTP to find that b holds
// the previous commitment); with a grace window of 20 seconds it is
// refused; once b has it, accepted.
func TestVerifyTrustRotation(t *testing.T) {
	bin := buildBinary(t)
	schemas := jsonSchemas(t)
	dir := t.TempDir()
	logs := newLoopbackLogs(t, dir, 2)
	const x = "https://x.example"
	past, rotated := time.Now().Add(-time.Hour), time.Now().Add(-30*time.Second)
	for _, tl := range logs {
		tl.commit(t, x, 7, past)
	}
	logs[0].commit(t, x, 8, rotated)
	trust := writeTrustFile(t, dir, "min-logs 2", logs)
	code, v, out := trustJSON(t, bin, schemas, "--trust", trust)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	d := decisionOf(t, v, x)
	if d["decision"] != "pending" || !reflect.DeepEqual(d["logs"], []any{"log-a.example/cli"}) || !reflect.DeepEqual(d["lagging"], []any{"log-b.example/cli"}) {
		t.Errorf("x: %v", d)
	}
	if keys := v["pst"].(map[string]any)[x].(map[string]any)[schema.PSTV1VOPRF].(map[string]any)["keys"].(map[string]any); keys["8"] == nil || len(keys) != 1 {
		t.Errorf("pending x does not use the new keys: %v", keys)
	}

	graceful := writeTrustFile(t, dir, "min-logs 2\ngrace 20s", logs)
	code, v, out = trustJSON(t, bin, schemas, "--trust", graceful)
	if d := decisionOf(t, v, x); code != exitVerifySome || d["decision"] != "refused" || !strings.Contains(d["reason"].(string), "over the grace window of 20s") {
		t.Errorf("grace 20s: exit %d, x: %v\n%s", code, d, out)
	}

	logs[1].commit(t, x, 8, rotated.Add(time.Second))
	code, v, out = trustJSON(t, bin, schemas, "--trust", graceful)
	if d := decisionOf(t, v, x); code != 0 || d["decision"] != "accepted" {
		t.Errorf("after b caught up: exit %d, x: %v\n%s", code, d, out)
	}
}

// TestTrustResultKeySetEncoding: the merged key set in `verify --trust
// --json` is encoded exactly as the maps of schema's key set types encode
// (Chrome's component shape), HTML-escaped and indented as the rest of the
// output, for commitments and directories holding strings that need
// escapes.
func TestTrustResultKeySetEncoding(t *testing.T) {
	nb := int64(-3)
	ks := &schema.KeySet{
		PST: map[string]schema.PSTCommitment{
			"https://a.example/<&>": {schema.PSTV1VOPRF: {ProtocolVersion: schema.PSTV1VOPRF, ID: 3, BatchSize: 10,
				Keys: map[string]schema.PSTKey{"1": {Y: "AAAA", Expiry: "5"}, "2": {Y: "QUJD\u2028", Expiry: "6"}}}},
			"https://b.example": {"v": {ProtocolVersion: "v"}},
			"https://c.example": nil,
		},
		PrivacyPass: map[string]schema.IssuerDirectory{
			"https://a.example/<&>": {IssuerRequestURI: "https://a.example/t?a=<b>&c\"é", TokenKeys: []schema.TokenKey{{TokenType: 2, TokenKey: "QUJD", NotBefore: &nb}}},
			"https://d.example":     {IssuerRequestURI: "x"},
		},
	}
	raw, err := ks.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	vks, err := verify.ParseKeySet(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got, want bytes.Buffer
	r := newTrustResult(&verify.Merged{KeySet: vks})
	if err := writeJSONOut(&got, struct {
		PST         json.RawMessage `json:"pst"`
		PrivacyPass json.RawMessage `json:"privacy_pass"`
	}{r.PST, r.PrivacyPass}); err != nil {
		t.Fatal(err)
	}
	if err := writeJSONOut(&want, struct {
		PST         map[string]schema.PSTCommitment   `json:"pst"`
		PrivacyPass map[string]schema.IssuerDirectory `json:"privacy_pass"`
	}{ks.PST, ks.PrivacyPass}); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("merged key set encodes as\n%s\nwant\n%s", got.String(), want.String())
	}
}
