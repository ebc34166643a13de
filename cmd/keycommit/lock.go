package main

// Every long-running command (log serve, dev, witness serve, monitor)
// holds an exclusive lock on its data directory while it runs: DIR/lockFile,
// locked with flock(2) and holding the holder's PID. A second instance on
// the same directory refuses to start, naming the first one's PID, before
// it reads or writes any state. The lock goes away with the process (also
// on kill -9); the file stays, and is only read while the lock is held
// elsewhere.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile is the lock file in a data directory.
const lockFile = "keycommit.lock"

// errLocked is returned, wrapped, when another process holds the lock.
var errLocked = errors.New("data directory is in use")

// lockDir takes the exclusive lock on dir, which must exist, for the
// command what, and returns the function that releases it.
func lockDir(dir, what string) (func(), error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("%s: no data directory %s: %w", what, dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s: %s is not a directory", what, dir)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("couldn't open the lock file: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("couldn't lock %s: %w", path, err)
	}
	if !held {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := "another process"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			holder = fmt.Sprintf("another keycommit process (PID %d)", pid)
		}
		return nil, fmt.Errorf("refusing to start %s: %w: %s holds the lock %s; stop it first, or use another directory", what, errLocked, holder, path)
	}
	// Only the holder writes the file.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { unlock(f); f.Close() }, nil
}
