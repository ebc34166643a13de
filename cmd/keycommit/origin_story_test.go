package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/challenge"
	"github.com/keycommit/keycommit/log/issuer"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/schema"
)

// storyOrigin is an issuer's web server for the story: HTTPS on
// 127.0.0.1 with a test CA, serving what the test puts at each path.
type storyOrigin struct {
	mu    sync.Mutex
	files map[string][]byte
	addr  string
	caPEM string // file
}

func startStoryOrigin(t *testing.T, dir string, hosts ...string) *storyOrigin {
	t.Helper()
	ca, err := challenge.NewCA("story CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ServerCert(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	o := &storyOrigin{files: map[string][]byte{}, caPEM: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(o.caPEM, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.addr = ln.Addr().String()
	srv := &http.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ErrorLog: log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			o.mu.Lock()
			b, ok := o.files[r.URL.Path]
			o.mu.Unlock()
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Write(b)
		})}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return o
}

// serveChallenge serves the challenge for the account key of is to
// register its origin with its log.
func (o *storyOrigin) serveChallenge(is *issuertest.Issuer) {
	pub := is.Key.Public().(ed25519.PublicKey)
	u := schema.ChallengeURL(is.Log, is.Origin, pub)
	o.serve(u[strings.Index(u, schema.ChallengePath):], schema.Challenge(is.Log, is.Origin, pub))
}

// serveChallengeFor serves the challenge for the account key in keyFile
// to register origin with the log named log.
func (o *storyOrigin) serveChallengeFor(t *testing.T, log, origin, keyFile string) {
	t.Helper()
	k, err := issuer.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	o.serveChallenge(&issuertest.Issuer{Log: log, Origin: origin, Key: k})
}

// serveArgs are the log serve flags that make the log trust o's CA and
// reach every origin at o.
func (o *storyOrigin) serveArgs() []string {
	return []string{"--challenge-ca", o.caPEM, "--challenge-dial", "*=" + o.addr}
}

func (o *storyOrigin) serve(path string, b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files[path] = b
}

