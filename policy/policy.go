// Package policy decides which entries the log admits.
//
// Evaluate is a pure, deterministic function of the log state built from
// the entries before a candidate, the candidate entry itself (whose Time is
// the log's time for it) and the parameters in force (the latest
// policy_params entry, or DefaultParams before any). The log runs it in log
// order before it appends; every monitor runs the same code over the same
// entries and must reach the same decisions. No I/O, no clock.
package policy

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"sort"
	"time"

	"github.com/keycommit/keycommit/schema"
)

const day = 24 * 60 * 60

// DefaultParams returns the parameters in force until a policy_params
// entry says otherwise.
func DefaultParams() schema.PolicyParams {
	return schema.PolicyParams{
		MinRotationInterval:  60 * day,
		EmergencyWindow:      365 * day,
		MaxEmergencies:       2,
		MaxKeysVOPRF:         6,
		MaxKeysPMB:           3,
		MaxKeysPrivacyPass:   6,
		KeyWindow:            60 * day,
		MaxKeysPerWindow:     12,
		MaxKeyLifetime:       365 * day,
		MinBatchSize:         1,
		MaxBatchSize:         schema.ChromeMaxBatchSize,
		RegistrationLifetime: 183 * day,
	}
}

// Rule names, as they appear in rejections.
const (
	RuleMalformed    = "malformed"
	RuleSignature    = "signature"
	RulePrev         = "prev"
	RuleRegistration = "registration"
	RuleCommitmentID = "commitment-id"
	RuleSnapshot     = "snapshot"
)

// Decision is the outcome of Evaluate.
type Decision struct {
	Accept bool
	// Rule names the rule that refused the entry ("" when accepted).
	Rule string
	// Reason says why, with the numbers (indexes, times, limits).
	Reason string
}

func accept() Decision { return Decision{Accept: true} }

