package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/trillianstore/trilliantest"
)

// readmeTrillianBlock returns the sh block of the README's section
// "Scale out: Trillian on MariaDB".
func readmeTrillianBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "### Scale out: Trillian on MariaDB")
	if i < 0 {
		t.Fatal("README has no section \"Scale out: Trillian on MariaDB\"")
	}
	s = s[i:]
	start := strings.Index(s, "```sh\n")
	if start < 0 {
		t.Fatal("the README's Trillian section has no sh block")
	}
	s = s[start+len("```sh\n"):]
	end := strings.Index(s, "```")
	if end < 0 {
		t.Fatal("the README's Trillian sh block is not closed")
	}
	return s[:end]
}

// TestREADMETrillian runs the README's Trillian walk-through as written
// (MariaDB database keycommit_demo, the Trillian server and signer, log
// init, two frontends on 127.0.0.1:7381 and :7382), from a temporary
// directory with the keycommit binary on PATH, and checks that both
// frontends serve the same signed checkpoint and that one of them is the
// writer; then it kills the writer's process with SIGKILL and checks that
// the other takes over. It drops the database before and after.
func TestREADMETrillian(t *testing.T) {
	db := trilliantest.RequireMariaDB(t)
	if _, _, err := trilliantest.Binaries(); err != nil {
		t.Fatal(err)
	}
	drop := func() { db.Exec("DROP DATABASE IF EXISTS keycommit_demo") }
	drop()
	t.Cleanup(drop)
	block := readmeTrillianBlock(t)
	dir := t.TempDir()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, ".ci"), filepath.Join(dir, ".ci")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-e", "-c", block+"\nwait\n")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(keycommitBin)+":"+os.Getenv("PATH"))
	out, err := os.Create(filepath.Join(dir, "walkthrough.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	logs := func() string { b, _ := os.ReadFile(out.Name()); return string(b) }
	fes := []string{"http://127.0.0.1:7381", "http://127.0.0.1:7382"}
	waitFor := func(what string, cond func() error) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			err := cond()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v\n%s", what, err, logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("both frontends serve the same checkpoint", func() error {
		a, err := readmeGet(fes[0] + "/checkpoint")
		if err != nil {
			return err
		}
		b, err := readmeGet(fes[1] + "/checkpoint")
		if err != nil {
			return err
		}
		if a != b {
			return fmt.Errorf("checkpoints differ:\n%s\n%s", a, b)
		}
		if !strings.HasPrefix(a, "keycommit.example/log/demo\n1\n") {
			return fmt.Errorf("checkpoint %q is not the demo log's of size 1", a)
		}
		return nil
	})
	writer := -1
	waitFor("exactly one frontend is the writer", func() error {
		writer = -1
		for i, u := range fes {
			m, err := readmeGet(u + "/metrics")
			if err != nil {
				return err
			}
			if strings.Contains(m, "\nkeycommit_trillian_writer 1\n") {
				if writer >= 0 {
					return fmt.Errorf("frontends %d and %d both say they are the writer", writer, i)
				}
				writer = i
			}
		}
		if writer < 0 {
			return fmt.Errorf("no frontend is the writer")
		}
		return nil
	})
	pid := listenerPID(t, cmd.Process.Pid, fes[writer][len("http://"):])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	other := fes[1-writer]
	waitFor("the other frontend takes over", func() error {
		m, err := readmeGet(other + "/metrics")
		if err != nil {
			return err
		}
		if !strings.Contains(m, "\nkeycommit_trillian_writer 1\n") {
			return fmt.Errorf("not the writer yet")
		}
		return nil
	})
	if _, err := readmeGet(other + "/checkpoint"); err != nil {
		t.Fatal(err)
	}
}

func readmeGet(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b), nil
}

// listenerPID finds, among the processes of the process group pgid, the
// keycommit log serve listening on addr (by its --listen argument).
func listenerPID(t *testing.T, pgid int, addr string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err != nil || g != pgid {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 2 && filepath.Base(args[0]) == "keycommit" && args[1] == "log" && args[2] == "serve" && strings.Contains(string(b), "--listen\x00"+addr+"\x00") {
			return pid
		}
	}
	t.Fatalf("no keycommit log serve on %s in process group %d", addr, pgid)
	return 0
}
