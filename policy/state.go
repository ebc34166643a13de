package policy

import (
	"crypto/ed25519"
	"fmt"
	"sort"

	"github.com/keycommit/keycommit/schema"
)

// Event is an entry of the log that a rule remembers.
type Event struct {
	Index uint64 `json:"index"`
	Time  int64  `json:"time"` // ms since the epoch
}

// Emergency is an emergency rotation and the state of its final report.
type Emergency struct {
	Event
	// Finalized is set once an incident_report entry gave the final
	// report; Final is that entry's index.
	Finalized bool   `json:"finalized"`
	Final     uint64 `json:"final,omitempty"`
}

// KeyIntro records a commitment that added Count keys new to the issuer.
type KeyIntro struct {
	Event
	Count int `json:"count"`
}

// CommitmentID is the highest PST commitment id accepted for one protocol
// version, and the index of the commitment that set it.
type CommitmentID struct {
	ID    uint32 `json:"id"`
	Index uint64 `json:"index"`
}

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
	// Keys are the keys of Commitment, in schema's order.
	Keys []schema.CommittedKey
	// IDs holds, per PST protocol version, the highest commitment id
	// accepted.
	IDs map[string]CommitmentID
	// LastRotation is the latest commitment that added a key (the first
	// commitment counts); HasRotated is false before any commitment.
	LastRotation Event
	HasRotated   bool
	// Emergencies are the issuer's emergency rotations of the last
	// MaxWindow, oldest first. LastEmergency is the latest one ever.
	Emergencies   []Event
	LastEmergency *Emergency
	// KeyIntros are the commitments of the last MaxWindow that added
	// keys, oldest first.
	KeyIntros []KeyIntro
	// Control is the latest proof of origin control the log recorded
	// for the issuer (its first registration, a renewal after a lapse or
	// a reclaim), and ControlIndex its entry; nil for issuers registered
	// by legacy entries.
	Control      *schema.OriginControl
	ControlIndex uint64
	// Reclaims are the registrations by which a new account key took the
	// origin over after its registration lapsed, oldest first.
	Reclaims []Reclaim
}

// Reclaim is a registration by which a new account key took an origin
// over after the registration in force lapsed, proving control of the
// origin: the history before it stays in the log, the keys committed
// before it are retired.
type Reclaim struct {
	Event
	// Lapsed is the index of the registration that had lapsed.
	Lapsed uint64 `json:"lapsed"`
	// PreviousKey is the account key in force before.
	PreviousKey []byte `json:"previous_key"`
}

// clone returns a deep copy of the mutable parts of is (the commitment is
// never modified once applied and is shared).
func (is *Issuer) clone() *Issuer {
	c := *is
	c.AccountKey = append(ed25519.PublicKey(nil), is.AccountKey...)
	c.Keys = append([]schema.CommittedKey(nil), is.Keys...)
	c.IDs = make(map[string]CommitmentID, len(is.IDs))
	for k, v := range is.IDs {
		c.IDs[k] = v
	}
	c.Emergencies = append([]Event(nil), is.Emergencies...)
	c.KeyIntros = append([]KeyIntro(nil), is.KeyIntros...)
	c.Reclaims = append([]Reclaim(nil), is.Reclaims...)
	if is.LastEmergency != nil {
		le := *is.LastEmergency
		c.LastEmergency = &le
	}
	return &c
}

// keyRecord remembers who committed a key and whether it was retired.
type keyRecord struct {
	issuer    string
	first     uint64
	retired   bool
	retiredAt uint64
}

// State is the log state the policy needs: every issuer's state, every key
// ever committed, and the parameters in force. Build it by calling Apply
// on every admitted entry in log order. A State is not safe for concurrent
// use; Evaluate only reads it.
type State struct {
	params  schema.PolicyParams
	issuers map[string]*Issuer
	keys    map[schema.KeyID]*keyRecord
	size    uint64
	// log is the log the state is bound to ("" for none): only
	// statements signed for it are admitted (rule log-binding).
	log string
	// version is the highest entry version applied.
	version int
}

// NewState returns the state of an empty log bound to no log: it judges
// legacy (version 1) entries, but refuses every issuer statement of
// version 2 (rule log-binding), as it cannot tell which log they must be
// for. A log and a monitor use NewLogState.
func NewState() *State { return NewLogState("") }

