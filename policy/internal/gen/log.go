package gen

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
)

// Attempt is a submission the log refused.
type Attempt struct {
	// Before is the size of the log when it was attempted: the index it
	// would have taken.
	Before uint64
	Entry  []byte
	// Want is the rule the model expects to refuse it.
	Want string
	What string
}

// Log is a generated log: the admitted entries in order, and the refused
// attempts with where they were tried.
type Log struct {
	Entries  [][]byte
	Attempts []Attempt
	// Counts counts what was generated ("accept/<what>" and
	// "reject/<rule>"), for tests to check coverage.
	Counts map[string]int
}

// Config says what to generate.
type Config struct {
	Seed    uint64
	Entries int // admitted entries, at least
	Issuers int
}

const (
	minute = int64(60 * 1000)
	hour   = 60 * minute
	day    = 24 * hour
)

type modelKey struct {
	seed string
	kid  uint32
	exp  int64 // ms
	pst  schema.PSTKey
	tok  schema.TokenKey
}

type intro struct {
	time  int64
	count int
}

type issuer struct {
	origin  string
	key     ed25519.PrivateKey
	keyGen  int
	pp      bool
	version string

	registered bool
	expires    int64
	letLapse   bool
	prev       []byte

	keys       []modelKey
	retired    []modelKey
	seq        int
	lastID     uint32
	hasRotated bool
	lastRot    int64

	emergencies   []int64
	lastEmergency int64 // index, -1 if none
	openIncident  bool
	intros        []intro
	commitment    *schema.KeyCommitment
}

type generator struct {
	rng     *rand.Rand
	st      *policy.State
	params  schema.PolicyParams
	now     int64
	log     *Log
	issuers []*issuer
}

// Generate produces a log of at least cfg.Entries admitted entries. Every
// entry is evaluated by policy.Evaluate as it is generated, and Generate
// fails if the policy's decision differs from the model's: the model is a
// second, simpler statement of the rotation, emergency, key-window and
// registration rules, and each deliberately bad attempt breaks one rule.
func Generate(cfg Config) (*Log, error) {
	g := &generator{
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6b6579636f6d6d74)),
		st:     policy.NewLogState(LogName),
		now:    1_767_225_600_000, // 2026-01-01T00:00:00Z
		log:    &Log{Counts: map[string]int{}},
		params: policy.DefaultParams(),
	}
	// The log starts with its parameters; a tighter key window makes the
	// information limit reachable with small commitments.
	g.params.MaxKeysPerWindow = 5
	if err := g.logParams(); err != nil {
		return nil, err
	}
	for i := range cfg.Issuers {
		is := &issuer{origin: fmt.Sprintf("https://issuer%02d.example", i), lastEmergency: -1}
		is.key = AccountKey(is.origin)
		switch i % 4 {
		case 0:
			is.pp = true
		case 1:
			is.version = schema.PSTV1PMB
		default:
			is.version = schema.PSTV1VOPRF
		}
		g.issuers = append(g.issuers, is)
	}
	changed := false
	for len(g.log.Entries) < cfg.Entries {
		g.now += minute + g.rng.Int64N(8*hour)
		if !changed && len(g.log.Entries) >= cfg.Entries/2 {
			// Midway the operator changes the emergency rules.
			changed = true
			g.params.MaxEmergencies = 3
			g.params.EmergencyWindow = 300 * 24 * 3600
			if err := g.logParams(); err != nil {
				return nil, err
			}
		}
		is := g.issuers[g.rng.IntN(len(g.issuers))]
		if err := g.step(is); err != nil {
			return nil, fmt.Errorf("at log size %d, issuer %s: %w", len(g.log.Entries), is.origin, err)
		}
	}
	return g.log, nil
}

func (g *generator) logParams() error {
	p := g.params
	e, err := schema.NewLogEntry(schema.KindPolicyParams, g.now, &p)
	if err != nil {
		return err
	}
	_, err = g.submit(nil, e, "", "params")
	return err
}

