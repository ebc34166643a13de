package policy

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/keycommit/keycommit/schema"
)

// codecFields lists every field of State and Issuer that state_codec.go
// carries. A new field must be added to the codec (and to this list).
var codecFields = map[string][]string{
	"State": {"params", "issuers", "keys", "size", "log", "version"},
	"Issuer": {"Origin", "AccountKey", "Contact", "Registered", "Expires", "LastIndex", "LastLeafHash",
		"LastTime", "Commitment", "CommitmentIndex", "CommitmentTime", "Keys", "IDs", "LastRotation",
		"HasRotated", "Emergencies", "LastEmergency", "KeyIntros", "Control", "ControlIndex", "Reclaims"},
	"keyRecord": {"issuer", "first", "retired", "retiredAt"},
}

func TestStateCodecCoversEveryField(t *testing.T) {
	for name, typ := range map[string]reflect.Type{"State": reflect.TypeFor[State](), "Issuer": reflect.TypeFor[Issuer](), "keyRecord": reflect.TypeFor[keyRecord]()} {
		var got []string
		for f := range typ.Fields() {
			got = append(got, f.Name)
		}
		if !reflect.DeepEqual(got, codecFields[name]) {
			t.Errorf("%s has fields %v; state_codec.go handles %v: update the codec for the new fields", name, got, codecFields[name])
		}
	}
}

// codecTestState builds a state by applying real entries: two issuers,
// registrations, commitments and a policy parameters entry.
func codecTestState(t *testing.T) *State {
	t.Helper()
	const logName = "keycommit.example/log/codec"
	st := NewLogState(logName)
	now := int64(1_800_000_000_000)
	keys := map[string]ed25519.PrivateKey{}
	apply := func(e *schema.Entry) {
		t.Helper()
		idx := st.Size()
		if d := Evaluate(st, e, idx); !d.Accept {
			t.Fatalf("entry %d refused: %v", idx, d.Err())
		}
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(e, idx, sha256.Sum256(append([]byte{0}, b...))); err != nil {
			t.Fatal(err)
		}
	}
	signed := func(origin string, k schema.Kind, body any) *schema.Entry {
		t.Helper()
		raw, err := schema.CanonicalizeBody(k, body)
		if err != nil {
			t.Fatal(err)
		}
		s := schema.Statement{Kind: k, Log: logName, Issuer: origin, Body: raw}
		if is, ok := st.Issuer(origin); ok {
			s.Prev = is.LastLeafHash[:]
		}
		sub, err := schema.Sign(s, keys[origin])
		if err != nil {
			t.Fatal(err)
		}
		e := schema.NewEntry(sub, now)
		if r, ok := body.(*schema.Registration); ok {
			e.Control = &schema.OriginControl{Method: schema.ControlHTTPS, URL: schema.ChallengeURL(logName, origin, r.AccountKey), Time: now}
		}
		return e
	}
	newKey := func(id uint32, exp int64) schema.PSTKey {
		t.Helper()
		k, err := ecdh.P384().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		y := append([]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, k.PublicKey().Bytes()...)
		return schema.PSTKey{Y: base64.StdEncoding.EncodeToString(y), Expiry: strconv.FormatInt(exp*1000, 10)}
	}
	commit := func(origin string, id uint32, keys map[string]schema.PSTKey, em *schema.IncidentReport) *schema.Entry {
		return signed(origin, schema.KindKeyCommitment, &schema.KeyCommitment{PST: schema.PSTCommitment{
			schema.PSTV1VOPRF: {ProtocolVersion: schema.PSTV1VOPRF, ID: id, BatchSize: 5, Keys: keys}}, Emergency: em})
	}
	report := &schema.IncidentReport{Summary: "key leaked", Discovered: now, Impact: "tokens forgeable",
		RootCause: "backup exposed", Remediation: "rotated", URL: "https://a.example/incident"}
	_, cKey, _ := ed25519.GenerateKey(rand.Reader)
	keys["https://c.example"] = cKey
	apply(signed("https://c.example", schema.KindRegistration, &schema.Registration{Contact: "mailto:x@c.example", AccountKey: cKey.Public().(ed25519.PublicKey)}))
	for i, origin := range []string{"https://b.example", "https://a.example"} {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		keys[origin] = priv
		apply(signed(origin, schema.KindRegistration, &schema.Registration{Contact: "mailto:x@example.com", AccountKey: priv.Public().(ed25519.PublicKey)}))
		apply(commit(origin, uint32(i+1), map[string]schema.PSTKey{"1": newKey(1, now+200*day*1000)}, nil))
		now += 1000
	}
	// A normal rotation 61 days later retires key 1 of a.example; an
	// emergency rotation and its final report follow.
	now += 61 * day * 1000
	k2 := newKey(2, now+200*day*1000)
	apply(commit("https://a.example", 10, map[string]schema.PSTKey{"2": k2}, nil))
	now += day * 1000
	apply(commit("https://a.example", 11, map[string]schema.PSTKey{"2": k2, "3": newKey(3, now+200*day*1000)}, report))
	emergencyIdx := st.Size() - 1
	now += day * 1000
	apply(signed("https://a.example", schema.KindIncidentReport, &schema.IncidentFinal{Emergency: emergencyIdx, Report: *report}))
	apply(signed("https://b.example", schema.KindRegistration, &schema.Registration{Contact: "https://b.example/contact", AccountKey: keys["https://b.example"].Public().(ed25519.PublicKey)}))
	// c.example lapses and is reclaimed by a new key.
	now += 184 * day * 1000
	_, cKey2, _ := ed25519.GenerateKey(rand.Reader)
	keys["https://c.example"] = cKey2
	apply(signed("https://c.example", schema.KindRegistration, &schema.Registration{Contact: "mailto:new@c.example", AccountKey: cKey2.Public().(ed25519.PublicKey)}))
	if c, _ := st.Issuer("https://c.example"); len(c.Reclaims) != 1 || c.Control == nil {
		t.Fatalf("test state lacks the reclaim: %+v", c)
	}
	p := DefaultParams()
	p.MaxEmergencies = 3
	e, err := schema.NewLogEntry(schema.KindPolicyParams, now, &p)
	if err != nil {
		t.Fatal(err)
	}
	apply(e)
	// The state exercises every part of the codec.
	if a, _ := st.Issuer("https://a.example"); a.LastEmergency == nil || !a.LastEmergency.Finalized ||
		len(a.Emergencies) != 1 || len(a.KeyIntros) != 3 || len(a.IDs) != 1 || !a.HasRotated {
		t.Fatalf("test state lacks rotations or emergencies: %+v", a)
	}
	if _, _, retired, _, ok := st.KeyOwner(firstKeyOf(t, st, "https://b.example")); !ok || retired || st.KeyCount() != 4 {
		t.Fatalf("test state has %d keys, want 4", st.KeyCount())
	}
	return st
}

