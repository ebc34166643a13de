package policy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/keycommit/keycommit/schema"
)

// stateCodecVersion is the version of the State encoding below.
const stateCodecVersion = 1

// stateWire is the encoded form of State: every field, issuers sorted by
// origin and keys by id, so that equal states encode to equal bytes.
type stateWire struct {
	V       int                 `json:"v"`
	Size    uint64              `json:"size"`
	Params  schema.PolicyParams `json:"params"`
	Issuers []issuerWire        `json:"issuers"`
	Keys    []keyRecordWire     `json:"keys"`
	// Log and EntryVersion: see State.log and State.version (absent in
	// states stored before entry format 2).
	Log          string `json:"log,omitempty"`
	EntryVersion int    `json:"entry_version,omitempty"`
}

// issuerWire is Issuer without Keys, which is derived from Commitment.
type issuerWire struct {
	Origin          string                  `json:"origin"`
	AccountKey      ed25519.PublicKey       `json:"account_key"`
	Contact         string                  `json:"contact"`
	Registered      uint64                  `json:"registered"`
	Expires         int64                   `json:"expires"`
	LastIndex       uint64                  `json:"last_index"`
	LastLeafHash    []byte                  `json:"last_leaf_hash"`
	LastTime        int64                   `json:"last_time"`
	Commitment      *schema.KeyCommitment   `json:"commitment"`
	CommitmentIndex uint64                  `json:"commitment_index"`
	CommitmentTime  int64                   `json:"commitment_time"`
	IDs             map[string]CommitmentID `json:"ids"`
	LastRotation    Event                   `json:"last_rotation"`
	HasRotated      bool                    `json:"has_rotated"`
	Emergencies     []Event                 `json:"emergencies"`
	LastEmergency   *Emergency              `json:"last_emergency"`
	KeyIntros       []KeyIntro              `json:"key_intros"`
	Control         *schema.OriginControl   `json:"control,omitempty"`
	ControlIndex    uint64                  `json:"control_index,omitempty"`
	Reclaims        []Reclaim               `json:"reclaims,omitempty"`
}

type keyRecordWire struct {
	ID        string `json:"id"` // hex
	Issuer    string `json:"issuer"`
	First     uint64 `json:"first"`
	Retired   bool   `json:"retired"`
	RetiredAt uint64 `json:"retired_at"`
}

