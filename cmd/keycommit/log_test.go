package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"golang.org/x/mod/sumdb/tlog"
)

// buildBinary returns the real keycommit binary TestMain built.
func buildBinary(t *testing.T) string {
	t.Helper()
	return keycommitBin
}

// startServe runs `log serve` (with extra flags) and returns the process and its URL.
func startServe(t *testing.T, bin, dir string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"log", "serve", "--data", dir, "--listen", "127.0.0.1:0"}, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("log serve printed no URL: %v\n%s", err, stderr.String())
	}
	return cmd, strings.TrimSpace(line)
}

func TestLogInitRefusesOverwrite(t *testing.T) {
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "log")
	out, err := exec.Command(bin, "log", "init", "--data", dir, "--origin", "keycommit.example/log/test").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	vkey := lines[len(lines)-1]
	if _, err := checkpoint.NewVerifier(vkey); err != nil {
		t.Fatalf("last line %q is not a vkey: %v", vkey, err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, checkpoint.PrivateKeyFile))
	if err := exec.Command(bin, "log", "init", "--data", dir, "--origin", "keycommit.example/log/test").Run(); err == nil {
		t.Fatal("second log init succeeded")
	}
	after, _ := os.ReadFile(filepath.Join(dir, checkpoint.PrivateKeyFile))
	if !bytes.Equal(before, after) {
		t.Fatal("second log init changed the key")
	}
	if err := exec.Command(bin, "log", "serve", "--data", filepath.Join(t.TempDir(), "missing"), "--listen", "127.0.0.1:0").Run(); err == nil {
		t.Fatal("log serve of a missing log succeeded")
	}
}

// TestCrashRecovery kills `log serve` with SIGKILL while clients stream
// submissions, restarts it, and checks that every acknowledged entry is
// there and the next checkpoint is consistent with every checkpoint
// published before. A start barrier (start) releases the eight submitters
// together. Mutation: answer a submission once its batch is admitted,
// before the persisting goroutine's Append returns (the sequencer's
// Result sent ahead of persist): after the SIGKILL an acknowledged entry
// is missing ("acknowledged entry N: …").
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ctx := context.Background()
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "log")
	out, err := exec.Command(bin, "log", "init", "--data", dir, "--origin", "keycommit.example/log/test").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	vkey := lines[len(lines)-1]

	web := startStoryOrigin(t, t.TempDir(), "*.example")
	proc, url := startServe(t, bin, dir, web.serveArgs()...)
	c, err := client.New(url, vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	type ack struct {
		index uint64
		entry []byte
	}
	var mu sync.Mutex
	var acks []ack
	var cps []checkpoint.Checkpoint
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	start := make(chan struct{})
	const workers = 8
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; ; i++ {
				is := issuertest.Numbered(t, w*100000+i)
				web.serveChallenge(is)
				r, err := c.Submit(ctx, is.Register(t))
				if err != nil {
					select {
					case <-killed:
						return // expected: the server is gone
					default:
						t.Errorf("submit before the kill: %v", err)
						return
					}
				}
				mu.Lock()
				acks = append(acks, ack{r.Index, r.Entry})
				cps = append(cps, r.Parsed)
				n := len(acks)
				mu.Unlock()
				if n >= 300 {
					once.Do(func() {
						// Kill while the other workers are mid-submission.
						proc.Process.Signal(syscall.SIGKILL)
						close(killed)
					})
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	proc.Wait()
	if t.Failed() {
		return
	}

	_, url = startServe(t, bin, dir, web.serveArgs()...)
	c, err = client.New(url, vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	// One more entry, for a fresh checkpoint.
	is := issuertest.New(t, "https://after-crash.example")
	web.serveChallenge(is)
	r, err := c.Submit(ctx, is.Register(t))
	if err != nil {
		t.Fatalf("submit after restart: %v", err)
	}
	latest := r.Parsed
	for _, a := range acks {
		es, err := c.Entries(ctx, a.index, a.index+1)
		if err != nil {
			t.Fatalf("acknowledged entry %d: %v", a.index, err)
		}
		if !bytes.Equal(es[0].Data, a.entry) {
			t.Fatalf("acknowledged entry %d differs after restart", a.index)
		}
		if _, err := c.InclusionProof(ctx, latest, a.index); err != nil {
			t.Fatalf("acknowledged entry %d: %v", a.index, err)
		}
	}
	thr := tlog.TileHashReader(tlog.Tree{N: int64(latest.Size), Hash: latest.Hash}, c.TileReader(ctx))
	for _, old := range cps {
		if err := c.ConsistencyProof(ctx, old, latest); err != nil {
			t.Fatalf("checkpoint %d before the crash: %v", old.Size, err)
		}
		p, err := tlog.ProveTree(int64(latest.Size), int64(old.Size), thr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(p, int64(latest.Size), latest.Hash, int64(old.Size), old.Hash); err != nil {
			t.Fatalf("tiles: checkpoint %d before the crash: %v", old.Size, err)
		}
	}
	t.Logf("%d acknowledged before SIGKILL; tree size after restart %d", len(acks), latest.Size)
}
