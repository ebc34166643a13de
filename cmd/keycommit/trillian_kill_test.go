package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/tiles"
	"github.com/keycommit/keycommit/log/trillianstore/trilliantest"
	"golang.org/x/mod/sumdb/tlog"
)

// TestTrillianWriterSIGKILLTenTimes runs three `keycommit log serve
// --storage trillian` processes over one tree and a stream of
// submissions spread over them (a client whose frontend fails tries
// another, as behind a load balancer), and kills the writer's process
// with SIGKILL ten times, each time starting a new process on its data
// directory. Every acknowledged entry is in the final log at its index,
// the log goes on through the others, and every checkpoint a client was
// answered with is consistent with the final one. The clients start
// together (start barrier). Mutation (named, not tried): answer a
// submission before its batch's transaction commits, and an
// acknowledged entry of a killed writer is missing.
func TestTrillianWriterSIGKILLTenTimes(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.Options{})
	dir := t.TempDir()
	const clients = 4
	var hosts []string
	for i := range clients {
		hosts = append(hosts, fmt.Sprintf("issuer%d.example", i))
	}
	web := startStoryOrigin(t, dir, hosts...)
	fe := func(i int) string { return filepath.Join(dir, fmt.Sprintf("fe%d", i)) }
	out, err := exec.Command(keycommitBin, "log", "init", "--storage", "trillian", "--trillian", env.RPCAddr, "--trillian-mysql", env.MySQLURI,
		"--data", fe(0), "--origin", issuertest.DefaultLog).CombinedOutput()
	if err != nil {
		t.Fatalf("log init: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	vkey := lines[len(lines)-1]
	for i := 1; i < 3; i++ {
		if err := os.MkdirAll(fe(i), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"log.key", "log.vkey", trillianConfigFile} {
			b, err := os.ReadFile(filepath.Join(fe(0), f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(fe(i), f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	type proc struct {
		cmd *exec.Cmd
		url string
		c   *client.Client
	}
	start := func(i int) *proc {
		cmd, url := startServe(t, keycommitBin, fe(i), append([]string{"--storage", "trillian", "--trillian-lease", "500ms", "--log-level", "error"}, web.serveArgs()...)...)
		url = strings.TrimSuffix(url, "/")
		c, err := client.New(url, vkey, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &proc{cmd, url, c}
	}
	var mu sync.Mutex
	procs := []*proc{start(0), start(1), start(2)}
	pick := func() *proc {
		mu.Lock()
		defer mu.Unlock()
		return procs[rand.IntN(len(procs))]
	}
	type ack struct {
		idx  uint64
		leaf []byte
		cp   []byte
		at   time.Time
	}
	var acks []ack
	stop := make(chan struct{})
	barrier := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		is := issuertest.Numbered(t, c)
		web.serveChallenge(is)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-barrier
			for {
				select {
				case <-stop:
					return
				default:
				}
				sub := is.Register(t)
				for {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					res, err := pick().c.Submit(ctx, sub)
					cancel()
					if re, ok := client.Reject(err); ok {
						t.Errorf("client %d: refused: %v", c, re)
						return
					}
					if err != nil {
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
						continue
					}
					is.Logged(tlog.Hash(res.LeafHash))
					mu.Lock()
					acks = append(acks, ack{res.Index, res.LeafHash, []byte(res.Checkpoint), time.Now()})
					mu.Unlock()
					break
				}
			}
		}()
	}
	close(barrier)
	waitUntil := func(what string, cond func() error) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			err := cond()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				close(stop)
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	writer := func() int {
		w := -1
		waitUntil("a writer", func() error {
			mu.Lock()
			defer mu.Unlock()
			for i, p := range procs {
				m, err := readmeGet(p.url + "/metrics")
				if err == nil && strings.Contains(m, "\nkeycommit_trillian_writer 1\n") {
					w = i
					return nil
				}
			}
			return errors.New("no frontend says it is the writer")
		})
		return w
	}
	var failovers []time.Duration
	for round := range 10 {
		mu.Lock()
		before := len(acks)
		mu.Unlock()
		waitUntil(fmt.Sprintf("round %d: submissions acknowledged", round), func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(acks) < before+clients {
				return fmt.Errorf("%d acknowledgements", len(acks)-before)
			}
			return nil
		})
		w := writer()
		mu.Lock()
		dead := procs[w]
		mu.Unlock()
		killedAt := time.Now()
		dead.cmd.Process.Kill() // SIGKILL
		dead.cmd.Wait()
		mu.Lock()
		n := len(acks)
		mu.Unlock()
		replacement := start(w)
		mu.Lock()
		procs[w] = replacement
		mu.Unlock()
		waitUntil(fmt.Sprintf("round %d: an acknowledgement after the kill", round), func() error {
			mu.Lock()
			defer mu.Unlock()
			for _, a := range acks[n:] {
				if a.at.After(killedAt) {
					failovers = append(failovers, a.at.Sub(killedAt))
					return nil
				}
			}
			return errors.New("none yet")
		})
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("kill to the next acknowledgement (includes starting the replacement): %v", failovers)
	ctx := context.Background()
	c := pick().c
	var finalNote []byte
	waitUntil("a final checkpoint covering every acknowledgement", func() error {
		cp, note, err := c.Checkpoint(ctx)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, a := range acks {
			if a.idx >= cp.Size {
				return fmt.Errorf("entry %d beyond size %d", a.idx, cp.Size)
			}
		}
		finalNote = note
		return nil
	})
	fc, err := c.OpenCheckpoint(finalNote)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acks {
		es, err := c.Entries(ctx, a.idx, a.idx+1)
		if err != nil {
			t.Fatal(err)
		}
		if h := tiles.LeafHash(es[0].Data); string(h[:]) != string(a.leaf) {
			t.Fatalf("acknowledged entry %d is not in the final log", a.idx)
		}
		cp, err := c.OpenCheckpoint(a.cp)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size < fc.Size {
			if err := c.ConsistencyProof(ctx, cp, fc); err != nil {
				t.Fatalf("checkpoint of size %d a client saw is not consistent with the final one of size %d: %v", cp.Size, fc.Size, err)
			}
		}
	}
	t.Logf("%d acknowledged entries, final size %d", len(acks), fc.Size)
}
