package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/keycommit/keycommit/schema"
)

// stateCodecVersion is the version of the State encoding below.
const stateCodecVersion = 1

// stateWire is the encoded form of State: every field, issuers sorted by
// origin, so that equal states encode to equal bytes.
type stateWire struct {
	V       int                 `json:"v"`
	Size    uint64              `json:"size"`
	Params  schema.PolicyParams `json:"params"`
	Issuers []*Issuer           `json:"issuers"`
}

// MarshalBinary encodes the state deterministically (equal states give
// equal bytes), so that a monitor can checkpoint its replay and resume it
// later with UnmarshalState, ending where an uninterrupted replay would.
func (s *State) MarshalBinary() ([]byte, error) {
	w := stateWire{V: stateCodecVersion, Size: s.size, Params: s.params, Issuers: make([]*Issuer, 0, len(s.issuers))}
	for _, o := range s.Origins() {
		w.Issuers = append(w.Issuers, s.issuers[o])
	}
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
	st := &State{params: w.Params, size: w.Size, issuers: make(map[string]*Issuer, len(w.Issuers))}
	if !sort.SliceIsSorted(w.Issuers, func(i, j int) bool { return w.Issuers[i].Origin < w.Issuers[j].Origin }) {
		return nil, errors.New("policy state: issuers are not sorted by origin")
	}
	for _, is := range w.Issuers {
		if is == nil || is.Origin == "" {
			return nil, errors.New("policy state: an issuer has no origin")
		}
		if _, dup := st.issuers[is.Origin]; dup {
			return nil, fmt.Errorf("policy state: issuer %s appears twice", is.Origin)
		}
		if is.LastIndex >= w.Size {
			return nil, fmt.Errorf("policy state: issuer %s's latest entry %d is not below the state's size %d", is.Origin, is.LastIndex, w.Size)
		}
		if is.Commitment != nil {
			// Parse the commitment again through schema so that it is
			// validated and carries whatever schema derives on parsing.
			c, err := reparseCommitment(is.Commitment)
			if err != nil {
				return nil, fmt.Errorf("policy state: issuer %s's commitment: %w", is.Origin, err)
			}
			is.Commitment = c
		}
		st.issuers[is.Origin] = is
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
