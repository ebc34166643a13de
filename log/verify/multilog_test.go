package verify_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/bundle"
	"github.com/keycommit/keycommit/log/bundle/bundletest"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
	"github.com/transparency-dev/merkle/rfc6962"
)

// mlLog is one log of a mlNet: a bundletest log, its witness, the key set
// its snapshots carry and what its fake HTTP API needs.
type mlLog struct {
	name  string
	l     *bundletest.Log
	w     *bundletest.Witness
	ks    *schema.KeySet
	index map[string]uint64 // leaf hash (base64) -> index
	data  map[uint64][]byte
	last  map[string][]byte // issuer -> latest leaf
	down  bool
}

// mlNet is several independent logs served by a fake Fetcher.
type mlNet struct {
	logs []*mlLog
	dir  string
	acct ed25519.PrivateKey
	// served counts fetches by path.
	mu     sync.Mutex
	served map[string]int
}

func newMLNet(t testing.TB, n int) *mlNet {
	t.Helper()
	net := &mlNet{dir: t.TempDir(), acct: ed25519.NewKeyFromSeed(bundletest.Seed("ml-acct")), served: map[string]int{}}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("log-%c.example/log", 'a'+i)
		lg := &mlLog{name: name, l: bundletest.NewLog(name), w: bundletest.NewWitness(fmt.Sprintf("w-%c.example", 'a'+i)),
			ks:    &schema.KeySet{PST: map[string]schema.PSTCommitment{}, PrivacyPass: map[string]schema.IssuerDirectory{}},
			index: map[string]uint64{}, data: map[uint64][]byte{}, last: map[string][]byte{}}
		for j := 0; j < 3; j++ {
			lg.l.Append([]byte(fmt.Sprintf("filler %d of %s", j, name)))
		}
		if err := os.WriteFile(filepath.Join(net.dir, strconv.Itoa(i)+".policy"), []byte(bundletest.Policy(lg.l.VKey, 1, lg.w)), 0o644); err != nil {
			t.Fatal(err)
		}
		net.logs = append(net.logs, lg)
	}
	return net
}

// pst returns a one-key PST commitment with key id id.
func pst(t testing.TB, id uint32) *schema.KeyCommitment {
	t.Helper()
	pt, err := bundletest.P384Point(fmt.Sprint("ml-key-", id))
	if err != nil {
		t.Fatal(err)
	}
	y := append([]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, pt...)
	return &schema.KeyCommitment{PST: schema.PSTCommitment{schema.PSTV1VOPRF: {ProtocolVersion: schema.PSTV1VOPRF, ID: 1, BatchSize: 10,
		Keys: map[string]schema.PSTKey{strconv.Itoa(int(id)): {Y: base64.StdEncoding.EncodeToString(y), Expiry: fmt.Sprint(t0.Add(90 * 24 * time.Hour).UnixMicro())}}}}}
}

// commit logs body for issuer in log li at time at (its prev the issuer's
// previous entry there), then a snapshot and a checkpoint cosigned at at.
func (n *mlNet) commit(t testing.TB, li int, issuer string, body *schema.KeyCommitment, at time.Time) {
	t.Helper()
	lg := n.logs[li]
	var prev []byte
	if p := lg.last[issuer]; p != nil {
		prev = rfc6962.DefaultHasher.HashLeaf(p)
	}
	idx, leaf, err := lg.l.AppendCommitment(issuer, body, n.acct, prev, at)
	if err != nil {
		t.Fatal(err)
	}
	lg.index[base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(leaf))] = idx
	lg.data[idx], lg.last[issuer] = leaf, leaf
	if body.PST != nil {
		lg.ks.PST[issuer] = body.PST
	}
	if body.PrivacyPass != nil {
		lg.ks.PrivacyPass[issuer] = *body.PrivacyPass
	}
	n.publish(t, li, at)
}

func (n *mlNet) publish(t testing.TB, li int, at time.Time) {
	t.Helper()
	lg := n.logs[li]
	if _, err := lg.l.AppendSnapshot(lg.ks, at); err != nil {
		t.Fatal(err)
	}
	if _, err := lg.l.Publish(at, lg.w); err != nil {
		t.Fatal(err)
	}
}

