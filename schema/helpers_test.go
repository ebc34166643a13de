package schema

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the files in testdata/schema")

// testPoint derives a valid P-384 point from seed: uncompressed, compressed.
func testPoint(seed string) ([]byte, []byte) {
	for ctr := 0; ; ctr++ {
		d := sha512.Sum384([]byte(fmt.Sprintf("schema-test/%d/%s", ctr, seed)))
		k, err := ecdh.P384().NewPrivateKey(d[:])
		if err != nil {
			continue
		}
		u := k.PublicKey().Bytes()
		return u, append([]byte{0x02 | u[96]&1}, u[1:49]...)
	}
}

func testPSTKey(v string, kid uint32, seed string, expMicros uint64) PSTKey {
	y := binary.BigEndian.AppendUint32(nil, kid)
	n := 1
	if IsPMB(v) {
		n = 3
	}
	for i := range n {
		u, _ := testPoint(fmt.Sprintf("%s/%d", seed, i))
		y = append(y, u...)
	}
	return PSTKey{Y: base64.StdEncoding.EncodeToString(y), Expiry: strconv.FormatUint(expMicros, 10)}
}

const testExpiry = uint64(1_800_000_000_000_000) // 2027-01-15, µs

func testPST() PSTCommitment {
	return PSTCommitment{
		PSTV1VOPRF: {ProtocolVersion: PSTV1VOPRF, ID: 7, BatchSize: 10, Keys: map[string]PSTKey{
			"1": testPSTKey(PSTV1VOPRF, 1, "v1", testExpiry),
			"2": testPSTKey(PSTV1VOPRF, 2, "v2", testExpiry+1),
		}},
		PSTV1PMB: {ProtocolVersion: PSTV1PMB, ID: 3, BatchSize: 5, Keys: map[string]PSTKey{
			"1": testPSTKey(PSTV1PMB, 1, "p1", testExpiry),
		}},
	}
}

func testDirectory() *IssuerDirectory {
	_, c1 := testPoint("pp1/0")
	nb := int64(1_767_225_600)
	return &IssuerDirectory{IssuerRequestURI: "https://issuer.example/token-request", TokenKeys: []TokenKey{
		{TokenType: TokenTypeVOPRF, TokenKey: base64.URLEncoding.EncodeToString(c1)},
		{TokenType: TokenTypeBlindRSA, TokenKey: base64.URLEncoding.EncodeToString(rfc9578RSAKey(nil)), NotBefore: &nb},
	}}
}

func testAccountKey(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("schema-test-account/" + name))
	return ed25519.NewKeyFromSeed(s[:])
}

func testReport() *IncidentReport {
	return &IncidentReport{Summary: "key exposed", Discovered: 1_767_225_600_000, Impact: "forgeable tokens",
		RootCause: "public backup", Remediation: "rotated", URL: "https://issuer.example/incident/1"}
}

// testEntries returns one valid entry of every kind, canonical.
// testLog is the log the test statements are signed for.
const testLog = "keycommit.example/log/test"

func testEntries(t testing.TB) map[string][]byte {
	t.Helper()
	key := testAccountKey("issuer")
	origin := "https://issuer.example"
	out := map[string][]byte{}
	signed := func(name string, k Kind, prev []byte, body any) {
		raw, err := CanonicalizeBody(k, body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sub, err := Sign(Statement{Kind: k, Log: testLog, Issuer: origin, Prev: prev, Body: raw}, key)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		e := NewEntry(sub, 1_767_225_600_000)
		if name == "registration" {
			e.Control = &OriginControl{Method: ControlHTTPS, URL: ChallengeURL(testLog, origin, key.Public().(ed25519.PublicKey)), Time: 1_767_225_599_000}
		}
		b, err := e.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = b
	}
	prev := make([]byte, 32)
	for i := range prev {
		prev[i] = byte(i)
	}
	signed("registration", KindRegistration, nil, &Registration{Contact: "mailto:ops@issuer.example", AccountKey: key.Public().(ed25519.PublicKey)})
	nk := testAccountKey("next")
	r := &Registration{Contact: "https://issuer.example/contact", AccountKey: nk.Public().(ed25519.PublicKey)}
	if err := r.ProveKeyPossession(origin, prev, nk); err != nil {
		t.Fatal(err)
	}
	signed("registration-key-change", KindRegistration, prev, r)
	signed("key_commitment-pst", KindKeyCommitment, prev, &KeyCommitment{PST: testPST()})
	signed("key_commitment-privacy-pass", KindKeyCommitment, prev, &KeyCommitment{PrivacyPass: testDirectory()})
	signed("key_commitment-emergency", KindKeyCommitment, prev, &KeyCommitment{PST: testPST(), Emergency: testReport()})
	signed("incident_report", KindIncidentReport, prev, &IncidentFinal{Emergency: 41, Report: *testReport()})
	p := PolicyParams{MinRotationInterval: 5184000, EmergencyWindow: 31536000, MaxEmergencies: 2, MaxKeysVOPRF: 6, MaxKeysPMB: 3,
		MaxKeysPrivacyPass: 6, KeyWindow: 5184000, MaxKeysPerWindow: 18, MaxKeyLifetime: 31536000, MinBatchSize: 1, MaxBatchSize: 100, RegistrationLifetime: 15811200}
	for name, body := range map[string]any{"policy_params": &p, "snapshot": &Snapshot{Issuers: 2, Root: prev}, "snapshot-digest": &Snapshot{Issuers: 2, Digest: prev}} {
		k, _, _ := strings.Cut(name, "-")
		e, err := NewLogEntry(Kind(k), 1_767_225_600_000, body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

// readTestdata returns testdata/schema/name, or rewrites it with want
// under -update.
func readTestdata(t testing.TB, name string, want []byte) []byte {
	t.Helper()
	path := filepath.Join("..", "testdata", "schema", name)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./schema -run %s -update to create it)", err, t.Name())
	}
	return b
}
