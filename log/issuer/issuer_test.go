package issuer_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer"
	"github.com/keycommit/keycommit/log/issuer/issuertest"
	"github.com/keycommit/keycommit/log/logtest"
	"github.com/keycommit/keycommit/log/sqlitestore"
	"github.com/keycommit/keycommit/schema"
)

func startLog(t *testing.T) *logtest.Log {
	t.Helper()
	store, err := sqlitestore.Create(t.Context(), filepath.Join(t.TempDir(), "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return logtest.Start(t, store, nil)
}

// TestPrevTracking: an unregistered issuer has no status and no prev;
// each accepted submission makes its leaf hash the next prev, which is
// what the log reports on a fresh Open.
func TestPrevTracking(t *testing.T) {
	l := startLog(t)
	ctx := t.Context()
	ti := issuertest.New(t, "https://prev.example")
	is, err := issuer.Open(ctx, l.Client, ti.Origin, ti.Key)
	if err != nil {
		t.Fatal(err)
	}
	if is.Status != nil || is.Prev != nil {
		t.Fatalf("unregistered issuer: status %v prev %x", is.Status, is.Prev)
	}
	res, err := is.Submit(ctx, schema.KindRegistration, &schema.Registration{Contact: ti.Contact, AccountKey: ti.Key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(is.Prev, res.LeafHash) {
		t.Fatalf("prev %x after registering, want leaf hash %x", is.Prev, res.LeafHash)
	}
	res, err = is.Submit(ctx, schema.KindKeyCommitment, &schema.KeyCommitment{PST: issuertest.Commitment(t, 1, 2, l.Clock.Now().AddDate(0, 0, 30))})
	if err != nil {
		t.Fatal(err)
	}
	again, err := issuer.Open(ctx, l.Client, ti.Origin, ti.Key)
	if err != nil {
		t.Fatal(err)
	}
	if again.Status == nil || !bytes.Equal(again.Prev, res.LeafHash) || !bytes.Equal(is.Prev, res.LeafHash) {
		t.Fatalf("after the commitment: opened prev %x, tracked prev %x, want %x", again.Prev, is.Prev, res.LeafHash)
	}
	// The CLI's statements and the tests' are signed the same way.
	ti.Prev = is.Prev
	a, err := is.Sign(schema.KindRegistration, &schema.Registration{Contact: ti.Contact, AccountKey: ti.Key.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	if b := ti.Register(t); !bytes.Equal(a.Body, b.Body) || !bytes.Equal(a.Sig, b.Sig) || !bytes.Equal(a.Prev, b.Prev) {
		t.Fatal("issuer.Sign and issuertest sign the same statement differently")
	}
}

// TestSubmitVerifiesTheLogsAnswer: an answer signed by a key other than
// the log's is an error, and prev does not move.
func TestSubmitVerifiesTheLogsAnswer(t *testing.T) {
	l := startLog(t)
	_, otherVKey, err := checkpoint.GenerateKey(logtest.Origin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(l.URL, otherVKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	ti := issuertest.New(t, "https://verify.example")
	is, err := issuer.Open(t.Context(), c, ti.Origin, ti.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := is.Submit(t.Context(), schema.KindRegistration, &schema.Registration{Contact: ti.Contact, AccountKey: ti.Key.Public().(ed25519.PublicKey)}); err == nil {
		t.Fatal("Submit accepted a checkpoint not signed by the log's key")
	}
	if is.Prev != nil {
		t.Fatalf("prev moved to %x on an unverified answer", is.Prev)
	}
}

// TestSubmitRefusal: a policy refusal comes back as client.Reject sees it,
// and prev does not move.
func TestSubmitRefusal(t *testing.T) {
	l := startLog(t)
	ti := issuertest.New(t, "https://refused.example")
	is, err := issuer.Open(t.Context(), l.Client, ti.Origin, ti.Key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = is.Submit(t.Context(), schema.KindKeyCommitment, &schema.KeyCommitment{PST: issuertest.Commitment(t, 1, 1, l.Clock.Now().AddDate(0, 0, 30))})
	if _, ok := client.Reject(err); !ok {
		t.Fatalf("commitment before registering: err = %v, want a policy refusal", err)
	}
	if is.Prev != nil {
		t.Fatalf("prev moved to %x on a refusal", is.Prev)
	}
}

// TestKeyFile: keys are written 0600 and never over an existing file, and
// a key file others can read is refused.
func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "issuer.key")
	pub, err := issuer.WriteKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k, err := issuer.ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Public().(ed25519.PublicKey).Equal(pub) {
		t.Error("read key is not the written one")
	}
	if _, err := issuer.WriteKeyFile(path); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second write: err = %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := issuer.ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: err = %v", err)
	}
}

// TestNewPSTCommitment: the generated commitment validates, labels its
// keys first.., and each key pair's private scalar is Y's point.
func TestNewPSTCommitment(t *testing.T) {
	c, pairs, err := issuer.NewPSTCommitment(7, 3, 2, 10, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keys := c[schema.PSTV1VOPRF].Keys
	if len(pairs) != 2 || len(keys) != 2 || c[schema.PSTV1VOPRF].ID != 7 {
		t.Fatalf("got %d pairs, %d keys, commitment %+v", len(pairs), len(keys), c)
	}
	for i, p := range pairs {
		if want := strconv.Itoa(3 + i); p.Label != want || keys[want].Y != p.Y {
			t.Errorf("pair %d: label %s Y %s, commitment key %s: %+v", i, p.Label, p.Y, want, keys[want])
		}
		y, _ := base64.StdEncoding.DecodeString(p.Y)
		d, _ := base64.StdEncoding.DecodeString(p.Private)
		k, err := ecdh.P384().NewPrivateKey(d)
		if err != nil {
			t.Fatal(err)
		}
		if binary.BigEndian.Uint32(y) != uint32(3+i) || !bytes.Equal(y[4:], k.PublicKey().Bytes()) {
			t.Errorf("pair %d: Y is not its key id and private key's point", i)
		}
	}
	if _, _, err := issuer.NewPSTCommitment(1, 1, 0, 10, time.Now()); err == nil {
		t.Error("no keys: no error")
	}
}
