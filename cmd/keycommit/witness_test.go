package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/keycommit/keycommit/witness"
)

// witBuild returns the real keycommit binary: the one TestMain built into a
// temporary directory, or a fresh build into t.TempDir().
func witBuild(t *testing.T) string {
	t.Helper()
	if keycommitBin != "" {
		return keycommitBin
	}
	bin := filepath.Join(t.TempDir(), "keycommit")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func witRun(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// witServe starts `keycommit witness serve` and returns it with its URL.
func witServe(t *testing.T, bin, dir string) (*exec.Cmd, string) {
	t.Helper()
	return witServeOn(t, bin, dir, "127.0.0.1:0")
}

// witServeOn is witServe listening on addr.
func witServeOn(t *testing.T, bin, dir, addr string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "witness", "serve", "--data", dir, "--listen", addr, "--log-level", "error")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("witness serve printed no URL: %v", err)
	}
	go io.Copy(io.Discard, stdout)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, strings.TrimSuffix(strings.TrimSpace(line), "/")
}

type witLog struct {
	origin string
	signer note.Signer
	vkey   string
	tree   *testonly.Tree
}

func newWitLog(t *testing.T, origin string, size int) *witLog {
	skey, vkey, err := note.GenerateKey(nil, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &witLog{origin: origin, signer: s, vkey: vkey, tree: testonly.New(rfc6962.DefaultHasher)}
	for i := 0; i < size; i++ {
		l.tree.AppendData([]byte(fmt.Sprintf("leaf %d", i)))
	}
	return l
}

func (l *witLog) body(t *testing.T, old, size uint64) []byte {
	text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, size, base64.StdEncoding.EncodeToString(l.tree.HashAt(size)))
	cp, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		t.Error(err)
		return nil
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	if old > 0 && old < size {
		p, err := l.tree.ConsistencyProof(old, size)
		if err != nil {
			t.Error(err)
			return nil
		}
		for _, h := range p {
			b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
		}
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

// witSize reads the witness's latest cosigned size for l through the
// monitoring read (0 if it has cosigned nothing), checking the cosignature.
func witSize(t *testing.T, url, wvkey string, l *witLog) uint64 {
	t.Helper()
	resp, err := http.Get(url + "/" + witness.OriginID(l.origin) + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 404 {
		return 0
	}
	wv, _ := fnote.NewVerifierForCosignatureV1(wvkey)
	lv, _ := note.NewVerifier(l.vkey)
	n, err := note.Open(b, note.VerifierList(wv, lv))
	if resp.StatusCode != 200 || err != nil || len(n.Sigs) != 2 {
		t.Fatalf("monitoring read: %d %v %s", resp.StatusCode, err, b)
	}
	size, err := strconv.ParseUint(strings.Split(n.Text, "\n")[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if n.Text != fmt.Sprintf("%s\n%d\n%s\n", l.origin, size, base64.StdEncoding.EncodeToString(l.tree.HashAt(size))) {
		t.Fatalf("monitoring read holds a checkpoint that is not the log's: %q", n.Text)
	}
	return size
}

// TestWitnessCLI runs init, add-log, list-logs and serve through the binary.
func TestWitnessCLI(t *testing.T) {
	bin := witBuild(t)
	dir := filepath.Join(t.TempDir(), "w")
	out, err := witRun(t, bin, "witness", "init", "--data", dir, "--name", "witness.test/cli")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	vkey := lines[len(lines)-1]
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil || v.Name() != "witness.test/cli" {
		t.Fatalf("init's last line %q is not the witness's vkey: %v", vkey, err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2])
	if raw[0] != 0x04 {
		t.Errorf("vkey type 0x%02x, want 0x04", raw[0])
	}
	if fi, err := os.Stat(filepath.Join(dir, witness.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if out, err := witRun(t, bin, "witness", "init", "--data", dir, "--name", "again"); err == nil {
		t.Errorf("second init succeeded:\n%s", out)
	}
	if out, err := witRun(t, bin, "witness", "serve", "--data", t.TempDir()); err == nil || !strings.Contains(out, "init") {
		t.Errorf("serve without init: %v\n%s", err, out)
	}

	l := newWitLog(t, "example.com/cli-log", 20)
	if out, err := witRun(t, bin, "witness", "add-log", "--data", dir, "--origin", l.origin, "--vkey", l.vkey); err != nil {
		t.Fatalf("add-log: %v\n%s", err, out)
	}
	if out, err := witRun(t, bin, "witness", "add-log", "--data", dir, "--origin", "x", "--vkey", "garbage"); err == nil {
		t.Errorf("add-log with a bad key succeeded:\n%s", out)
	}

	cmd, url := witServe(t, bin, dir)
	resp, err := http.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(l.body(t, 0, 12)))
	if err != nil {
		t.Fatal(err)
	}
	cosig, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("add-checkpoint: %d %s", resp.StatusCode, cosig)
	}
	cp := l.body(t, 0, 12)[len("old 0\n\n"):]
	if _, err := note.Open(append(cp, cosig...), note.VerifierList(v)); err != nil {
		t.Fatalf("cosignature from the served witness does not verify: %v", err)
	}
	for _, path := range []string{"/metrics", "/evidence", "/" + witness.OriginID(l.origin) + "/checkpoint"} {
		r, err := http.Get(url + path)
		if err != nil || r.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", path, r.StatusCode, err)
		}
		r.Body.Close()
	}
	// Graceful shutdown on SIGTERM.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}

	out, err = witRun(t, bin, "witness", "list-logs", "--data", dir)
	if err != nil || !strings.Contains(out, l.origin) || !strings.Contains(out, " 12 ") || !strings.Contains(out, l.vkey) {
		t.Errorf("list-logs: %v\n%s", err, out)
	}
}

// TestWitnessSIGKILL kills the real binary with SIGKILL in the middle of a
// burst of add-checkpoint requests, three times, and checks after each
// restart that the witness's size is at least every size it acknowledged.
// A start barrier (start) releases the eight posters of each burst
// together. Mutation: release the cosignature before the state update is
// committed (return cosig from AddCheckpoint without waiting for w.wait):
// after a kill the witness's size is below an acknowledged one ("witness
// size … after restart, but … was acknowledged").
func TestWitnessSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	bin := witBuild(t)
	dir := filepath.Join(t.TempDir(), "w")
	out, err := witRun(t, bin, "witness", "init", "--data", dir, "--name", "witness.test/kill")
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	wvkey := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	logs := []*witLog{newWitLog(t, "example.com/kill-a", 3000), newWitLog(t, "example.com/kill-b", 3000)}
	for _, l := range logs {
		if out, err := witRun(t, bin, "witness", "add-log", "--data", dir, "--origin", l.origin, "--vkey", l.vkey); err != nil {
			t.Fatalf("add-log: %v\n%s", err, out)
		}
	}
	acked := make([]atomic.Uint64, len(logs)) // largest size acknowledged with 200
	next := make([]atomic.Uint64, len(logs))  // next size to submit

	for cycle := 0; cycle < 3; cycle++ {
		cmd, url := witServe(t, bin, dir)
		for i, l := range logs {
			if got := witSize(t, url, wvkey, l); got < acked[i].Load() {
				t.Fatalf("cycle %d, %s: witness size %d after restart, but %d was acknowledged", cycle, l.origin, got, acked[i].Load())
			} else {
				t.Logf("cycle %d, %s: size %d after restart (acknowledged %d)", cycle, l.origin, got, acked[i].Load())
			}
		}

		client := &http.Client{}
		var total atomic.Int64
		killed := make(chan struct{})
		var killOnce sync.Once
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				i := g % len(logs)
				l := logs[i]
				old := acked[i].Load()
				for {
					size := next[i].Add(1)
					if size >= l.tree.Size() {
						return
					}
					for attempt := 0; attempt < 50; attempt++ {
						resp, err := client.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(l.body(t, old, size)))
						if err != nil {
							return // killed
						}
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode == 200 {
							for {
								cur := acked[i].Load()
								if size <= cur || acked[i].CompareAndSwap(cur, size) {
									break
								}
							}
							if total.Add(1) == 150 {
								killOnce.Do(func() {
									cmd.Process.Signal(syscall.SIGKILL)
									close(killed)
								})
							}
							old = size
							break
						}
						if resp.StatusCode != 409 {
							select {
							case <-killed:
							default:
								t.Errorf("%s size %d: status %d %s", l.origin, size, resp.StatusCode, b)
							}
							return
						}
						n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
						old = n
						if n >= size {
							break // overtaken
						}
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		select {
		case <-killed:
		default:
			t.Fatalf("cycle %d: burst ended before the kill", cycle)
		}
		cmd.Wait()
	}
	cmd, url := witServe(t, bin, dir)
	defer cmd.Process.Signal(syscall.SIGTERM)
	for i, l := range logs {
		if got := witSize(t, url, wvkey, l); got < acked[i].Load() {
			t.Fatalf("final: %s size %d, but %d was acknowledged", l.origin, got, acked[i].Load())
		}
		// And the add-checkpoint path agrees: old must be at least that.
		resp, err := http.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(l.body(t, 0, l.tree.Size())))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if resp.StatusCode != 409 || n < acked[i].Load() {
			t.Errorf("final: add-checkpoint from 0 answered %d %q, want 409 with at least %d", resp.StatusCode, b, acked[i].Load())
		}
	}
}