// submit evaluates e and checks the decision is want ("" to accept). An
// accepted entry is applied and becomes is's latest entry.
func (g *generator) submit(is *issuer, e *schema.Entry, want, what string) (uint64, error) {
	b, err := e.Marshal()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	pe, err := schema.ParseEntry(b)
	if err != nil {
		return 0, fmt.Errorf("%s: generated entry does not parse: %w", what, err)
	}
	idx := uint64(len(g.log.Entries))
	d := policy.Evaluate(g.st, pe, idx)
	if want == "" {
		if !d.Accept {
			return 0, fmt.Errorf("%s: the model accepts it, the policy refuses it: %v", what, d.Err())
		}
		lh := LeafHash(b)
		if err := g.st.Apply(pe, idx, lh); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		g.log.Entries = append(g.log.Entries, b)
		g.log.Counts["accept/"+what]++
		if is != nil {
			is.prev = lh[:]
		}
		return idx, nil
	}
	if d.Accept || d.Rule != want {
		return 0, fmt.Errorf("%s: the model refuses it by rule %s, the policy says accept=%v rule=%q: %s", what, want, d.Accept, d.Rule, d.Reason)
	}
	g.log.Attempts = append(g.log.Attempts, Attempt{Before: idx, Entry: b, Want: want, What: what})
	g.log.Counts["reject/"+want]++
	return idx, nil
}

func (g *generator) signed(is *issuer, k schema.Kind, body any) (*schema.Entry, error) {
	return Signed(is.key, is.origin, k, is.prev, body, g.now)
}

func (g *generator) step(is *issuer) error {
	t := g.now
	switch {
	case !is.registered:
		return g.register(is, "register")
	case t >= is.expires:
		if is.commitment != nil {
			keys := g.validKeys(is)
			if len(keys) > 0 {
				e, err := g.signed(is, schema.KindKeyCommitment, g.commitment(is, keys, nil, is.lastID+1))
				if err != nil {
					return err
				}
				if _, err := g.submit(is, e, policy.RuleRegistration, "commitment after lapse"); err != nil {
					return err
				}
			}
		}
		is.letLapse = false
		return g.register(is, "renew after lapse")
	case is.expires-t < 20*day && !is.letLapse:
		return g.register(is, "renew")
	case is.commitment == nil:
		return g.rotate(is, false)
	}
	r := g.rng.IntN(100)
	if r >= 50 && r < 72 && g.rng.IntN(3) != 0 {
		return nil // keep deliberately bad attempts to about a third of the entries
	}
	switch {
	case r < 25:
		if is.hasRotated && t < is.lastRot+g.params.MinRotationInterval*1000 && g.rng.IntN(10) != 0 {
			return nil // most issuers wait for their next rotation
		}
		return g.rotate(is, false)
	case r < 33:
		if is.openIncident && g.rng.IntN(2) != 0 {
			return g.final(is)
		}
		return g.rotate(is, true)
	case r < 41:
		if is.openIncident {
			return g.final(is)
		}
	case r < 46:
		return g.dropKey(is)
	case r < 50:
		return g.snapshot()
	case r < 52:
		return g.badSignature(is)
	case r < 54:
		return g.stalePrev(is)
	case r < 56:
		return g.staleID(is)
	case r < 58:
		return g.reuseKey(is)
	case r < 60:
		return g.retiredKey(is)
	case r < 62:
		return g.tooManyKeys(is)
	case r < 64:
		return g.badExpiry(is, false)
	case r < 65:
		return g.badExpiry(is, true)
	case r < 66:
		return g.badBatch(is)
	case r < 68:
		return g.register(is, "renew")
	case r < 69:
		return g.wrongFinal(is)
	case r < 71:
		return g.changeKey(is, g.rng.IntN(3) != 0)
	case r < 72:
		return g.futureIncident(is)
	}
	return nil
}

func (g *generator) register(is *issuer, what string) error {
	body := &schema.Registration{Contact: "mailto:keys@" + is.origin[len("https://"):], AccountKey: is.key.Public().(ed25519.PublicKey)}
	e, err := g.signed(is, schema.KindRegistration, body)
	if err != nil {
		return err
	}
	if _, err := g.submit(is, e, "", what); err != nil {
		return err
	}
	is.registered = true
	is.expires = g.now + g.params.RegistrationLifetime*1000
	is.letLapse = g.rng.IntN(8) == 0
	return nil
}

func (g *generator) changeKey(is *issuer, prove bool) error {
	newKey := AccountKey(is.origin + "/" + strconv.Itoa(is.keyGen+1))
	body := &schema.Registration{Contact: "https://" + is.origin[len("https://"):] + "/contact", AccountKey: newKey.Public().(ed25519.PublicKey)}
	want, what := "", "account key change"
	if prove {
		if err := body.ProveKeyPossession(is.origin, is.prev, newKey); err != nil {
			return err
		}
	} else {
		want, what = policy.RuleRegistration, "account key change without proof"
	}
	e, err := g.signed(is, schema.KindRegistration, body)
	if err != nil {
		return err
	}
	if _, err := g.submit(is, e, want, what); err != nil || !prove {
		return err
	}
	is.key, is.keyGen = newKey, is.keyGen+1
	is.expires = g.now + g.params.RegistrationLifetime*1000
	return nil
}