func reject(rule, format string, args ...any) Decision {
	return Decision{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Err returns nil for an accepting decision, and an error naming the rule
// and the reason otherwise.
func (d Decision) Err() error {
	if d.Accept {
		return nil
	}
	return &RejectError{Rule: d.Rule, Reason: d.Reason}
}

// RejectError is a refusal by the policy.
type RejectError struct{ Rule, Reason string }

func (e *RejectError) Error() string { return fmt.Sprintf("policy rule %s: %s", e.Rule, e.Reason) }

// Issuer is the state the policy keeps for one issuer origin.
type Issuer struct {
	Origin     string
	AccountKey ed25519.PublicKey
	Contact    string
	// Registered is the index of the registration entry in force;
	// Expires is when it lapses (ms since the epoch).
	Registered uint64
	Expires    int64
	// LastIndex and LastLeafHash identify the issuer's latest entry: the
	// next statement's prev must equal LastLeafHash.
	LastIndex    uint64
	LastLeafHash [32]byte
	LastTime     int64
	// Commitment is the latest accepted key commitment, if any.
	Commitment      *schema.KeyCommitment
	CommitmentIndex uint64
	CommitmentTime  int64
}

// State is the log state the policy needs: every issuer's state and the
// parameters in force. Build it by calling Apply on every admitted entry in
// log order.
type State struct {
	params  schema.PolicyParams
	issuers map[string]*Issuer
	size    uint64
}

// NewState returns the state of an empty log.
func NewState() *State {
	return &State{params: DefaultParams(), issuers: map[string]*Issuer{}}
}

// Params returns the parameters in force.
func (s *State) Params() schema.PolicyParams { return s.params }

// Size returns the number of entries applied.
func (s *State) Size() uint64 { return s.size }

// Issuer returns a copy of the state of the issuer with the given origin.
func (s *State) Issuer(origin string) (Issuer, bool) {
	is, ok := s.issuers[origin]
	if !ok {
		return Issuer{}, false
	}
	return *is, true
}

// Origins returns every registered origin, sorted.
func (s *State) Origins() []string {
	os := make([]string, 0, len(s.issuers))
	for o := range s.issuers {
		os = append(os, o)
	}
	sort.Strings(os)
	return os
}

// KeySet returns the key set as of time now (ms): every issuer's latest
// accepted commitment whose registration has not lapsed.
func (s *State) KeySet(now int64) *schema.KeySet {
	ks := &schema.KeySet{PST: map[string]schema.PSTCommitment{}, PrivacyPass: map[string]schema.IssuerDirectory{}}
	for o, is := range s.issuers {
		if is.Commitment == nil || now >= is.Expires {
			continue
		}
		if len(is.Commitment.PST) != 0 {
			ks.PST[o] = is.Commitment.PST
		} else {
			ks.PrivacyPass[o] = *is.Commitment.PrivacyPass
		}
	}
	return ks
}

// Evaluate decides whether e may be appended at index idx. It does not
// change st.
func Evaluate(st *State, e *schema.Entry, idx uint64) Decision {
	if idx != st.size {
		return reject(RuleMalformed, "entry evaluated at index %d but the log has %d entries", idx, st.size)
	}
	body, err := e.ParsedBody()
	if err != nil {
		return reject(RuleMalformed, "%v", err)
	}
	if !e.Kind.IssuerSigned() {
		return evaluateLogEntry(st, e, body)
	}
	is := st.issuers[e.Issuer]
	// Who must have signed, and what prev must be.
	var signer ed25519.PublicKey
	var wantPrev []byte
	switch {
	case is == nil && e.Kind == schema.KindRegistration:
		signer = body.(*schema.Registration).AccountKey
	case is == nil:
		return reject(RuleRegistration, "issuer %s is not registered; register it before submitting a %s", e.Issuer, e.Kind)
	default:
		signer = is.AccountKey
		wantPrev = is.LastLeafHash[:]
	}
	if !bytes.Equal(e.Prev, wantPrev) {
		if wantPrev == nil {
			return reject(RulePrev, "prev must be empty for the first entry of issuer %s", e.Issuer)
		}
		return reject(RulePrev, "prev does not match issuer %s's latest entry (index %d); fetch its leaf hash and sign again", e.Issuer, is.LastIndex)
	}
	if err := e.Submission().Verify(signer); err != nil {
		return reject(RuleSignature, "%v", err)
	}
	if is != nil && e.Time < is.LastTime {
		return reject(RuleMalformed, "log time %s is before issuer %s's latest entry time %s", fmtMillis(e.Time), e.Issuer, fmtMillis(is.LastTime))
	}
	switch b := body.(type) {
	case *schema.Registration:
		return accept()
	case *schema.KeyCommitment:
		if e.Time >= is.Expires {
			return reject(RuleRegistration, "registration of %s (index %d) lapsed at %s; renew it first", e.Issuer, is.Registered, fmtMillis(is.Expires))
		}
		return evaluateCommitment(st, is, e, b)
	case *schema.IncidentFinal:
		return accept()
	}
	return reject(RuleMalformed, "unhandled entry kind %q", e.Kind)
}

func evaluateCommitment(st *State, is *Issuer, e *schema.Entry, c *schema.KeyCommitment) Decision {
	if is.Commitment != nil {
		for v, vc := range c.PST {
			if prev, ok := is.Commitment.PST[v]; ok && vc.ID <= prev.ID {
				return reject(RuleCommitmentID, "%s id %d does not increase on the previous commitment's id %d (index %d)", v, vc.ID, prev.ID, is.CommitmentIndex)
			}
		}
	}
	return accept()
}

func evaluateLogEntry(st *State, e *schema.Entry, body any) Decision {
	switch b := body.(type) {
	case *schema.PolicyParams:
		return accept()
	case *schema.Snapshot:
		ks := st.KeySet(e.Time)
		d, err := ks.Digest()
		if err != nil {
			return reject(RuleSnapshot, "couldn't compute the key set digest: %v", err)
		}
		if n := len(ks.PST) + len(ks.PrivacyPass); b.Issuers != n || !bytes.Equal(b.Digest, d) {
			return reject(RuleSnapshot, "snapshot says %d issuers with digest %x; the entries before it give %d issuers with digest %x", b.Issuers, b.Digest, n, d)
		}
		return accept()
	}
	return reject(RuleMalformed, "unhandled entry kind %q", e.Kind)
}

// Apply records the admitted entry e at index idx, whose leaf hash is
// leafHash. Entries must be applied in log order, each exactly once.
func (s *State) Apply(e *schema.Entry, idx uint64, leafHash [32]byte) error {
	if idx != s.size {
		return fmt.Errorf("applying entry %d to a state of %d entries", idx, s.size)
	}
	body, err := e.ParsedBody()
	if err != nil {
		return fmt.Errorf("entry %d: %w", idx, err)
	}
	s.size++
	if !e.Kind.IssuerSigned() {
		if p, ok := body.(*schema.PolicyParams); ok {
			s.params = *p
		}
		return nil
	}
	is := s.issuers[e.Issuer]
	if is == nil {
		is = &Issuer{Origin: e.Issuer}
		s.issuers[e.Issuer] = is
	}
	is.LastIndex, is.LastLeafHash, is.LastTime = idx, leafHash, e.Time
	switch b := body.(type) {
	case *schema.Registration:
		is.AccountKey = ed25519.PublicKey(b.AccountKey)
		is.Contact = b.Contact
		is.Registered = idx
		is.Expires = e.Time + s.params.RegistrationLifetime*1000
	case *schema.KeyCommitment:
		is.Commitment, is.CommitmentIndex, is.CommitmentTime = b, idx, e.Time
	}
	return nil
}

func fmtMillis(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }
