package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// keycommitBin is the real binary, built once for the package's tests.
var keycommitBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keycommit-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keycommitBin = filepath.Join(dir, "keycommit")
	if out, err := exec.Command("go", "build", "-o", keycommitBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "couldn't build keycommit: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
