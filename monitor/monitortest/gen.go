package monitortest

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"time"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"golang.org/x/mod/sumdb/tlog"
)

// Gen writes keycommit entries to a Log the way an honest log would: every
// entry it appends through Register, Commit, Snapshot and Params is first
// accepted by policy.Evaluate and then applied, in log order. Force and
// the Bad* methods append entries the policy refuses, as a lying log would.
type Gen struct {
	Log   *Log
	State *policy.State
	// Now is the log time (ms since the epoch) given to the next entry.
	Now int64
	// DigestSnapshots makes SnapshotEntry write snapshots in the digest
	// form of logs made before the key set root (docs/entries.md).
	DigestSnapshots bool

	rng     *mrand.ChaCha8
	issuers map[string]*genIssuer
}

type genIssuer struct {
	key       ed25519.PrivateKey
	id        uint32
	nextLabel uint32
	keys      map[string]schema.PSTKey
}

// NewGen returns a generator appending to l (which must be empty or hold
// only entries state has applied), starting at log time start. Account
// keys derive from seed, so a seed gives the same issuers every run.
func NewGen(l *Log, start time.Time, seed uint64) *Gen {
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	return &Gen{Log: l, State: policy.NewLogState(l.Origin()), Now: start.UnixMilli(),
		rng: mrand.NewChaCha8(s), issuers: map[string]*genIssuer{}}
}

// Clone returns a generator that continues from g's state on log l (for
// example l = g.Log.Clone(), to write a fork).
func (g *Gen) Clone(l *Log) (*Gen, error) {
	st, err := cloneState(g.State)
	if err != nil {
		return nil, err
	}
	c := &Gen{Log: l, State: st, Now: g.Now, issuers: map[string]*genIssuer{}}
	seed := g.rng.Uint64()
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	c.rng = mrand.NewChaCha8(s)
	for o, is := range g.issuers {
		ci := *is
		ci.keys = map[string]schema.PSTKey{}
		for k, v := range is.keys {
			ci.keys[k] = v
		}
		c.issuers[o] = &ci
	}
	return c, nil
}

func cloneState(st *policy.State) (*policy.State, error) {
	b, err := st.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return policy.UnmarshalState(b)
}

// Advance moves log time forward by d.
func (g *Gen) Advance(d time.Duration) { g.Now += d.Milliseconds() }

// AccountKey returns the account key of a registered origin.
func (g *Gen) AccountKey(origin string) ed25519.PrivateKey { return g.issuers[origin].key }

// Register registers origin with a fresh account key (or renews it).
func (g *Gen) Register(origin string) (uint64, error) {
	is := g.issuers[origin]
	if is == nil {
		seed := make([]byte, ed25519.SeedSize)
		g.rng.Read(seed)
		is = &genIssuer{key: ed25519.NewKeyFromSeed(seed), keys: map[string]schema.PSTKey{}}
		g.issuers[origin] = is
	}
	body := &schema.Registration{Contact: "mailto:ops@" + hostOf(origin), AccountKey: is.key.Public().(ed25519.PublicKey)}
	e, err := g.signed(origin, schema.KindRegistration, body)
	if err != nil {
		return 0, err
	}
	return g.Append(e)
}

// Commit appends a PST VOPRF key commitment for origin that keeps the
// issuer's current keys and adds add fresh ones, dropping the oldest so
// that at most keep keys remain (keep ≥ 1). add == 0 re-commits the same
// keys under the next id, which is not a rotation.
func (g *Gen) Commit(origin string, add, keep int) (uint64, error) {
	e, err := g.CommitEntry(origin, add, keep, nil)
	if err != nil {
		return 0, err
	}
	return g.Append(e)
}

// CommitEntry builds (without appending) the commitment Commit would
// append, with an optional emergency incident report. It advances the
// issuer's key bookkeeping as if the entry were appended.
func (g *Gen) CommitEntry(origin string, add, keep int, emergency *schema.IncidentReport) (*schema.Entry, error) {
	is := g.issuers[origin]
	if is == nil {
		return nil, fmt.Errorf("issuer %s is not registered with the generator", origin)
	}
	for range add {
		y, err := newVOPRFKey(is.nextLabel + 1)
		if err != nil {
			return nil, err
		}
		is.nextLabel++
		exp := (g.Now + 300*24*3600*1000) * 1000
		is.keys[strconv.FormatUint(uint64(is.nextLabel), 10)] = schema.PSTKey{Y: y, Expiry: strconv.FormatInt(exp, 10)}
	}
	for len(is.keys) > keep {
		oldest := ""
		var ol uint64
		for l := range is.keys {
			n, _ := strconv.ParseUint(l, 10, 32)
			if oldest == "" || n < ol {
				oldest, ol = l, n
			}
		}
		delete(is.keys, oldest)
	}
	is.id++
	keys := map[string]schema.PSTKey{}
	for k, v := range is.keys {
		keys[k] = v
	}
	body := &schema.KeyCommitment{
		PST: schema.PSTCommitment{schema.PSTV1VOPRF: {
			ProtocolVersion: schema.PSTV1VOPRF, ID: is.id, BatchSize: 10, Keys: keys}},
		Emergency: emergency,
	}
	return g.signed(origin, schema.KindKeyCommitment, body)
}