func (g *generator) newKey(is *issuer) modelKey {
	is.seq++
	k := modelKey{seed: fmt.Sprintf("%s/key/%d", is.origin, is.seq), kid: uint32(is.seq), exp: g.now + 300*day}
	if is.pp {
		k.tok = TokenKey(k.seed)
	} else {
		k.pst = PSTKey(is.version, k.kid, k.seed, k.exp)
	}
	return k
}

// validKeys returns the issuer's current keys that are still valid now.
func (g *generator) validKeys(is *issuer) []modelKey {
	var out []modelKey
	for _, k := range is.keys {
		if is.pp || k.exp > g.now+minute {
			out = append(out, k)
		}
	}
	return out
}

func (g *generator) maxKeys(is *issuer) int {
	switch {
	case is.pp:
		return g.params.MaxKeysPrivacyPass
	case schema.IsPMB(is.version):
		return g.params.MaxKeysPMB
	}
	return g.params.MaxKeysVOPRF
}

func (g *generator) commitment(is *issuer, keys []modelKey, em *schema.IncidentReport, id uint32) *schema.KeyCommitment {
	c := &schema.KeyCommitment{Emergency: em}
	if is.pp {
		d := &schema.IssuerDirectory{IssuerRequestURI: is.origin + "/token-request"}
		for _, k := range keys {
			d.TokenKeys = append(d.TokenKeys, k.tok)
		}
		c.PrivacyPass = d
		return c
	}
	m := map[string]schema.PSTKey{}
	for _, k := range keys {
		m[strconv.FormatUint(uint64(k.kid), 10)] = k.pst
	}
	c.PST = schema.PSTCommitment{is.version: {ProtocolVersion: is.version, ID: id, BatchSize: 1 + g.rng.IntN(schema.ChromeMaxBatchSize), Keys: m}}
	return c
}

func (g *generator) inWindow(times []int64, w int64) int {
	n := 0
	for _, t := range times {
		if t > g.now-w {
			n++
		}
	}
	return n
}

func (g *generator) keysInWindow(is *issuer) int {
	n := 0
	for _, in := range is.intros {
		if in.time > g.now-g.params.KeyWindow*1000 {
			n += in.count
		}
	}
	return n
}

// rotate tries a commitment adding one or two new keys, as an emergency or
// not, and predicts the decision from the model.
func (g *generator) rotate(is *issuer, emergency bool) error {
	keep := g.validKeys(is)
	add := 1 + g.rng.IntN(2)
	if is.commitment == nil {
		add = 1 + g.rng.IntN(3)
	}
	if add > g.maxKeys(is) {
		add = g.maxKeys(is)
	}
	if len(keep) > g.maxKeys(is)-add {
		keep = keep[len(keep)-(g.maxKeys(is)-add):]
	}
	if len(keep) > 2 {
		keep = keep[len(keep)-2:]
	}
	seqBefore := is.seq
	var added []modelKey
	for range add {
		added = append(added, g.newKey(is))
	}
	var em *schema.IncidentReport
	want, what := "", "rotation"
	if emergency {
		em = Report(is.origin, g.now-hour)
		what = "emergency"
		switch {
		case is.openIncident:
			want = policy.RuleOpenIncident
		case g.inWindow(is.emergencies, g.params.EmergencyWindow*1000) >= g.params.MaxEmergencies:
			want = policy.RuleEmergencyRate
		}
	} else if is.hasRotated && g.now < is.lastRot+g.params.MinRotationInterval*1000 {
		want = policy.RuleRotation
	}
	if want == "" && g.keysInWindow(is)+add > g.params.MaxKeysPerWindow {
		want = policy.RuleKeyWindow
	}
	if is.commitment == nil {
		what = "first commitment"
	}
	keys := append(append([]modelKey(nil), keep...), added...)
	e, err := g.signed(is, schema.KindKeyCommitment, g.commitment(is, keys, em, is.lastID+1))
	if err != nil {
		return err
	}
	idx, err := g.submit(is, e, want, what)
	if err != nil {
		return err
	}
	if want != "" {
		is.seq = seqBefore // the keys were never logged; derive the same seeds again later
		return nil
	}
	g.accepted(is, keys, e)
	is.hasRotated, is.lastRot = true, g.now
	is.intros = append(is.intros, intro{g.now, add})
	if emergency {
		is.emergencies = append(is.emergencies, g.now)
		is.lastEmergency, is.openIncident = int64(idx), true
	}
	return nil
}