// MarshalBinary encodes the state deterministically (equal states give
// equal bytes), so that a monitor can checkpoint its replay and resume it
// later with UnmarshalState, ending where an uninterrupted replay would.
func (s *State) MarshalBinary() ([]byte, error) {
	w := stateWire{V: stateCodecVersion, Size: s.size, Params: s.params, Log: s.log, EntryVersion: s.version,
		Issuers: make([]issuerWire, 0, len(s.issuers)), Keys: make([]keyRecordWire, 0, len(s.keys))}
	for _, o := range s.Origins() {
		is := s.issuers[o]
		w.Issuers = append(w.Issuers, issuerWire{
			Origin: is.Origin, AccountKey: is.AccountKey, Contact: is.Contact,
			Registered: is.Registered, Expires: is.Expires,
			LastIndex: is.LastIndex, LastLeafHash: is.LastLeafHash[:], LastTime: is.LastTime,
			Commitment: is.Commitment, CommitmentIndex: is.CommitmentIndex, CommitmentTime: is.CommitmentTime,
			IDs: is.IDs, LastRotation: is.LastRotation, HasRotated: is.HasRotated,
			Emergencies: is.Emergencies, LastEmergency: is.LastEmergency, KeyIntros: is.KeyIntros,
			Control: is.Control, ControlIndex: is.ControlIndex, Reclaims: is.Reclaims,
		})
	}
	for id, r := range s.keys {
		w.Keys = append(w.Keys, keyRecordWire{ID: hex.EncodeToString(id[:]), Issuer: r.issuer,
			First: r.first, Retired: r.retired, RetiredAt: r.retiredAt})
	}
	sort.Slice(w.Keys, func(i, j int) bool { return w.Keys[i].ID < w.Keys[j].ID })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&w); err != nil {
		return nil, fmt.Errorf("couldn't encode the policy state: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalState decodes a state encoded by MarshalBinary.
func UnmarshalState(b []byte) (*State, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w stateWire
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("couldn't decode the policy state: %w", err)
	}
	if dec.More() {
		return nil, errors.New("couldn't decode the policy state: trailing data")
	}
	if w.V != stateCodecVersion {
		return nil, fmt.Errorf("policy state encoding version %d, want %d", w.V, stateCodecVersion)
	}
	st := &State{params: w.Params, size: w.Size, log: w.Log, version: w.EntryVersion,
		issuers: make(map[string]*Issuer, len(w.Issuers)), keys: make(map[schema.KeyID]*keyRecord, len(w.Keys))}
	for i, iw := range w.Issuers {
		if iw.Origin == "" {
			return nil, errors.New("policy state: an issuer has no origin")
		}
		if i > 0 && w.Issuers[i-1].Origin >= iw.Origin {
			return nil, fmt.Errorf("policy state: issuers not sorted or repeated at %s", iw.Origin)
		}
		if iw.LastIndex >= w.Size {
			return nil, fmt.Errorf("policy state: issuer %s's latest entry %d is not below the state's size %d", iw.Origin, iw.LastIndex, w.Size)
		}
		if len(iw.LastLeafHash) != 32 {
			return nil, fmt.Errorf("policy state: issuer %s's last leaf hash is %d bytes, want 32", iw.Origin, len(iw.LastLeafHash))
		}
		is := &Issuer{Origin: iw.Origin, AccountKey: iw.AccountKey, Contact: iw.Contact,
			Registered: iw.Registered, Expires: iw.Expires,
			LastIndex: iw.LastIndex, LastTime: iw.LastTime,
			CommitmentIndex: iw.CommitmentIndex, CommitmentTime: iw.CommitmentTime,
			IDs: iw.IDs, LastRotation: iw.LastRotation, HasRotated: iw.HasRotated,
			Emergencies: iw.Emergencies, LastEmergency: iw.LastEmergency, KeyIntros: iw.KeyIntros,
			Control: iw.Control, ControlIndex: iw.ControlIndex, Reclaims: iw.Reclaims}
		copy(is.LastLeafHash[:], iw.LastLeafHash)
		if iw.Commitment != nil {
			// Parse the commitment again through schema so that it is
			// validated and carries what schema derives when parsing.
			c, err := reparseCommitment(iw.Commitment)
			if err != nil {
				return nil, fmt.Errorf("policy state: issuer %s's commitment: %w", iw.Origin, err)
			}
			if is.Keys, err = c.Keys(); err != nil {
				return nil, fmt.Errorf("policy state: issuer %s's commitment keys: %w", iw.Origin, err)
			}
			is.Commitment = c
		}
		st.issuers[is.Origin] = is
	}
	for i, kw := range w.Keys {
		var id schema.KeyID
		if b, err := hex.DecodeString(kw.ID); err != nil || len(b) != len(id) {
			return nil, fmt.Errorf("policy state: key id %q is not %d hex bytes", kw.ID, len(id))
		} else {
			copy(id[:], b)
		}
		if i > 0 && w.Keys[i-1].ID >= kw.ID {
			return nil, fmt.Errorf("policy state: keys not sorted or repeated at %s", kw.ID)
		}
		if st.issuers[kw.Issuer] == nil {
			return nil, fmt.Errorf("policy state: key %s belongs to unknown issuer %q", kw.ID, kw.Issuer)
		}
		st.keys[id] = &keyRecord{issuer: kw.Issuer, first: kw.First, retired: kw.Retired, retiredAt: kw.RetiredAt}
	}
	return st, nil
}

func reparseCommitment(c *schema.KeyCommitment) (*schema.KeyCommitment, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	v, err := schema.ParseBody(schema.KindKeyCommitment, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	if err != nil {
		return nil, err
	}
	return v.(*schema.KeyCommitment), nil
}