// NewLogState returns the state of an empty log whose checkpoint origin
// is log: issuer statements of version 2 must be signed for it.
func NewLogState(log string) *State {
	return &State{params: DefaultParams(), issuers: map[string]*Issuer{}, keys: map[schema.KeyID]*keyRecord{}, log: log}
}

// Log returns the log the state is bound to ("" for none).
func (s *State) Log() string { return s.log }

// BindLog binds a state to the log with checkpoint origin log, for a
// state decoded by UnmarshalState from a version that did not record
// it. It refuses to rebind a state bound to another log.
func (s *State) BindLog(log string) error {
	if s.log != "" && s.log != log {
		return fmt.Errorf("policy state is bound to log %q, not %q", s.log, log)
	}
	s.log = log
	return nil
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
	return *is.clone(), true
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

// KeyCount returns the number of distinct keys ever committed.
func (s *State) KeyCount() int { return len(s.keys) }

// KeyOwner reports which issuer committed the key id, the index where it
// first appeared, and whether (and where) it was retired.
func (s *State) KeyOwner(id schema.KeyID) (issuer string, first uint64, retired bool, retiredAt uint64, ok bool) {
	r := s.keys[id]
	if r == nil {
		return "", 0, false, 0, false
	}
	return r.issuer, r.first, r.retired, r.retiredAt, true
}

// KeySet returns the key set as of time now (ms): every issuer's latest
// accepted commitment whose registration has not lapsed. Incident reports
// are not part of it.
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

// Apply records the admitted entry e at index idx, whose leaf hash is
// leafHash. Entries must be applied in log order, each exactly once, and
// only after Evaluate accepted them; Apply returns an error, and leaves the
// state unchanged, if e cannot be applied at all (wrong index, malformed,
// unknown issuer, a key owned by another issuer).
func (s *State) Apply(e *schema.Entry, idx uint64, leafHash [32]byte) error {
	if idx != s.size {
		return fmt.Errorf("applying entry %d to a state of %d entries", idx, s.size)
	}
	body, err := e.ParsedBody()
	if err != nil {
		return fmt.Errorf("entry %d: %w", idx, err)
	}
	if !e.Kind.IssuerSigned() {
		if p, ok := body.(*schema.PolicyParams); ok {
			if err := ValidateParams(*p); err != nil {
				return fmt.Errorf("entry %d: %w", idx, err)
			}
			s.params = *p
		}
		s.version = max(s.version, e.V)
		s.size++
		return nil
	}
	is := s.issuers[e.Issuer]
	if is == nil {
		if _, ok := body.(*schema.Registration); !ok {
			return fmt.Errorf("entry %d: %s for unregistered issuer %s", idx, e.Kind, e.Issuer)
		}
		is = &Issuer{Origin: e.Issuer, IDs: map[string]CommitmentID{}}
	}
	var apply func()
	switch b := body.(type) {
	case *schema.Registration:
		c := claimOf(s, e, b)
		apply = func() {
			if c == claimReclaim {
				s.reclaim(is, e, idx)
			}
			if c != claimNone && e.Control != nil {
				ctl := *e.Control
				is.Control, is.ControlIndex = &ctl, idx
			}
			is.AccountKey = append(ed25519.PublicKey(nil), b.AccountKey...)
			is.Contact = b.Contact
			is.Registered = idx
			is.Expires = e.Time + s.params.RegistrationLifetime*1000
		}
	case *schema.KeyCommitment:
		if apply, err = s.applyCommitment(is, e, idx, b); err != nil {
			return fmt.Errorf("entry %d: %w", idx, err)
		}
	case *schema.IncidentFinal:
		le := is.LastEmergency
		if le == nil || le.Index != b.Emergency || le.Finalized {
			return fmt.Errorf("entry %d: final report for index %d answers no open emergency of %s", idx, b.Emergency, e.Issuer)
		}
		apply = func() { le.Finalized, le.Final = true, idx }
	default:
		return fmt.Errorf("entry %d: unhandled entry kind %q", idx, e.Kind)
	}
	// Nothing has changed yet; from here on Apply cannot fail.
	apply()
	s.issuers[e.Issuer] = is
	is.LastIndex, is.LastLeafHash, is.LastTime = idx, leafHash, e.Time
	s.version = max(s.version, e.V)
	s.size++
	return nil
}

// reclaim records that the registration e at idx takes the origin of is
// over with a new account key: the previous owner's commitment leaves the
// key set and its keys are retired (they cannot come back), and the
// rotation, emergency and key-window history starts afresh, as for a new
// issuer. Commitment ids still only increase.
func (s *State) reclaim(is *Issuer, e *schema.Entry, idx uint64) {
	is.Reclaims = append(is.Reclaims, Reclaim{Event: Event{Index: idx, Time: e.Time}, Lapsed: is.Registered,
		PreviousKey: append([]byte(nil), is.AccountKey...)})
	for _, k := range is.Keys {
		if r := s.keys[k.ID]; r != nil && !r.retired {
			r.retired, r.retiredAt = true, idx
		}
	}
	is.Commitment, is.Keys, is.CommitmentIndex, is.CommitmentTime = nil, nil, 0, 0
	is.LastRotation, is.HasRotated = Event{}, false
	is.Emergencies, is.LastEmergency, is.KeyIntros = nil, nil, nil
}

func (s *State) applyCommitment(is *Issuer, e *schema.Entry, idx uint64, c *schema.KeyCommitment) (func(), error) {
	keys, err := c.Keys()
	if err != nil {
		return nil, err
	}
	current := keySet(is.Keys)
	next := keySet(keys)
	var added []schema.KeyID
	for _, k := range keys {
		if current[k.ID] || containsID(added, k.ID) {
			continue
		}
		if r := s.keys[k.ID]; r != nil && r.issuer != is.Origin {
			return nil, fmt.Errorf("key %s is already committed by %s", k.ID.Short(), r.issuer)
		}
		added = append(added, k.ID)
	}
	return func() {
		for _, k := range is.Keys {
			if !next[k.ID] {
				if r := s.keys[k.ID]; r != nil && !r.retired {
					r.retired, r.retiredAt = true, idx
				}
			}
		}
		for _, id := range added {
			if r := s.keys[id]; r != nil {
				// Evaluate refuses this (retired-key); a state built by
				// Apply alone still records the key as current.
				r.retired, r.retiredAt = false, 0
				continue
			}
			s.keys[id] = &keyRecord{issuer: is.Origin, first: idx}
		}
		ev := Event{Index: idx, Time: e.Time}
		if len(added) > 0 {
			is.LastRotation, is.HasRotated = ev, true
			is.KeyIntros = append(is.KeyIntros, KeyIntro{Event: ev, Count: len(added)})
		}
		if c.Emergency != nil {
			is.Emergencies = append(is.Emergencies, ev)
			is.LastEmergency = &Emergency{Event: ev}
		}
		for _, v := range c.PST.Versions() {
			if id := c.PST[v].ID; id > is.IDs[v].ID {
				is.IDs[v] = CommitmentID{ID: id, Index: idx}
			}
		}
		is.Commitment, is.CommitmentIndex, is.CommitmentTime = c, idx, e.Time
		is.Keys = keys
		// Forget events that no window can reach any more: every later
		// entry of this issuer has a time >= e.Time, and windows are at
		// most MaxWindow.
		horizon := e.Time - MaxWindow*1000
		is.Emergencies = dropBefore(is.Emergencies, func(ev Event) bool { return ev.Time <= horizon })
		is.KeyIntros = dropBefore(is.KeyIntros, func(ki KeyIntro) bool { return ki.Time <= horizon })
	}, nil
}

func dropBefore[T any](s []T, old func(T) bool) []T {
	i := 0
	for i < len(s) && old(s[i]) {
		i++
	}
	if i == 0 {
		return s
	}
	return append([]T(nil), s[i:]...)
}

func keySet(keys []schema.CommittedKey) map[schema.KeyID]bool {
	m := make(map[schema.KeyID]bool, len(keys))
	for _, k := range keys {
		m[k.ID] = true
	}
	return m
}

func containsID(ids []schema.KeyID, id schema.KeyID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