// accepted records the issuer's new current keys and commitment.
func (g *generator) accepted(is *issuer, keys []modelKey, e *schema.Entry) {
	in := map[string]bool{}
	for _, k := range keys {
		in[k.seed] = true
	}
	for _, k := range is.keys {
		if !in[k.seed] {
			is.retired = append(is.retired, k)
		}
	}
	is.keys = keys
	body, _ := e.ParsedBody()
	is.commitment = body.(*schema.KeyCommitment)
	is.lastID++
}

func (g *generator) dropKey(is *issuer) error {
	keys := g.validKeys(is)
	if len(keys) < 2 {
		return nil
	}
	keys = keys[1:]
	e, err := g.signed(is, schema.KindKeyCommitment, g.commitment(is, keys, nil, is.lastID+1))
	if err != nil {
		return err
	}
	if _, err := g.submit(is, e, "", "drop a key"); err != nil {
		return err
	}
	g.accepted(is, keys, e)
	return nil
}

func (g *generator) final(is *issuer) error {
	e, err := g.signed(is, schema.KindIncidentReport, &schema.IncidentFinal{Emergency: uint64(is.lastEmergency), Report: *Report(is.origin, g.now-day)})
	if err != nil {
		return err
	}
	if _, err := g.submit(is, e, "", "final report"); err != nil {
		return err
	}
	is.openIncident = false
	return nil
}

func (g *generator) wrongFinal(is *issuer) error {
	e, err := g.signed(is, schema.KindIncidentReport, &schema.IncidentFinal{Emergency: 0, Report: *Report(is.origin, g.now-day)})
	if err != nil {
		return err
	}
	_, err = g.submit(is, e, policy.RuleIncidentReport, "final report for a wrong index")
	return err
}

func (g *generator) futureIncident(is *issuer) error {
	keys := g.validKeys(is)
	if len(keys) == 0 {
		return nil
	}
	e, err := g.signed(is, schema.KindKeyCommitment, g.commitment(is, keys, Report(is.origin, g.now+hour), is.lastID+1))
	if err != nil {
		return err
	}
	_, err = g.submit(is, e, policy.RuleIncidentReport, "incident discovered in the future")
	return err
}

func (g *generator) snapshot() error {
	ks := &schema.KeySet{PST: map[string]schema.PSTCommitment{}, PrivacyPass: map[string]schema.IssuerDirectory{}}
	for _, is := range g.issuers {
		if is.commitment == nil || g.now >= is.expires {
			continue
		}
		if is.pp {
			ks.PrivacyPass[is.origin] = *is.commitment.PrivacyPass
		} else {
			ks.PST[is.origin] = is.commitment.PST
		}
	}
	snap, err := schema.NewSnapshot(ks)
	if err != nil {
		return err
	}
	e, err := schema.NewLogEntry(schema.KindSnapshot, g.now, snap)
	if err != nil {
		return err
	}
	if _, err := g.submit(nil, e, "", "snapshot"); err != nil {
		return err
	}
	// A wrong snapshot is refused, in both forms; a right one of a log
	// made before the key set root (digest form) is still accepted.
	d, err := ks.Digest()
	if err != nil {
		return err
	}
	bad := sha256.Sum256(d)
	for _, s := range []struct {
		body *schema.Snapshot
		rule string
		what string
	}{
		{&schema.Snapshot{Issuers: snap.Issuers, Root: bad[:]}, policy.RuleSnapshot, "wrong snapshot root"},
		{&schema.Snapshot{Issuers: snap.Issuers, Digest: bad[:]}, policy.RuleSnapshot, "wrong snapshot digest"},
		{&schema.Snapshot{Issuers: snap.Issuers, Digest: d}, "", "snapshot in digest form"},
	} {
		if e, err = schema.NewLogEntry(schema.KindSnapshot, g.now, s.body); err != nil {
			return err
		}
		if _, err = g.submit(nil, e, s.rule, s.what); err != nil {
			return err
		}
	}
	return nil
}

// removal returns a harmless valid commitment body: the current valid
// keys with the next id.
func (g *generator) removal(is *issuer) (*schema.KeyCommitment, bool) {
	keys := g.validKeys(is)
	if len(keys) == 0 {
		return nil, false
	}
	return g.commitment(is, keys, nil, is.lastID+1), true
}

