package policy

import (
	"sort"

	"github.com/keycommit/keycommit/schema"
)

// IssuerStatus is what `keycommit issuer status` and GET /v1/issuers/<origin>
// show: an issuer's state and what the policy would allow it next, as of
// a time. Times are milliseconds since the Unix epoch; a zero time means
// "no constraint".
type IssuerStatus struct {
	Origin     string `json:"origin"`
	AccountKey []byte `json:"account_key"`
	Contact    string `json:"contact"`
	// Registered is the index of the registration in force; it lapses at
	// RegistrationExpires.
	Registered          uint64 `json:"registered"`
	RegistrationExpires int64  `json:"registration_expires"`
	RegistrationLapsed  bool   `json:"registration_lapsed"`
	// LastIndex, LastLeafHash and LastTime describe the issuer's latest
	// entry: the next statement's prev is LastLeafHash.
	LastIndex    uint64 `json:"last_index"`
	LastLeafHash []byte `json:"last_leaf_hash"`
	LastTime     int64  `json:"last_time"`
	// Commitment is the index of the latest accepted key commitment.
	Commitment     *uint64 `json:"commitment,omitempty"`
	CommitmentTime int64   `json:"commitment_time,omitempty"`
	// CommitmentIDs is the highest id accepted per PST protocol version,
	// sorted by version: the next commitment must use a larger one.
	CommitmentIDs []VersionID `json:"commitment_ids"`
	// LastRotation is the latest commitment that added a key.
	LastRotation *Event `json:"last_rotation,omitempty"`
	// NextRotation is the earliest time a normal (non-emergency) rotation
	// is allowed; 0 before the first commitment.
	NextRotation int64 `json:"next_rotation"`
	// OpenIncident is the index of the latest emergency while it has no
	// final report: no further emergency is allowed until it has one.
	OpenIncident  *uint64    `json:"open_incident,omitempty"`
	LastEmergency *Emergency `json:"last_emergency,omitempty"`
	// EmergenciesInWindow counts emergencies in the rolling
	// emergency_window ending at the status time; NextEmergency is the
	// earliest time the rate limit allows another (0: now; -1: never, as
	// max_emergencies is 0), not counting an open incident.
	EmergenciesInWindow int   `json:"emergencies_in_window"`
	NextEmergency       int64 `json:"next_emergency"`
	// KeysInWindow counts keys added in the rolling key_window ending at
	// the status time; KeysAllowedNow is how many more may be added now.
	KeysInWindow   int `json:"keys_in_window"`
	KeysAllowedNow int `json:"keys_allowed_now"`
	// Keys are the keys of the latest commitment.
	Keys []KeyStatus `json:"keys"`
	// Control is the latest proof of origin control the log recorded for
	// the issuer (at entry ControlIndex); absent for legacy registrations.
	Control      *schema.OriginControl `json:"control,omitempty"`
	ControlIndex *uint64               `json:"control_index,omitempty"`
	// Reclaims are the registrations by which a new account key took the
	// origin over after a lapse, oldest first.
	Reclaims []Reclaim `json:"reclaims,omitempty"`
	// Params are the policy parameters in force.
	Params schema.PolicyParams `json:"params"`
	// Now is the time the status was computed for.
	Now int64 `json:"now"`
}

// VersionID is a PST protocol version and its highest commitment id.
type VersionID struct {
	Version string `json:"version"`
	CommitmentID
}

// KeyStatus describes one committed key.
type KeyStatus struct {
	// ID is the key's schema.KeyID in hex.
	ID       string `json:"id"`
	Protocol string `json:"protocol"`
	Label    string `json:"label"`
	// Expiry is a PST key's expiry in microseconds since the epoch.
	Expiry    uint64 `json:"expiry,omitempty"`
	NotBefore *int64 `json:"not_before,omitempty"`
}

// Status returns the status of the issuer with the given origin as of
// time now (ms), or false if the origin is not registered.
func (s *State) Status(origin string, now int64) (*IssuerStatus, bool) {
	is, ok := s.issuers[origin]
	if !ok {
		return nil, false
	}
	p := s.params
	st := &IssuerStatus{
		Origin:              is.Origin,
		AccountKey:          append([]byte(nil), is.AccountKey...),
		Contact:             is.Contact,
		Registered:          is.Registered,
		RegistrationExpires: is.Expires,
		RegistrationLapsed:  now >= is.Expires,
		LastIndex:           is.LastIndex,
		LastLeafHash:        append([]byte(nil), is.LastLeafHash[:]...),
		LastTime:            is.LastTime,
		CommitmentIDs:       []VersionID{},
		Keys:                []KeyStatus{},
		Reclaims:            append([]Reclaim(nil), is.Reclaims...),
		Params:              p,
		Now:                 now,
	}
	if is.Control != nil {
		c, i := *is.Control, is.ControlIndex
		st.Control, st.ControlIndex = &c, &i
	}
	if is.Commitment != nil {
		ci := is.CommitmentIndex
		st.Commitment, st.CommitmentTime = &ci, is.CommitmentTime
	}
	for v, id := range is.IDs {
		st.CommitmentIDs = append(st.CommitmentIDs, VersionID{Version: v, CommitmentID: id})
	}
	sort.Slice(st.CommitmentIDs, func(i, j int) bool { return st.CommitmentIDs[i].Version < st.CommitmentIDs[j].Version })
	if is.HasRotated {
		lr := is.LastRotation
		st.LastRotation = &lr
		st.NextRotation = lr.Time + p.MinRotationInterval*1000
	}
	if le := is.LastEmergency; le != nil {
		c := *le
		st.LastEmergency = &c
		if !le.Finalized {
			idx := le.Index
			st.OpenIncident = &idx
		}
	}
	w := p.EmergencyWindow * 1000
	in := eventsSince(is.Emergencies, now-w)
	st.EmergenciesInWindow = len(in)
	if len(in) >= p.MaxEmergencies && p.MaxEmergencies > 0 {
		st.NextEmergency = in[len(in)-p.MaxEmergencies].Time + w
	} else if p.MaxEmergencies == 0 {
		st.NextEmergency = -1
	}
	kin := introsSince(is.KeyIntros, now-p.KeyWindow*1000)
	for _, ki := range kin {
		st.KeysInWindow += ki.Count
	}
	st.KeysAllowedNow = max(0, p.MaxKeysPerWindow-st.KeysInWindow)
	for _, k := range is.Keys {
		st.Keys = append(st.Keys, KeyStatus{ID: k.ID.String(), Protocol: k.Protocol, Label: k.Label, Expiry: k.Expiry, NotBefore: k.NotBefore})
	}
	return st, true
}