// TestSquattingStory tells issue 11's squatting story through the real
// binary: a squatter who cannot serve the origin's challenge cannot
// register it; the owner, whose HTTPS origin (a local server with a test
// CA, reached through --challenge-ca and --challenge-dial) serves the
// challenge from `issuer challenge`, can; the squatter cannot take it
// over; a dry-run body, and statements made for another log, are
// refused; after the registration lapses the squatter still cannot
// reclaim it, and a new key that proves control can, which a watching
// monitor reports and `issuer status` shows.
func TestSquattingStory(t *testing.T) {
	dir := t.TempDir()
	const host = "issuer.squat.example"
	origin := "https://" + host
	web := startStoryOrigin(t, dir, host)
	initLog := func(name, logOrigin string) (string, string) {
		t.Helper()
		d := filepath.Join(dir, name)
		out, err := exec.Command(keycommitBin, "log", "init", "--data", d, "--origin", logOrigin).CombinedOutput()
		if err != nil {
			t.Fatalf("log init: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return d, lines[len(lines)-1]
	}
	logDir, vkey := initLog("log", "squat.example/log")
	serve := func(d string, offset time.Duration) *storyLog {
		t.Helper()
		cmd, url := startServe(t, keycommitBin, d, "--log-level", "warn", "--unsafe-clock-offset", offset.String(),
			"--challenge-ca", web.caPEM, "--challenge-dial", host+"="+web.addr)
		return &storyLog{cmd: cmd, url: strings.TrimSuffix(url, "/")}
	}
	var lg *storyLog
	run := func(args ...string) (string, int) { return runAgainst(lg, vkey, args...) }
	mustRun := func(args ...string) string { t.Helper(); return mustRunAgainst(t, lg, vkey, args...) }
	refused := func(rule string, want []string, args ...string) {
		t.Helper()
		out, code := run(args...)
		if code != exitRefused || !strings.Contains(out, "rule "+rule) {
			t.Fatalf("keycommit %s: exit %d, want %d naming rule %s\n%s", strings.Join(args, " "), code, exitRefused, rule, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("keycommit %s: the refusal does not say %q:\n%s", strings.Join(args, " "), w, out)
			}
		}
	}
	key := func(name string) string {
		f := filepath.Join(dir, name+".key")
		mustRun("issuer", "keygen", "--out", f)
		return f
	}
	serveChallenge := func(k string) {
		t.Helper()
		f := filepath.Join(dir, filepath.Base(k)+".challenge")
		out := mustRun("issuer", "challenge", "--key", k, "--origin", origin, "--out", f)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		path := lines[len(lines)-1]
		if !strings.HasPrefix(path, schema.ChallengePath) {
			t.Fatalf("the last line of issuer challenge is %q, not a path under the origin", path)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		web.serve(path, b)
	}
	register := func(k string, extra ...string) []string {
		return append([]string{"issuer", "register", "--key", k, "--origin", origin, "--contact", "mailto:keys@" + host}, extra...)
	}

	lg = serve(logDir, 0)
	squatter, owner := key("squatter"), key("owner")

	// The squatter cannot serve the challenge: refused, saying what the
	// log fetched and what it expected.
	refused("origin-control", []string{"the log fetched " + origin + schema.ChallengePath, "got status 404 Not Found", "want 200 with exactly", `keycommit-challenge/v1\nlog squat.example/log\norigin ` + origin},
		register(squatter)...)
	refused("origin-control", nil, register(squatter, "--dry-run")...)

	// The owner serves its challenge: admitted.
	serveChallenge(owner)
	mustRun(append(register(owner), "--dry-run")...)
	mustRun(register(owner)...)
	c := filepath.Join(dir, "c1.json")
	mustRun("issuer", "gen-commitment", "--id", "1", "--first-key", "10", "--lifetime", "2400h", "--out", c, "--keys-out", c+".keys")
	mustRun("issuer", "submit", "--key", owner, "--origin", origin, "--commitment", c)
	// Another spelling of the same origin names the same issuer.
	if out := mustRun("issuer", "status", "--origin", "HTTPS://Issuer.SQUAT.example:443/"); !strings.Contains(out, "origin control    proven at index 1") {
		t.Errorf("status does not show the proof of origin control:\n%s", out)
	}
	// The squatter cannot take the origin over while it is registered,
	// even serving a challenge of its own.
	serveChallenge(squatter)
	refused("signature", nil, register(squatter)...)

	// Replays. A dry-run body posted to /v1/submit:
	ctx := context.Background()
	ownerKey, err := issuer.ReadKeyFile(owner)
	if err != nil {
		t.Fatal(err)
	}
	st := statusOf(t, lg.url, origin)
	dry, err := issuer.SignDryRun(ownerKey, "squat.example/log", origin, st.Status.LastLeafHash, schema.KindRegistration,
		&schema.Registration{Contact: "mailto:keys@" + host, AccountKey: st.Status.AccountKey})
	if err != nil {
		t.Fatal(err)
	}
	postRefused(ctx, t, lg.url+"/v1/submit", dry, "log-binding", "signed for a dry run")
	// The owner's first registration and its commitment, replayed into
	// another log:
	entries := entriesOf(t, lg.url, 1, 3)
	otherDir, _ := initLog("other", "other.example/log")
	other := serve(otherDir, 0)
	for _, e := range entries {
		postRefused(ctx, t, other.url+"/v1/submit", e.Submission(), "log-binding", `is signed for log "squat.example/log", not for this log "other.example/log"`)
	}
	other.stop(t)

	// A monitor watches the origin.
	monData := filepath.Join(dir, "monitor")
	monitor := func() string {
		t.Helper()
		out, _ := exec.Command(keycommitBin, "monitor", "--once", "--log", lg.url, "--log-vkey", vkey, "--data", monData, "--watch", origin, "--log-level", "error").Output()
		return string(out)
	}
	if out := monitor(); strings.Contains(out, `"kind":"policy"`) {
		t.Fatalf("the monitor disagrees with the log's decisions:\n%s", out)
	}
	lg.stop(t)

	// 184 days later the registration has lapsed. The squatter, who can
	// no longer serve a challenge, cannot reclaim it; a new key whose
	// holder controls the origin can.
	lg = serve(logDir, 184*24*time.Hour)
	web.mu.Lock()
	for p := range web.files {
		delete(web.files, p)
	}
	web.mu.Unlock()
	refused("origin-control", []string{"needs proof of control of the origin", "got status 404"}, register(squatter)...)
	heir := key("heir")
	serveChallenge(heir)
	mustRun(register(heir)...)
	out := mustRun("issuer", "status", "--origin", origin)
	if !strings.Contains(out, "RECLAIMED         at index") || !strings.Contains(out, "key commitment    none yet") {
		t.Errorf("status does not show the reclaim:\n%s", out)
	}
	if out := monitor(); !strings.Contains(out, `"kind":"reclaim"`) || !strings.Contains(out, "was RECLAIMED at entry") || strings.Contains(out, `"kind":"policy"`) {
		t.Errorf("the watching monitor did not report the reclaim (or disagreed with the log):\n%s", out)
	}
	// The previous owner's key no longer signs for the origin.
	refused("signature", nil, "issuer", "submit", "--key", owner, "--origin", origin, "--commitment", c)
	lg.stop(t)
}

// statusOf fetches GET /v1/issuers/<origin>.
func statusOf(t *testing.T, url, origin string) *api.Issuer {
	t.Helper()
	var res api.Issuer
	getJSON(t, url+"/v1/issuers/"+strings.TrimPrefix(origin, "https://"), &res)
	return &res
}

// entriesOf fetches the entries [start, end) and parses them.
func entriesOf(t *testing.T, url string, start, end int) []*schema.Entry {
	t.Helper()
	var res api.Entries
	getJSON(t, fmt.Sprintf("%s/v1/entries?start=%d&end=%d", url, start, end), &res)
	var out []*schema.Entry
	for _, e := range res.Entries {
		pe, err := schema.ParseEntry(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if pe.Kind.IssuerSigned() {
			out = append(out, pe)
		}
	}
	return out
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %s\n%s", url, res.Status, b)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// postRefused posts sub and wants a 422 refusal by rule saying want.
func postRefused(ctx context.Context, t *testing.T, url string, sub *schema.Submission, rule, want string) {
	t.Helper()
	b, err := json.Marshal(sub)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e api.Error
	body, _ := io.ReadAll(res.Body)
	json.Unmarshal(body, &e)
	if res.StatusCode != http.StatusUnprocessableEntity || e.Rule != rule || !strings.Contains(e.Reason, want) {
		t.Errorf("POST %s of a %s statement: %s %s, want 422 by rule %s saying %q", url, sub.Kind, res.Status, body, rule, want)
	}
}
