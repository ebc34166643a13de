package policy_test

import (
	"crypto/ed25519"
	"fmt"
	"strconv"
	"testing"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/policy/internal/gen"
	"github.com/keycommit/keycommit/schema"
)

const (
	sec = int64(1000)
	day = 24 * 3600 * sec
	// t0 is 2026-01-01T00:00:00Z in ms.
	t0 = int64(1_767_225_600_000)
)

const (
	originA = "https://a.example"
	originB = "https://b.example"
)

// harness builds a log in memory: every entry it appends must be accepted.
type harness struct {
	t   testing.TB
	st  *policy.State
	key map[string]ed25519.PrivateKey
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, st: policy.NewLogState(gen.LogName), key: map[string]ed25519.PrivateKey{}}
}

func (h *harness) prev(origin string) []byte {
	if is, ok := h.st.Issuer(origin); ok {
		return is.LastLeafHash[:]
	}
	return nil
}

// entry returns a statement by origin signed with its current key.
func (h *harness) entry(origin string, k schema.Kind, body any, at int64) *schema.Entry {
	h.t.Helper()
	key := h.key[origin]
	if key == nil {
		key = gen.AccountKey(origin)
		h.key[origin] = key
	}
	e, err := gen.Signed(key, origin, k, h.prev(origin), body, at)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

func (h *harness) eval(e *schema.Entry) policy.Decision {
	h.t.Helper()
	b, err := e.Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	pe, err := schema.ParseEntry(b)
	if err != nil {
		h.t.Fatalf("entry does not parse: %v", err)
	}
	return policy.Evaluate(h.st, pe, h.st.Size())
}

// add appends e, which must be accepted, and returns its index.
func (h *harness) add(e *schema.Entry) uint64 {
	h.t.Helper()
	if d := h.eval(e); !d.Accept {
		h.t.Fatalf("setup entry %d (%s by %q) refused: %v", h.st.Size(), e.Kind, e.Issuer, d.Err())
	}
	b, _ := e.Marshal()
	idx := h.st.Size()
	if err := h.st.Apply(e, idx, gen.LeafHash(b)); err != nil {
		h.t.Fatal(err)
	}
	return idx
}

func (h *harness) register(origin string, at int64) uint64 {
	h.t.Helper()
	key := h.key[origin]
	if key == nil {
		key = gen.AccountKey(origin)
		h.key[origin] = key
	}
	return h.add(h.entry(origin, schema.KindRegistration, &schema.Registration{Contact: "mailto:ops@example.com", AccountKey: key.Public().(ed25519.PublicKey)}, at))
}

func (h *harness) params(p schema.PolicyParams, at int64) uint64 {
	h.t.Helper()
	e, err := schema.NewLogEntry(schema.KindPolicyParams, at, &p)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.add(e)
}

// key is a PST key description: a seed naming the key material, its label
// and its expiry.
type key struct {
	seed  string
	label uint32
	exp   int64 // ms; 0: 300 days after the commitment
}

// pst returns a PST commitment body of version v with id and keys.
func pst(v string, id uint32, batch int, at int64, keys ...key) *schema.KeyCommitment {
	m := map[string]schema.PSTKey{}
	for _, k := range keys {
		exp := k.exp
		if exp == 0 {
			exp = at + 300*day
		}
		m[strconv.FormatUint(uint64(k.label), 10)] = gen.PSTKey(v, k.label, k.seed, exp)
	}
	return &schema.KeyCommitment{PST: schema.PSTCommitment{v: {ProtocolVersion: v, ID: id, BatchSize: batch, Keys: m}}}
}

// voprf returns a PST V1 VOPRF commitment with the given id and keys
// (named by seeds, labelled 1, 2, ...).
func voprf(id uint32, at int64, seeds ...string) *schema.KeyCommitment {
	var ks []key
	for i, s := range seeds {
		ks = append(ks, key{seed: s, label: uint32(i + 1)})
	}
	return pst(schema.PSTV1VOPRF, id, 10, at, ks...)
}

func emergency(c *schema.KeyCommitment, origin string, discovered int64) *schema.KeyCommitment {
	c.Emergency = gen.Report(origin, discovered)
	return c
}

func (h *harness) commit(origin string, c *schema.KeyCommitment, at int64) uint64 {
	h.t.Helper()
	return h.add(h.entry(origin, schema.KindKeyCommitment, c, at))
}

func (h *harness) final(origin string, em uint64, at int64) uint64 {
	h.t.Helper()
	return h.add(h.entry(origin, schema.KindIncidentReport, &schema.IncidentFinal{Emergency: em, Report: *gen.Report(origin, at-day)}, at))
}

func seeds(prefix string, n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return s
}