// Snapshot appends a correct snapshot entry.
func (g *Gen) Snapshot() (uint64, error) {
	e, err := g.SnapshotEntry("")
	if err != nil {
		return 0, err
	}
	return g.Append(e)
}

// SnapshotEntry builds a snapshot entry of the current key set, leaving
// out omit when it is not "" (a wrong snapshot).
func (g *Gen) SnapshotEntry(omit string) (*schema.Entry, error) {
	ks := g.State.KeySet(g.Now)
	delete(ks.PST, omit)
	delete(ks.PrivacyPass, omit)
	s, err := schema.NewSnapshot(ks)
	if err != nil {
		return nil, err
	}
	if g.DigestSnapshots {
		if s.Digest, err = ks.Digest(); err != nil {
			return nil, err
		}
		s.Root = nil
	}
	return schema.NewLogEntry(schema.KindSnapshot, g.Now, s)
}

// Params appends a policy parameters entry.
func (g *Gen) Params(p schema.PolicyParams) (uint64, error) {
	e, err := schema.NewLogEntry(schema.KindPolicyParams, g.Now, &p)
	if err != nil {
		return 0, err
	}
	return g.Append(e)
}

// Append appends e if the policy accepts it at the next index, and
// applies it.
func (g *Gen) Append(e *schema.Entry) (uint64, error) {
	idx := uint64(g.Log.Size())
	if d := policy.Evaluate(g.State, e, idx); !d.Accept {
		return 0, fmt.Errorf("the policy refuses entry %d: %w", idx, d.Err())
	}
	return g.Force(e)
}

// Force appends e whatever the policy says, and applies it: what a log
// that ignores its policy does.
func (g *Gen) Force(e *schema.Entry) (uint64, error) {
	b, err := e.Marshal()
	if err != nil {
		return 0, err
	}
	idx, err := g.Log.Append(b)
	if err != nil {
		return 0, err
	}
	if err := g.State.Apply(e, idx, tlog.RecordHash(b)); err != nil {
		return 0, fmt.Errorf("couldn't apply entry %d: %w", idx, err)
	}
	return idx, nil
}

// ForceRaw appends raw bytes that need not be a valid entry. The
// generator's state counts them as a no-op (it applies a policy_params
// entry that re-states the parameters in force), as a monitor does.
func (g *Gen) ForceRaw(b []byte) (uint64, error) {
	idx, err := g.Log.Append(b)
	if err != nil {
		return 0, err
	}
	p := g.State.Params()
	e, err := schema.NewLogEntry(schema.KindPolicyParams, 0, &p)
	if err != nil {
		return 0, err
	}
	if err := g.State.Apply(e, idx, tlog.Hash{}); err != nil {
		return 0, fmt.Errorf("couldn't step over entry %d: %w", idx, err)
	}
	return idx, nil
}

// signed builds an issuer-signed entry of kind k for origin at g.Now.
func (g *Gen) signed(origin string, k schema.Kind, body any) (*schema.Entry, error) {
	raw, err := schema.CanonicalizeBody(k, body)
	if err != nil {
		return nil, err
	}
	st := schema.Statement{Kind: k, Log: g.Log.Origin(), Issuer: origin, Body: raw}
	if is, ok := g.State.Issuer(origin); ok {
		st.Prev = append([]byte(nil), is.LastLeafHash[:]...)
	}
	sub, err := schema.Sign(st, g.issuers[origin].key)
	if err != nil {
		return nil, err
	}
	e := schema.NewEntry(sub, g.Now)
	if r, ok := body.(*schema.Registration); ok {
		// The log's record of the proof of origin control, as a log that
		// fetched the challenge writes it.
		e.Control = &schema.OriginControl{Method: schema.ControlHTTPS, URL: schema.ChallengeURL(st.Log, origin, r.AccountKey), Time: g.Now}
	}
	return e, nil
}

// newVOPRFKey returns the base64 Y of a fresh PST VOPRF key: a 4-byte
// big-endian key id and an uncompressed P-384 point.
func newVOPRFKey(id uint32) (string, error) {
	k, err := ecdh.P384().GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("couldn't generate a P-384 key: %w", err)
	}
	y := binary.BigEndian.AppendUint32(nil, id)
	y = append(y, k.PublicKey().Bytes()...)
	return base64.StdEncoding.EncodeToString(y), nil
}

func hostOf(origin string) string {
	const p = "https://"
	if len(origin) > len(p) {
		return origin[len(p):]
	}
	return "example.com"
}