func (g *generator) badSignature(is *issuer) error {
	c, ok := g.removal(is)
	if !ok {
		return nil
	}
	e, err := Signed(AccountKey("intruder"), is.origin, schema.KindKeyCommitment, is.prev, c, g.now)
	if err != nil {
		return err
	}
	_, err = g.submit(is, e, policy.RuleSignature, "signed by another key")
	return err
}

func (g *generator) stalePrev(is *issuer) error {
	c, ok := g.removal(is)
	if !ok {
		return nil
	}
	stale := sha256.Sum256(append([]byte("stale"), is.prev...))
	e, err := Signed(is.key, is.origin, schema.KindKeyCommitment, stale[:], c, g.now)
	if err != nil {
		return err
	}
	_, err = g.submit(is, e, policy.RulePrev, "stale prev")
	return err
}

func (g *generator) staleID(is *issuer) error {
	if is.pp {
		return nil
	}
	keys := g.validKeys(is)
	if len(keys) == 0 {
		return nil
	}
	e, err := g.signed(is, schema.KindKeyCommitment, g.commitment(is, keys, nil, is.lastID))
	if err != nil {
		return err
	}
	_, err = g.submit(is, e, policy.RuleCommitmentID, "id not increased")
	return err
}

func (g *generator) reuseKey(is *issuer) error {
	var other *issuer
	for _, o := range g.issuers {
		if o != is && o.pp == is.pp && o.version == is.version && len(o.keys) > 0 {
			other = o
			break
		}
	}
	keys := g.validKeys(is)
	if other == nil || len(keys) == 0 {
		return nil
	}
	k := other.keys[0]
	if !is.pp {
		k.kid = uint32(900000 + is.seq)
		k.pst = PSTKey(is.version, k.kid, k.seed, g.now+100*day)
	}
	keys = append(keys[len(keys)-1:], k)
	e, err := g.signed(is, schema.KindKeyCommitment, g.commitment(is, keys, nil, is.lastID+1))
	if err != nil {
		return err
	}
	_, err = g.submit(is, e, policy.RuleKeyReuse, "another issuer's key")
	return err
}

func (g *generator) retiredKey(is *issuer) error {
	keys := g.validKeys(is)
	if len(is.retired) == 0 || len(keys) == 0 {
		return nil
	}
	k := is.retired[g.rng.IntN(len(is.retired))]
	if !is.pp {
		k.kid = uint32(800000 + is.seq)
		k.pst = PSTKey(is.version, k.kid, k.seed, g.now+100*day)
	}
	keys = append(keys[len(keys)-1:], k)
	e, err := g.signed(is, schema.KindKeyCommitment, g.commitment(is, keys, nil, is.lastID+1))
	if err != nil {
		return err
	}
	_, err = g.submit(is, e, policy.RuleRetiredKey, "retired key brought back")
	return err
}

func (g *generator) tooManyKeys(is *issuer) error {
	keys := g.validKeys(is)
	seqBefore := is.seq
	for len(keys) <= g.maxKeys(is) {
		keys = append(keys, g.newKey(is))
	}
	is.seq = seqBefore
	e, err := g.signed(is, schema.KindKeyCommitment, g.commitment(is, keys, nil, is.lastID+1))
	if err != nil {
		return err
	}
	_, err = g.submit(is, e, policy.RuleKeyCount, "too many keys")
	return err
}

func (g *generator) badExpiry(is *issuer, tooLong bool) error {
	keys := g.validKeys(is)
	if is.pp || len(keys) == 0 {
		return nil
	}
	k := keys[0]
	what := "expired key"
	exp := g.now - minute
	if tooLong {
		what = "key beyond max_key_lifetime"
		exp = g.now + g.params.MaxKeyLifetime*1000 + minute
	}
	k.pst = PSTKey(is.version, k.kid, k.seed, exp)
	keys[0] = k
	e, err := g.signed(is, schema.KindKeyCommitment, g.commitment(is, keys, nil, is.lastID+1))
	if err != nil {
		return err
	}
	_, err = g.submit(is, e, policy.RuleExpiry, what)
	return err
}

func (g *generator) badBatch(is *issuer) error {
	c, ok := g.removal(is)
	if !ok || is.pp {
		return nil
	}
	vc := c.PST[is.version]
	vc.BatchSize = g.params.MaxBatchSize + 1 + g.rng.IntN(1000)
	c.PST[is.version] = vc
	e, err := g.signed(is, schema.KindKeyCommitment, c)
	if err != nil {
		return err
	}
	_, err = g.submit(is, e, policy.RuleBatchSize, "batch size too large")
	return err
}
