package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogBackupRestore follows docs/operating.md: back up a serving log
// with `log backup`, restore the file as log.db beside the key files, serve
// it: the same checkpoint, byte for byte. The backup refuses to overwrite.
func TestLogBackupRestore(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	out, _, code := runBin(t, keycommitBin, "log", "init", "--data", logDir, "--origin", "keycommit.example/log/backup")
	if code != 0 {
		t.Fatalf("log init: %s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	vkey := lines[len(lines)-1]
	web := startStoryOrigin(t, dir, "backup.example")
	srv, url := startServe(t, keycommitBin, logDir, web.serveArgs()...)
	key := filepath.Join(dir, "issuer.key")
	if out, errOut, code := runBin(t, keycommitBin, "issuer", "keygen", "--out", key); code != 0 {
		t.Fatalf("keygen: %s%s", out, errOut)
	}
	web.serveChallengeFor(t, "keycommit.example/log/backup", "https://backup.example", key)
	if out, errOut, code := runBin(t, keycommitBin, "issuer", "register", "--log", url, "--log-vkey", vkey, "--origin", "https://backup.example", "--contact", "mailto:a@backup.example", "--key", key); code != 0 {
		t.Fatalf("register: %s%s", out, errOut)
	}
	want := getBody(t, url+"/checkpoint")
	backup := filepath.Join(dir, "log-backup.db")
	if out, errOut, code := runBin(t, keycommitBin, "log", "backup", "--data", logDir, "--out", backup); code != 0 || !strings.Contains(out, "tree size 2") {
		t.Fatalf("log backup while serving: exit %d\n%s%s", code, out, errOut)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if _, errOut, code := runBin(t, keycommitBin, "log", "backup", "--data", logDir, "--out", backup); code == 0 || !strings.Contains(errOut, "refusing to overwrite") {
		t.Errorf("second backup to the same file: exit %d %s", code, errOut)
	}
	srv.Process.Kill()
	srv.Wait()

	// Restore on another machine: the key files (kept apart) and the backup.
	restored := filepath.Join(dir, "restored")
	os.MkdirAll(restored, 0o700)
	for _, f := range []string{"log.key", "log.vkey"} {
		copyFile(t, filepath.Join(logDir, f), filepath.Join(restored, f))
	}
	copyFile(t, backup, filepath.Join(restored, logDBFile))
	_, url2 := startServe(t, keycommitBin, restored)
	if got := getBody(t, url2+"/checkpoint"); !bytes.Equal(got, want) {
		t.Errorf("restored log serves\n%s\nthe backed-up one served\n%s", got, want)
	}
	if out, errOut, code := runBin(t, keycommitBin, "issuer", "status", "--log", url2, "--log-vkey", vkey, "--origin", "backup.example"); code != 0 {
		t.Errorf("issuer status on the restored log: %s%s", out, errOut)
	}
}

func getBody(t *testing.T, url string) []byte {
	t.Helper()
	for i := 0; ; i++ {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return b
			}
			err = &os.PathError{Op: "GET", Path: url, Err: os.ErrInvalid}
		}
		if i == 50 {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
