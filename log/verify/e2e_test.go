package verify_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cloudflare/circl/oprf"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
)

// issuerServer is an issuer's VOPRF (P-384) evaluation endpoint.
type issuerServer struct {
	key *oprf.PrivateKey
	srv oprf.VerifiableServer
}

func newIssuerServer(t *testing.T) *issuerServer {
	t.Helper()
	k, err := oprf.GenerateKey(oprf.SuiteP384, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &issuerServer{key: k, srv: oprf.NewVerifiableServer(oprf.SuiteP384, k)}
}

// compressed is the Privacy Pass token-type 1 key: the compressed point.
func (s *issuerServer) compressed(t *testing.T) []byte {
	b, err := s.key.Public().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pstY is the PST VOPRF key: 4-byte key id ‖ uncompressed point.
func (s *issuerServer) pstY(t *testing.T, id uint32) []byte {
	e := oprf.SuiteP384.Group().NewElement()
	if err := e.UnmarshalBinary(s.compressed(t)); err != nil {
		t.Fatal(err)
	}
	u, err := e.MarshalBinary()
	if err != nil || len(u) != 97 {
		t.Fatalf("uncompressed point: %d bytes, %v", len(u), err)
	}
	return append([]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, u...)
}

var errNotCommitted = errors.New("issuer key is not in the verified key set")

// issue is the client: it accepts tokens only under a key it found in a
// verified bundle, and only if the issuer's DLEQ proof verifies under it.
func issue(pub []byte, committed bool, server oprf.VerifiableServer) ([][]byte, error) {
	if !committed {
		return nil, errNotCommitted
	}
	var pk oprf.PublicKey
	if err := pk.UnmarshalBinary(oprf.SuiteP384, pub); err != nil {
		return nil, fmt.Errorf("bad issuer key: %w", err)
	}
	client := oprf.NewVerifiableClient(oprf.SuiteP384, &pk)
	inputs := [][]byte{[]byte("token nonce 1"), []byte("token nonce 2")}
	fin, req, err := client.Blind(inputs)
	if err != nil {
		return nil, err
	}
	eval, err := server.Evaluate(req) // the issuer's side
	if err != nil {
		return nil, err
	}
	return client.Finalize(fin, eval)
}

// TestVOPRFIssuanceUnderCommittedKey: an issuer commits a VOPRF key; the
// client verifies the bundle, finds the key there and only then accepts a
// real P-384 VOPRF issuance; issuance under a key not in the bundle is
// refused.
func TestVOPRFIssuanceUnderCommittedKey(t *testing.T) {
	const origin = "https://tokens.example"
	committed, other := newIssuerServer(t), newIssuerServer(t)
	ppKey := committed.compressed(t)
	pstY := committed.pstY(t, 7)

	ks := keySet(t, 5, 2, "e2e")
	ks.PrivacyPass = map[string]schema.IssuerDirectory{origin: {IssuerRequestURI: origin + "/token-request",
		TokenKeys: []schema.TokenKey{{TokenType: schema.TokenTypeVOPRF, TokenKey: base64.URLEncoding.EncodeToString(ppKey)}}}}
	ks.PST[origin] = schema.PSTCommitment{schema.PSTV1VOPRF: {ProtocolVersion: schema.PSTV1VOPRF, ID: 3, BatchSize: 10,
		Keys: map[string]schema.PSTKey{"7": {Y: base64.StdEncoding.EncodeToString(pstY), Expiry: fmt.Sprint(t0.Add(30 * 24 * time.Hour).UnixMicro())}}}}
	// The log itself validates what it admits; so does this test.
	if d := ks.PrivacyPass[origin]; d.Validate() != nil {
		t.Fatal(d.Validate())
	}
	if err := ks.PST[origin].Validate(); err != nil {
		t.Fatal(err)
	}

	f := newFixture(t)
	f.grow(4)
	f.snapshot(t, ks)
	f.grow(2)
	f.publish(t, t0, f.ws[0], f.ws[1])
	raw := f.bundle(t, 0)

	// The client's only source of keys: a verified bundle.
	verified, err := f.verifier(t, nil).Verify(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verified.KeySet()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("privacy pass, committed key", func(t *testing.T) {
		out, err := issue(ppKey, keys.HasTokenKey(origin, schema.TokenTypeVOPRF, ppKey), committed.srv)
		if err != nil {
			t.Fatalf("issuance under the committed key refused: %v", err)
		}
		want, _ := committed.srv.FullEvaluate([]byte("token nonce 1"))
		if !bytes.Equal(out[0], want) {
			t.Errorf("token output differs from the issuer's own evaluation")
		}
	})
	t.Run("pst, committed key", func(t *testing.T) {
		y, ok := keys.PSTKey(origin, schema.PSTV1VOPRF, "7")
		if !ok || !bytes.Equal(y, pstY) {
			t.Fatalf("PST key not found in the verified key set")
		}
		if _, err := issue(y[4:], keys.HasPSTKey(origin, schema.PSTV1VOPRF, y), committed.srv); err != nil {
			t.Fatalf("issuance under the committed PST key refused: %v", err)
		}
	})
	t.Run("key not in the bundle", func(t *testing.T) {
		otherKey := other.compressed(t)
		_, err := issue(otherKey, keys.HasTokenKey(origin, schema.TokenTypeVOPRF, otherKey), other.srv)
		if !errors.Is(err, errNotCommitted) {
			t.Fatalf("issuance under an uncommitted key: %v, want refusal", err)
		}
		if keys.HasPSTKey(origin, schema.PSTV1VOPRF, other.pstY(t, 7)) {
			t.Fatalf("uncommitted PST key found in the key set")
		}
	})
	t.Run("committed key claimed, other key used", func(t *testing.T) {
		// The issuer names its committed key but evaluates with another:
		// the DLEQ proof fails under the committed key.
		if _, err := issue(ppKey, true, other.srv); err == nil {
			t.Fatal("issuance evaluated under an uncommitted key was accepted")
		}
	})
	t.Run("another issuer's key", func(t *testing.T) {
		if keys.HasTokenKey("https://issuer-0.example", schema.TokenTypeVOPRF, ppKey) {
			t.Fatal("key found under the wrong issuer")
		}
	})
	t.Run("unverified bundle yields no keys", func(t *testing.T) {
		bad := bytes.Replace(raw, []byte(base64.URLEncoding.EncodeToString(ppKey)), []byte(base64.URLEncoding.EncodeToString(other.compressed(t))), 1)
		if _, err := f.verifier(t, nil).Verify(bad, nil); verify.CheckOf(err) != verify.CheckDigest {
			t.Fatalf("bundle with a swapped key: %v, want a digest failure", err)
		}
	})
}
