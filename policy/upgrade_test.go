package policy_test

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// upgradeDir holds a log made before entry format 2 (see its README).
var upgradeDir = filepath.Join("..", "testdata", "upgrade", "v1")

// upgradeEntries returns the fixture's entries, checked against its
// signed checkpoint (signature and root).
func upgradeEntries(t *testing.T) (string, [][]byte) {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(upgradeDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v, err := checkpoint.NewVerifier(strings.TrimSpace(string(read("log.vkey"))))
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := checkpoint.Open(read("checkpoint"), v)
	if err != nil {
		t.Fatalf("the fixture's checkpoint does not verify: %v", err)
	}
	var es [][]byte
	for b := read("entries.bundle"); len(b) > 0; {
		n := int(b[0])<<8 | int(b[1])
		es, b = append(es, b[2:2+n]), b[2+n:]
	}
	if uint64(len(es)) != cp.Size {
		t.Fatalf("%d entries for a checkpoint of size %d", len(es), cp.Size)
	}
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for j, x := range idx {
			out[j] = hashes[x]
		}
		return out, nil
	})
	for i, e := range es {
		hs, err := tlog.StoredHashes(int64(i), e, hr)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(int64(len(es)), hr)
	if err != nil || root != cp.Hash {
		t.Fatalf("the fixture's entries give root %x, the checkpoint says %x (%v)", root, cp.Hash, err)
	}
	return v.Name(), es
}

// TestUpgradeLegacyLog: every entry of a log made before entry format 2
// still parses canonically and is admitted again by the policy (legacy
// signatures, first registrations without proof of control); the log
// then continues with version 2 entries, after which a legacy entry is
// refused.
func TestUpgradeLegacyLog(t *testing.T) {
	logName, es := upgradeEntries(t)
	st := policy.NewLogState(logName)
	for i, b := range es {
		e, err := schema.ParseEntry(b)
		if err != nil {
			t.Fatalf("legacy entry %d does not parse: %v", i, err)
		}
		if e.V != schema.VersionLegacy {
			t.Fatalf("fixture entry %d has version %d", i, e.V)
		}
		if d := policy.Evaluate(st, e, st.Size()); !d.Accept {
			t.Fatalf("legacy entry %d refused: %v", i, d.Err())
		}
		if err := st.Apply(e, st.Size(), tlog.RecordHash(b)); err != nil {
			t.Fatal(err)
		}
	}
	const origin = "https://issuer.upgrade.example"
	is, ok := st.Issuer(origin)
	if !ok || is.Control != nil {
		t.Fatalf("the legacy issuer: %+v", is)
	}
	// The issuer renews with its key, now signing for the log.
	kb, err := os.ReadFile(filepath.Join(upgradeDir, "issuer.key"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(kb)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key := k.(ed25519.PrivateKey)
	body, _ := schema.CanonicalizeBody(schema.KindRegistration, &schema.Registration{Contact: is.Contact, AccountKey: is.AccountKey})
	renew := func(log string) *schema.Entry {
		sub, err := schema.Sign(schema.Statement{Kind: schema.KindRegistration, Log: log, Issuer: origin, Prev: is.LastLeafHash[:], Body: body}, key)
		if err != nil {
			t.Fatal(err)
		}
		return schema.NewEntry(sub, is.LastTime+1000)
	}
	if d := policy.Evaluate(st, renew("another.example/log"), st.Size()); d.Rule != policy.RuleLogBinding {
		t.Errorf("renewal signed for another log: %+v, want rule log-binding", d)
	}
	e := renew(logName)
	if d := policy.Evaluate(st, e, st.Size()); !d.Accept {
		t.Fatalf("version 2 renewal after the legacy entries refused: %v", d.Err())
	}
	b, _ := e.Marshal()
	if err := st.Apply(e, st.Size(), tlog.RecordHash(b)); err != nil {
		t.Fatal(err)
	}
	legacy, err := schema.ParseEntry(es[len(es)-1])
	if err != nil {
		t.Fatal(err)
	}
	if d := policy.Evaluate(st, legacy, st.Size()); d.Rule != policy.RuleMalformed || !strings.Contains(d.Reason, "never writes legacy entries") {
		t.Errorf("legacy entry after a version 2 one: %+v", d)
	}
}