func firstKeyOf(t *testing.T, st *State, origin string) schema.KeyID {
	is, ok := st.Issuer(origin)
	if !ok || len(is.Keys) == 0 {
		t.Fatalf("%s has no keys", origin)
	}
	return is.Keys[0].ID
}

func TestStateCodecRoundTrip(t *testing.T) {
	for name, st := range map[string]*State{"empty": NewState(), "applied": codecTestState(t)} {
		t.Run(name, func(t *testing.T) {
			b, err := st.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalState(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, st) {
				t.Errorf("decoded state differs from the original:\n got %+v\nwant %+v", got, st)
			}
			b2, err := got.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, b2) {
				t.Errorf("re-encoding gives different bytes:\n%s\n%s", b, b2)
			}
			// Evaluate behaves the same on both.
			if got.Size() != st.Size() || !reflect.DeepEqual(got.KeySet(1_800_000_100_000), st.KeySet(1_800_000_100_000)) {
				t.Error("decoded state gives a different size or key set")
			}
		})
	}
}

func TestStateCodecDeterministic(t *testing.T) {
	st := codecTestState(t)
	first, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // map iteration order varies between calls
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, first) {
			t.Fatal("two encodings of one state differ")
		}
	}
}

var zero32 = base64.StdEncoding.EncodeToString(make([]byte, 32))

func TestUnmarshalStateRejects(t *testing.T) {
	good, err := codecTestState(t).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":         nil,
		"truncated":     good[:len(good)/2],
		"trailing":      append(append([]byte(nil), good...), []byte(`{}`)...),
		"unknown field": bytes.Replace(good, []byte(`{"v":1,`), []byte(`{"v":1,"extra":0,`), 1),
		"version":       bytes.Replace(good, []byte(`{"v":1,`), []byte(`{"v":2,`), 1),
		"unsorted":      []byte(`{"v":1,"size":9,"params":{},"issuers":[{"origin":"https://b","last_leaf_hash":"` + zero32 + `"},{"origin":"https://a","last_leaf_hash":"` + zero32 + `"}],"keys":[]}`),
		"duplicate":     []byte(`{"v":1,"size":9,"params":{},"issuers":[{"origin":"https://a","last_leaf_hash":"` + zero32 + `"},{"origin":"https://a","last_leaf_hash":"` + zero32 + `"}],"keys":[]}`),
		"no origin":     []byte(`{"v":1,"size":9,"params":{},"issuers":[{"origin":"","last_leaf_hash":"` + zero32 + `"}],"keys":[]}`),
		"index beyond":  []byte(`{"v":1,"size":3,"params":{},"issuers":[{"origin":"https://a","last_index":3,"last_leaf_hash":"` + zero32 + `"}],"keys":[]}`),
		"short hash":    []byte(`{"v":1,"size":3,"params":{},"issuers":[{"origin":"https://a","last_leaf_hash":"AAAA"}],"keys":[]}`),
		"orphan key":    []byte(`{"v":1,"size":3,"params":{},"issuers":[],"keys":[{"id":"` + strings.Repeat("00", 32) + `","issuer":"https://a"}]}`),
		"bad key id":    []byte(`{"v":1,"size":3,"params":{},"issuers":[{"origin":"https://a","last_leaf_hash":"` + zero32 + `"}],"keys":[{"id":"00","issuer":"https://a"}]}`),
	} {
		if _, err := UnmarshalState(b); err == nil {
			t.Errorf("%s: UnmarshalState accepted %q", name, b)
		}
	}
}
