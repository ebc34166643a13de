// Package durable publishes files so that a crash never leaves a half
// written one and a file that was published stays published: the data is
// written and fsynced, and after the file appears under its name (by
// exclusive creation or by a rename) its directory is fsynced too, so the
// directory entry is on disk. It is the one copy of "create, write,
// fsync, rename, fsync the directory" for the log, the witness, the
// monitor and the command line. Standard library only.
package durable

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteNew writes b to a new file at path with mode perm (0600 for
// secrets) and makes it durable. It never overwrites: for an existing
// path errors.Is(err, os.ErrExist). A failure to create the file is
// os.OpenFile's *os.PathError (Op "open"); after a later failure the file
// is removed.
func WriteNew(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	err = writeSync(f, b)
	if err == nil {
		err = SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// Replace writes b to path with mode perm through a temporary file in the
// same directory and a rename, so readers see the old content or the new,
// never a mix; then it fsyncs the directory.
func Replace(path string, b []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := func() error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return err
		}
		return writeSync(f, b)
	}(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	if err := Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	return nil
}

// Rename renames oldpath to newpath (in one directory) and fsyncs the
// directory. The file itself must already be durable.
func Rename(oldpath, newpath string) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(newpath))
}

// MkdirAll is os.MkdirAll that makes every directory it creates durable:
// each new directory's parent is fsynced after the directory appears, so
// that files published inside it later cannot vanish with it in a crash.
func MkdirAll(path string, perm os.FileMode) error {
	path = filepath.Clean(path)
	var created []string
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		} else if !os.IsNotExist(err) {
			return err
		}
		created = append(created, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := os.MkdirAll(path, perm); err != nil {
		return err
	}
	for i := len(created) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Dir(created[i])); err != nil {
			return err
		}
	}
	return nil
}

// syncDir is SyncDir; tests record the directories MkdirAll syncs.
var syncDir = SyncDir

// SyncDir fsyncs directory dir, making the names created, renamed or
// removed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("couldn't open directory %s to sync it: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("couldn't sync directory %s: %w", dir, err)
	}
	return nil
}

// ReadPrivate reads a secret file, refusing one that group or others can
// read (what names the file in the error; the content is never shown).
func ReadPrivate(path, what string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read %s: %w", what, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %v: it must not be readable by group or others (chmod 600)", what, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read %s: %w", what, err)
	}
	return b, nil
}

func writeSync(f *os.File, b []byte) error {
	_, err := f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
