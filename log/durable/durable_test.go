package durable

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteNewReplaceRename(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := WriteNew(p, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if err := WriteNew(p, []byte("other\n"), 0o600); !errors.Is(err, os.ErrExist) {
		t.Errorf("WriteNew over an existing file: %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "secret\n" {
		t.Errorf("WriteNew changed an existing file: %q", b)
	}
	if b, err := ReadPrivate(p, "key file"); err != nil || string(b) != "secret\n" {
		t.Errorf("ReadPrivate = %q, %v", b, err)
	}
	os.Chmod(p, 0o640)
	if _, err := ReadPrivate(p, "key file"); err == nil {
		t.Error("ReadPrivate read a group-readable key")
	}

	c := filepath.Join(dir, "config.json")
	for _, v := range []string{"one", "two"} {
		if err := Replace(c, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(c); string(b) != v {
			t.Errorf("after Replace(%q) the file holds %q", v, b)
		}
	}
	if _, err := os.Stat(c + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Replace left its temporary file: %v", err)
	}
	if err := Rename(c, filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("SyncDir of a missing directory succeeded")
	}
	// A file that cannot be created is the open error.
	var pe *os.PathError
	if err := WriteNew(filepath.Join(dir, "missing", "f"), nil, 0o600); !errors.As(err, &pe) || pe.Op != "open" {
		t.Errorf("WriteNew in a missing directory: %v", err)
	}
}

// TestMkdirAll: the directories MkdirAll creates are made durable, each
// by an fsync of its parent, outermost first; an existing directory is
// left alone (no sync); a path through a file fails. (Drop the sync loop
// and nothing is synced.)
func TestMkdirAll(t *testing.T) {
	var synced []string
	syncDir = func(dir string) error { synced = append(synced, dir); return SyncDir(dir) }
	t.Cleanup(func() { syncDir = SyncDir })
	root := t.TempDir()
	p := filepath.Join(root, "a", "b", "c")
	if err := MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v %v", p, fi, err)
	}
	want := []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b")}
	if len(synced) != len(want) {
		t.Fatalf("synced %v, want %v", synced, want)
	}
	for i := range want {
		if synced[i] != want[i] {
			t.Fatalf("synced %v, want %v", synced, want)
		}
	}
	synced = nil
	if err := MkdirAll(p, 0o700); err != nil || len(synced) != 0 {
		t.Errorf("MkdirAll of an existing directory: %v, synced %v", err, synced)
	}
	f := filepath.Join(root, "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(filepath.Join(f, "d"), 0o700); err == nil {
		t.Error("MkdirAll through a file succeeded")
	}
}
