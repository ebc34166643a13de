package keysetroot_test

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/keysetroot"
	"github.com/keycommit/keycommit/schema"
)

// docVector is the test vector of docs/entries.md ("Key set root"): a key
// set of two pst members and one privacy_pass member (three leaves, not a
// power of two).
const docVector = `{"pst":{"https://a.example":null,"https://c.example":null},"privacy_pass":{"https://b.example":{"issuer-request-uri":"https://b.example/token","token-keys":null}}}`

// TestDocVector computes the vector's leaf hashes and root and checks that
// docs/entries.md states exactly these (and the empty key set's root), and
// that the vector is a canonical key set whose schema.KeySet.Root is that
// root.
func TestDocVector(t *testing.T) {
	ks, err := schema.ParseKeySet([]byte(docVector))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var leaves []keysetroot.Hash
	if err := keysetroot.Split([]byte(docVector), func(part string, m []byte) {
		h := keysetroot.LeafHash(part, m)
		leaves = append(leaves, h)
		lines = append(lines, "leaf "+part+" "+string(m)+" "+hex.EncodeToString(h[:]))
	}); err != nil {
		t.Fatal(err)
	}
	root := keysetroot.New(leaves).Root()
	if r, err := ks.Root(); err != nil || string(r) != string(root[:]) {
		t.Fatalf("schema.KeySet.Root = %x, %v; want %x", r, err, root)
	}
	empty := keysetroot.New(nil).Root()
	lines = append([]string{"key set " + docVector}, lines...)
	lines = append(lines, "root "+hex.EncodeToString(root[:])+" (base64 "+base64.StdEncoding.EncodeToString(root[:])+")",
		"empty key set root "+hex.EncodeToString(empty[:]))
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "entries.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if !strings.Contains(string(doc), l+"\n") {
			t.Errorf("docs/entries.md does not have the line\n%s", l)
		}
	}
}