// trust parses a trust file of head and a line for every log (opts[i]
// appended to log i's line).
func (n *mlNet) trust(t testing.TB, head string, opts ...string) *verify.Trust {
	t.Helper()
	text := head + "\n"
	for i, lg := range n.logs {
		text += fmt.Sprintf("log %s https://%s/v1/keys.bundle %d.policy", lg.l.VKey, lg.name, i)
		if i < len(opts) {
			text += " " + opts[i]
		}
		text += "\n"
	}
	tr, err := verify.ParseTrust([]byte(text), n.dir, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// fetch serves what a log's HTTP API would: bundles, issuer proofs,
// inclusion proofs by leaf hash and single entries.
func (n *mlNet) fetch(ctx context.Context, loc string) ([]byte, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	for _, lg := range n.logs {
		base := "/" + strings.SplitN(lg.name, "/", 2)[1]
		host := strings.SplitN(lg.name, "/", 2)[0]
		if u.Host != host || !strings.HasPrefix(u.Path, base+"/") {
			continue
		}
		if lg.down {
			return nil, &url.Error{Op: "Get", URL: loc, Err: errors.New("connection refused")}
		}
		path := strings.TrimPrefix(u.Path, base)
		n.mu.Lock()
		n.served[path]++
		n.mu.Unlock()
		q := u.Query()
		switch path {
		case bundle.BundlePath:
			return lg.l.Bundle(0)
		case bundle.IssuerProofPath:
			return bundle.BuildIssuerProof(ctx, lg.l, q.Get("issuer"))
		case "/v1/proof/inclusion":
			idx, ok := lg.index[q.Get("hash")]
			if !ok {
				return nil, fmt.Errorf("GET %s: 404 Not Found", loc)
			}
			size, _ := strconv.ParseUint(q.Get("size"), 10, 64)
			p, err := lg.l.InclusionProof(ctx, idx, size)
			if err != nil {
				return nil, err
			}
			return json.Marshal(map[string]any{"index": idx, "tree_size": size, "proof": p})
		case "/v1/entries":
			start, _ := strconv.ParseUint(q.Get("start"), 10, 64)
			d, ok := lg.data[start]
			if !ok {
				return nil, fmt.Errorf("GET %s: 404 Not Found", loc)
			}
			return json.Marshal(map[string]any{"entries": []map[string]any{{"index": start, "data": d}}})
		}
		return nil, fmt.Errorf("GET %s: 404 Not Found", loc)
	}
	return nil, fmt.Errorf("GET %s: no such host", loc)
}

func (n *mlNet) run(t testing.TB, tr *verify.Trust, k int, now time.Time) *verify.Merged {
	t.Helper()
	m, err := verify.VerifyLogs(context.Background(), verify.MultiLog{Trust: tr, MinLogs: k, Fetch: n.fetch, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func issuerResult(t *testing.T, m *verify.Merged, iss string) verify.IssuerResult {
	t.Helper()
	for _, r := range m.Issuers {
		if r.Issuer == iss {
			return r
		}
	}
	t.Fatalf("no decision for %s in %+v", iss, m.Issuers)
	return verify.IssuerResult{}
}

func wantDecision(t *testing.T, m *verify.Merged, iss string, want verify.Decision, reason ...string) verify.IssuerResult {
	t.Helper()
	r := issuerResult(t, m, iss)
	if r.Decision != want {
		t.Fatalf("%s: %s (%s), want %s", iss, r.Decision, r.Reason, want)
	}
	for _, s := range reason {
		if !strings.Contains(r.Reason, s) {
			t.Errorf("%s: reason %q does not say %q", iss, r.Reason, s)
		}
	}
	_, inPST := m.KeySet.PST(iss)
	if inPST != (want != verify.Refused) {
		t.Errorf("%s is %s but its keys are in the merged key set: %v", iss, want, inPST)
	}
	return r
}

const (
	issX = "https://x.example"
	issY = "https://y.example"
)

// TestVerifyLogsAgree: two logs holding the same keys for two issuers;
// with k=2 both are accepted and the merged key set is theirs.
func TestVerifyLogsAgree(t *testing.T) {
	n := newMLNet(t, 2)
	for li := range n.logs {
		n.commit(t, li, issX, pst(t, 7), t0.Add(-time.Hour))
		n.commit(t, li, issY, pst(t, 9), t0.Add(-time.Hour))
	}
	m := n.run(t, n.trust(t, "min-logs 2"), 0, t0)
	if !m.OK() || m.MinLogs != 2 || m.Available() != 2 {
		t.Fatalf("not OK: %+v", m)
	}
	for _, iss := range []string{issX, issY} {
		r := wantDecision(t, m, iss, verify.Accepted, "2 of 2 logs")
		if !reflect.DeepEqual(r.Logs, []string{"log-a.example/log", "log-b.example/log"}) || r.Holdings != nil {
			t.Errorf("%s: %+v", iss, r)
		}
	}
	ks, err := m.Logs[0].Verified.KeySet()
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := m.KeySet.Marshal()
	kb, _ := ks.Marshal()
	if !bytes.Equal(mb, kb) || !reflect.DeepEqual(asSchema(m.KeySet), asSchema(ks)) {
		t.Errorf("merged key set differs from the logs' own")
	}
	if n.served[bundle.IssuerProofPath] != 0 {
		t.Errorf("asked for %d issuer proofs though the logs agree", n.served[bundle.IssuerProofPath])
	}
}

// TestVerifyLogsEquivocation: x commits different keys to each log; x is
// refused, naming the logs and key ids, and y, identical in both, is
// accepted. The same holds when the two commitments are fresh (within the
// grace window): neither log holds the other's as x's previous one.
func TestVerifyLogsEquivocation(t *testing.T) {
	n := newMLNet(t, 2)
	n.commit(t, 0, issY, pst(t, 9), t0.Add(-time.Hour))
	n.commit(t, 1, issY, pst(t, 9), t0.Add(-time.Hour))
	n.commit(t, 0, issX, pst(t, 7), t0.Add(-time.Hour))
	n.commit(t, 1, issX, pst(t, 8), t0.Add(-time.Hour+time.Second))
	m := n.run(t, n.trust(t, ""), 0, t0)
	r := wantDecision(t, m, issX, verify.Refused, "logs disagree",
		"log-a.example/log hold keys [pst:PrivateStateTokenV1VOPRF:7]", "log-b.example/log hold keys [pst:PrivateStateTokenV1VOPRF:8]", "over the grace window")
	if len(r.Holdings) != 2 || !reflect.DeepEqual(r.Holdings[0].KeyIDs, []string{"pst:PrivateStateTokenV1VOPRF:7"}) || !r.Holdings[0].Logged.Equal(t0.Add(-time.Hour)) {
		t.Errorf("holdings %+v", r.Holdings)
	}
	wantDecision(t, m, issY, verify.Accepted)
	if m.OK() {
		t.Error("OK with a refused issuer")
	}
	// Without a grace window nothing is fetched for the divergence.
	served := n.served[bundle.IssuerProofPath]
	m = n.run(t, n.trust(t, "grace 0"), 0, t0)
	wantDecision(t, m, issX, verify.Refused, "no grace window", "log-b.example/log hold keys [pst:PrivateStateTokenV1VOPRF:8]")
	if n.served[bundle.IssuerProofPath] != served {
		t.Error("grace 0 fetched issuer proofs")
	}

	// Fresh equivocation: after the same first commitment, x commits 8 to
	// a and, a second later, 10 to b.
	n = newMLNet(t, 2)
	for li := range n.logs {
		n.commit(t, li, issX, pst(t, 7), t0.Add(-time.Hour))
	}
	n.commit(t, 0, issX, pst(t, 8), t0)
	n.commit(t, 1, issX, pst(t, 10), t0.Add(time.Second))
	m = n.run(t, n.trust(t, ""), 0, t0.Add(time.Minute))
	wantDecision(t, m, issX, verify.Refused, "not a rotation: log log-a.example/log holds a commitment that is not the one log log-b.example/log holds before the newest")
}

// TestVerifyLogsOneDown: one of two logs is unreachable. With k=1 the
// issuer the other carries is accepted; with k=2 it is refused, naming the
// log that carries it.
func TestVerifyLogsOneDown(t *testing.T) {
	n := newMLNet(t, 2)
	for li := range n.logs {
		n.commit(t, li, issX, pst(t, 7), t0.Add(-time.Hour))
	}
	n.logs[1].down = true
	m := n.run(t, n.trust(t, ""), 1, t0)
	r := wantDecision(t, m, issX, verify.Accepted, "1 of 2 logs", "min-logs 1")
	if !reflect.DeepEqual(r.Logs, []string{"log-a.example/log"}) {
		t.Errorf("logs %v", r.Logs)
	}
	if b := m.Logs[1]; b.Status != verify.LogUnavailable || b.Err == nil || !strings.Contains(b.Err.Error(), "connection refused") || b.Verified != nil {
		t.Errorf("log b: %+v", b)
	}
	if m.OK() || m.Available() != 1 {
		t.Error("OK with a log down")
	}
	m = n.run(t, n.trust(t, ""), 2, t0)
	wantDecision(t, m, issX, verify.Refused, "held by only 1 log(s) (log-a.example/log), min-logs is 2", "not ok: log-b.example/log")
}

// TestVerifyLogsRotationGrace: x rotates; the rotation reaches log a at t0
// and log b a minute later. In between, within the grace window, x is
// pending with the new keys; with a grace window shorter than the wait it
// is refused; once b has it, accepted.
func TestVerifyLogsRotationGrace(t *testing.T) {
	n := newMLNet(t, 2)
	for li := range n.logs {
		n.commit(t, li, issX, pst(t, 7), t0.Add(-time.Hour))
		n.commit(t, li, issY, pst(t, 9), t0.Add(-time.Hour))
	}
	n.commit(t, 0, issX, pst(t, 8), t0)
	n.publish(t, 1, t0) // b is as fresh, but without the rotation yet

	m := n.run(t, n.trust(t, ""), 0, t0.Add(30*time.Second))
	r := wantDecision(t, m, issX, verify.Pending, "a rotation within the grace window", "held by log-a.example/log", "log-b.example/log still hold the issuer's previous one")
	if !reflect.DeepEqual(r.Logs, []string{"log-a.example/log"}) || !reflect.DeepEqual(r.Lagging, []string{"log-b.example/log"}) ||
		!reflect.DeepEqual(r.Holdings[0].KeyIDs, []string{"pst:PrivateStateTokenV1VOPRF:8"}) || !r.Holdings[0].Logged.Equal(t0) {
		t.Errorf("pending: %+v", r)
	}
	if c, _ := m.KeySet.PST(issX); canonical(t, c) != canonical(t, pst(t, 8).PST) {
		t.Errorf("pending x does not use the new keys: %s", canonical(t, c))
	}
	wantDecision(t, m, issY, verify.Accepted)
	if !m.OK() {
		t.Error("a pending issuer made the result not OK")
	}

	// Past the grace window: 20s of grace, 30s after a logged it.
	m = n.run(t, n.trust(t, "grace 20s"), 0, t0.Add(30*time.Second))
	wantDecision(t, m, issX, verify.Refused, "over the grace window of 20s", "log-b.example/log still hold an older one")
	// The default window, 11 minutes on, b still without it.
	m = n.run(t, n.trust(t, ""), 0, t0.Add(11*time.Minute))
	wantDecision(t, m, issX, verify.Refused, "over the grace window of 10m0s")
	// k counts the lagging log: with k=2 and b down, a alone is too few.
	n.logs[1].down = true
	m = n.run(t, n.trust(t, ""), 0, t0.Add(30*time.Second))
	wantDecision(t, m, issX, verify.Refused, "held by only 1 log(s)")
	n.logs[1].down = false

	// The rotation reaches b a minute after a.
	n.commit(t, 1, issX, pst(t, 8), t0.Add(time.Minute))
	m = n.run(t, n.trust(t, "grace 20s"), 0, t0.Add(2*time.Minute))
	wantDecision(t, m, issX, verify.Accepted, "2 of 2 logs")
}

// TestVerifyLogsRotationNotPrevious: within the grace window, a lagging log
// must hold the very commitment the rotation replaced: x rotated 7 -> 8 in
// a, but b holds 9.
func TestVerifyLogsRotationNotPrevious(t *testing.T) {
	n := newMLNet(t, 2)
	n.commit(t, 0, issX, pst(t, 7), t0.Add(-time.Hour))
	n.commit(t, 1, issX, pst(t, 9), t0.Add(-time.Hour))
	n.commit(t, 0, issX, pst(t, 8), t0)
	m := n.run(t, n.trust(t, ""), 0, t0.Add(30*time.Second))
	wantDecision(t, m, issX, verify.Refused, "not a rotation")
	// A first commitment in a, fresh, with b holding an older one: x has
	// no previous commitment in a, so it is no rotation.
	n = newMLNet(t, 2)
	n.commit(t, 1, issX, pst(t, 9), t0.Add(-time.Hour))
	n.commit(t, 0, issX, pst(t, 8), t0)
	m = n.run(t, n.trust(t, ""), 0, t0.Add(30*time.Second))
	wantDecision(t, m, issX, verify.Refused, "no earlier key commitment in this log")
}

// TestVerifyLogsStaleAndInvalid: a log whose cosignatures are older than
// its max-age is stale, one serving another log's bundle invalid; both
// carry nothing.
func TestVerifyLogsStaleAndInvalid(t *testing.T) {
	n := newMLNet(t, 3)
	for li := range n.logs {
		n.commit(t, li, issX, pst(t, 7), t0.Add(-2*time.Hour))
	}
	tr := n.trust(t, "min-logs 1", "", "max-age=1h")
	tr.Logs[2].Bundle = "https://" + n.logs[0].name + "/v1/keys.bundle"
	m := n.run(t, tr, 0, t0)
	if s := m.Logs[1]; s.Status != verify.LogStale || s.Check != verify.CheckFreshness {
		t.Errorf("log b: %s %s %v", s.Status, s.Check, s.Err)
	}
	if s := m.Logs[2]; s.Status != verify.LogInvalid || s.Check != verify.CheckCheckpoint {
		t.Errorf("log c: %s %s %v", s.Status, s.Check, s.Err)
	}
	if r := wantDecision(t, m, issX, verify.Accepted); !reflect.DeepEqual(r.Logs, []string{"log-a.example/log"}) {
		t.Errorf("logs %v", r.Logs)
	}
	if _, err := verify.VerifyLogs(context.Background(), verify.MultiLog{Trust: tr, MinLogs: 4, Fetch: n.fetch}); err == nil || !strings.Contains(err.Error(), "min-logs 4 is out of range") {
		t.Errorf("k=4 of 3 logs: %v", err)
	}
}

// TestVerifyLogsUnreachableProofs: when a log cannot be reached for the
// issuer proofs of divergent issuers, each of them is refused saying so,
// and the log is not asked again in the same run (at most the fetches
// already under way when the first failed: one per lookup worker).
func TestVerifyLogsUnreachableProofs(t *testing.T) {
	n := newMLNet(t, 2)
	const issuers = 20
	for i := 0; i < issuers; i++ {
		iss := fmt.Sprintf("https://issuer-%02d.example", i)
		n.commit(t, 0, iss, pst(t, uint32(100+i)), t0.Add(-time.Minute))
		n.commit(t, 1, iss, pst(t, uint32(200+i)), t0.Add(-time.Minute+time.Second))
	}
	base := n.fetch
	var mu sync.Mutex
	asked := 0
	fetch := func(ctx context.Context, loc string) ([]byte, error) {
		if strings.HasPrefix(loc, "https://log-b.example/log"+bundle.IssuerProofPath) {
			mu.Lock()
			asked++
			mu.Unlock()
			return nil, &url.Error{Op: "Get", URL: loc, Err: errors.New("connection reset")}
		}
		return base(ctx, loc)
	}
	m, err := verify.VerifyLogs(context.Background(), verify.MultiLog{Trust: n.trust(t, "min-logs 1"), Fetch: fetch, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Issuers {
		if r.Decision != verify.Refused || !strings.Contains(r.Reason, "log log-b.example/log: ") || !strings.Contains(r.Reason, "connection reset") {
			t.Errorf("%s: %s: %s", r.Issuer, r.Decision, r.Reason)
		}
	}
	if len(m.Issuers) != issuers || asked == 0 || asked > 8 {
		t.Errorf("%d issuers decided, log b asked for %d issuer proofs (want 1 to 8)", len(m.Issuers), asked)
	}
}

// TestHTTPFetcher: the default Fetcher reads files and http URLs, and an
// answer other than 200 makes the log unavailable, naming the status.
func TestHTTPFetcher(t *testing.T) {
	n := newMLNet(t, 2)
	for li := range n.logs {
		n.commit(t, li, issX, pst(t, 7), t0.Add(-time.Hour))
	}
	raw, err := n.logs[0].l.Bundle(0)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(n.dir, "a.bundle")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"the log has no checkpoint yet"}`, http.StatusNotFound)
	}))
	defer srv.Close()
	tr := n.trust(t, "min-logs 1")
	tr.Logs[0].Bundle, tr.Logs[1].Bundle = file, srv.URL+verify.BundleSuffix
	m, err := verify.VerifyLogs(context.Background(), verify.MultiLog{Trust: tr, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if m.Logs[0].Status != verify.LogOK {
		t.Errorf("file bundle: %s %v", m.Logs[0].Status, m.Logs[0].Err)
	}
	if l := m.Logs[1]; l.Status != verify.LogUnavailable || !strings.Contains(l.Err.Error(), "404 Not Found") || !strings.Contains(l.Err.Error(), "no checkpoint yet") {
		t.Errorf("404: %s %v", l.Status, l.Err)
	}
	wantDecision(t, m, issX, verify.Accepted)
}

// TestVerifyLogsPrivacyPass: an issuer's commitment is both parts, as
// logged. The same PST commitment and Privacy Pass directory in both logs
// is accepted and merged; a log without the directory, or with another
// token key, diverges, and the key ids name the Privacy Pass keys (RFC
// 9578 token_key_id).
func TestVerifyLogsPrivacyPass(t *testing.T) {
	dir := func(key string) schema.IssuerDirectory {
		return schema.IssuerDirectory{IssuerRequestURI: "https://pp.example/token-request",
			TokenKeys: []schema.TokenKey{{TokenType: 2, TokenKey: base64.URLEncoding.EncodeToString([]byte(key))}}}
	}
	const pp, ppOnly = "https://pp.example", "https://pp-only.example"
	n := newMLNet(t, 2)
	for li, lg := range n.logs {
		lg.ks.PST[pp] = pst(t, 7).PST
		lg.ks.PrivacyPass[pp] = dir("key one")
		lg.ks.PrivacyPass[ppOnly] = dir(fmt.Sprint("key of log ", li))
		n.publish(t, li, t0)
	}
	m := n.run(t, n.trust(t, "grace 0"), 0, t0)
	wantDecision(t, m, pp, verify.Accepted)
	if d, ok := m.KeySet.PrivacyPass(pp); !ok || d.NumTokenKeys() != 1 || d.IssuerRequestURI != "https://pp.example/token-request" {
		t.Errorf("merged privacy_pass[%s] = %+v", pp, d)
	}
	r := wantDecision(t, m, ppOnly, verify.Refused, "logs disagree")
	if _, ok := m.KeySet.PrivacyPass(ppOnly); ok {
		t.Errorf("refused %s is in the merged directories", ppOnly)
	}
	if len(r.Holdings) != 2 || len(r.Holdings[0].KeyIDs) != 1 || !strings.HasPrefix(r.Holdings[0].KeyIDs[0], "privacy_pass:2:") ||
		len(r.Holdings[0].KeyIDs[0]) != len("privacy_pass:2:")+16 || r.Holdings[0].KeyIDs[0] == r.Holdings[1].KeyIDs[0] {
		t.Errorf("holdings %+v", r.Holdings)
	}

	// Log b drops the directory of pp and keeps its PST commitment.
	delete(n.logs[1].ks.PrivacyPass, pp)
	n.publish(t, 1, t0)
	m = n.run(t, n.trust(t, "grace 0"), 0, t0)
	r = wantDecision(t, m, pp, verify.Refused, "logs disagree")
	if len(r.Holdings) != 2 || len(r.Holdings[0].KeyIDs) != 2 || len(r.Holdings[1].KeyIDs) != 1 {
		t.Errorf("holdings %+v", r.Holdings)
	}
}
