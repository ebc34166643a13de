// Package quorum parses transparency-log trust policies in the text format
// shared by Sigsum, Tessera and C2SP tlog-policy, and decides whether a
// checkpoint's verified cosignatures meet the policy's k-of-n quorum.
//
// A policy file looks like:
//
//	log keycommit.example/log+1a2b3c4d+AaBb...        https://log.example/
//	witness w1 witness1.example+5e6f7a8b+BCcD...      https://w1.example/
//	witness w2 witness2.example+0a1b2c3d+BDdE...
//	witness w3 witness3.example+9f8e7d6c+BEeF...
//	group majority 2 w1 w2 w3
//	quorum majority
//
// Keys are C2SP signed-note vkeys: Ed25519 (type 0x01) for logs; for
// witnesses, Ed25519 cosignature/v1 (type 0x04, or 0x01 read as 0x04, as
// Tessera does) or ML-DSA-44 cosignatures (type 0x06, c2sp.org/tlog-cosignature
// v1.1, verified by log/c2sp/mldsa); a group may mix them. Names are defined before use, each member appears in a group at
// most once, and `quorum none` requires no cosignatures.
//
// The package imports only the Go standard library, log/c2sp (itself
// standard library only) and log/c2sp/mldsa (circl's ML-DSA-44) so that user
// agents can embed it; notes, vkeys and signatures are read and verified by
// log/c2sp.
package quorum

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/c2sp/mldsa"
)

// Limits on a policy's size; tlog-policy recommends supporting at least 32 of
// each.
const (
	MaxLogs      = 256
	MaxWitnesses = 256
	MaxGroups    = 256
)

// NameNone is the predefined quorum name that requires no cosignatures.
const NameNone = "none"

// Log is a `log <vkey> [<url>]` line.
type Log struct {
	// VKey is the log's verifier key as written in the policy.
	VKey string
	// KeyName is the key name from the vkey; it is the log's origin.
	KeyName string
	// KeyID is the 4-byte key ID that prefixes the log's signatures.
	KeyID uint32
	// PublicKey is the log's Ed25519 public key.
	PublicKey ed25519.PublicKey
	// Verifier verifies the log's signatures.
	Verifier c2sp.Verifier
	// URL is the optional URL; its meaning is up to the application.
	URL string
}

// Witness is a `witness <name> <vkey> [<url>]` line.
type Witness struct {
	// Name is the witness's name within the policy (group membership).
	Name string
	// VKey is the witness's cosignature verifier key as written in the policy.
	VKey string
	// KeyName is the key name from the vkey: the name on its signature lines.
	KeyName string
	// KeyID is the key ID on its cosignature lines (computed with type
	// 0x04 for Ed25519 keys, 0x06 for ML-DSA-44 ones).
	KeyID uint32
	// Type is the cosignature type: c2sp.TypeCosignatureV1 (also for a
	// vkey written with type 0x01) or c2sp.TypeCosignatureMLDSA44.
	Type byte
	// PublicKey is the witness's public key: 32 bytes of Ed25519 or
	// 1,312 bytes of ML-DSA-44.
	PublicKey []byte
	// Verifier verifies the witness's cosignatures.
	Verifier c2sp.Verifier
	// URL is the optional submission prefix of the witness (tlog-witness).
	URL string
}

// Group is a `group <name> <k|any|all> <member>...` line.
type Group struct {
	Name      string
	Threshold int
	Members   []string
}

// Policy is a parsed policy file.
type Policy struct {
	logs      []Log
	witnesses []Witness
	groups    []Group
	quorum    string // NameNone or a defined witness or group name

	witnessIndex map[string]int // witness name -> index in witnesses
	groupIndex   map[string]int // group name -> index in groups
}

// Logs returns the policy's logs in file order.
func (p *Policy) Logs() []Log { return append([]Log(nil), p.logs...) }

// Witnesses returns the policy's witnesses in file order.
func (p *Policy) Witnesses() []Witness { return append([]Witness(nil), p.witnesses...) }

// Groups returns the policy's groups in file order.
func (p *Policy) Groups() []Group { return append([]Group(nil), p.groups...) }

// Quorum returns the name of the quorum component, or NameNone.
func (p *Policy) Quorum() string { return p.quorum }

// Parse parses a policy file. Every rule of C2SP tlog-policy is enforced:
// names are defined once and before use, `none` only as the quorum, group
// members listed at most once, 1 <= k <= n, exactly one quorum line, no
// duplicate public keys, only tab and newline as control characters. As
// Tessera does, text from a `#` that starts a field to the end of the line
// is a comment.
func Parse(text []byte) (*Policy, error) {
	p := &Policy{
		witnessIndex: map[string]int{},
		groupIndex:   map[string]int{},
	}
	seenKeys := map[string]string{} // raw public key -> where it was defined
	quorumSeen := false
	for i, line := range strings.Split(string(text), "\n") {
		lineNo := i + 1
		for j := 0; j < len(line); j++ {
			if c := line[j]; (c < 0x20 && c != '\t') || c == 0x7f {
				return nil, fmt.Errorf("policy line %d: control character 0x%02x not allowed", lineNo, c)
			}
		}
		fields := splitFields(line)
		for j, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:j]
				break
			}
		}
		if len(fields) == 0 {
			continue
		}
		switch kw, args := fields[0], fields[1:]; kw {
		case "log":
			if len(args) < 1 || len(args) > 2 {
				return nil, fmt.Errorf("policy line %d: want `log <vkey> [<url>]`, got %d arguments", lineNo, len(args))
			}
			if len(p.logs) >= MaxLogs {
				return nil, fmt.Errorf("policy line %d: more than %d logs", lineNo, MaxLogs)
			}
			l, err := ParseLogVKey(args[0])
			if err != nil {
				return nil, fmt.Errorf("policy line %d: log key: %w", lineNo, err)
			}
			if prev, ok := seenKeys[string(l.PublicKey)]; ok {
				return nil, fmt.Errorf("policy line %d: log key duplicates the key of %s", lineNo, prev)
			}
			seenKeys[string(l.PublicKey)] = fmt.Sprintf("line %d", lineNo)
			if len(args) == 2 {
				l.URL = args[1]
			}
			p.logs = append(p.logs, l)
		case "witness":
			if len(args) < 2 || len(args) > 3 {
				return nil, fmt.Errorf("policy line %d: want `witness <name> <vkey> [<url>]`, got %d arguments", lineNo, len(args))
			}
			if len(p.witnesses) >= MaxWitnesses {
				return nil, fmt.Errorf("policy line %d: more than %d witnesses", lineNo, MaxWitnesses)
			}
			name := args[0]
			if err := p.checkNewName(name); err != nil {
				return nil, fmt.Errorf("policy line %d: %w", lineNo, err)
			}
			w, err := ParseWitnessVKey(args[1])
			if err != nil {
				return nil, fmt.Errorf("policy line %d: witness %q key: %w", lineNo, name, err)
			}
			if prev, ok := seenKeys[string(w.PublicKey)]; ok {
				return nil, fmt.Errorf("policy line %d: witness %q key duplicates the key of %s", lineNo, name, prev)
			}
			seenKeys[string(w.PublicKey)] = fmt.Sprintf("witness %q", name)
			w.Name = name
			if len(args) == 3 {
				w.URL = args[2]
			}
			p.witnessIndex[name] = len(p.witnesses)
			p.witnesses = append(p.witnesses, w)
		case "group":
			if len(args) < 3 {
				return nil, fmt.Errorf("policy line %d: want `group <name> <k|any|all> <member>...`, got %d arguments", lineNo, len(args))
			}
			if len(p.groups) >= MaxGroups {
				return nil, fmt.Errorf("policy line %d: more than %d groups", lineNo, MaxGroups)
			}
			name, thr, members := args[0], args[1], args[2:]
			if err := p.checkNewName(name); err != nil {
				return nil, fmt.Errorf("policy line %d: %w", lineNo, err)
			}
			seen := map[string]bool{}
			for _, m := range members {
				if m == NameNone {
					return nil, fmt.Errorf("policy line %d: group %q: %q cannot be a group member", lineNo, name, NameNone)
				}
				if !p.defined(m) {
					return nil, fmt.Errorf("policy line %d: group %q: member %q is not defined on an earlier line", lineNo, name, m)
				}
				if seen[m] {
					return nil, fmt.Errorf("policy line %d: group %q: member %q listed twice", lineNo, name, m)
				}
				seen[m] = true
			}
			var k int
			switch thr {
			case "any":
				k = 1
			case "all":
				k = len(members)
			default:
				n, err := strconv.ParseUint(thr, 10, 16)
				if err != nil || (len(thr) > 1 && thr[0] == '0') {
					return nil, fmt.Errorf("policy line %d: group %q: threshold %q is not any, all or a decimal number", lineNo, name, thr)
				}
				k = int(n)
			}
			if k < 1 || k > len(members) {
				return nil, fmt.Errorf("policy line %d: group %q: threshold %d outside 1..%d (the number of members)", lineNo, name, k, len(members))
			}
			p.groupIndex[name] = len(p.groups)
			p.groups = append(p.groups, Group{Name: name, Threshold: k, Members: append([]string(nil), members...)})
		case "quorum":
			if len(args) != 1 {
				return nil, fmt.Errorf("policy line %d: want `quorum <name>`, got %d arguments", lineNo, len(args))
			}
			if quorumSeen {
				return nil, fmt.Errorf("policy line %d: a second quorum line", lineNo)
			}
			if args[0] != NameNone && !p.defined(args[0]) {
				return nil, fmt.Errorf("policy line %d: quorum %q is not defined on an earlier line", lineNo, args[0])
			}
			p.quorum = args[0]
			quorumSeen = true
		default:
			return nil, fmt.Errorf("policy line %d: unknown keyword %q", lineNo, kw)
		}
	}
	if !quorumSeen {
		return nil, errors.New("policy has no quorum line")
	}
	return p, nil
}

// splitFields splits on runs of ASCII space and tab only.
func splitFields(line string) []string {
	return strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
}

func (p *Policy) defined(name string) bool {
	_, w := p.witnessIndex[name]
	_, g := p.groupIndex[name]
	return w || g
}

func (p *Policy) checkNewName(name string) error {
	if name == NameNone {
		return fmt.Errorf("%q is a reserved name", NameNone)
	}
	if p.defined(name) {
		return fmt.Errorf("name %q defined twice", name)
	}
	return nil
}

// Satisfied reports whether the quorum is met when exactly the witnesses
// named (policy names) in cosigned have verified cosignatures.
func (p *Policy) Satisfied(cosigned map[string]bool) bool {
	if p.quorum == NameNone {
		return true
	}
	memo := map[string]bool{}
	return p.satisfied(p.quorum, cosigned, memo)
}

func (p *Policy) satisfied(name string, cosigned, memo map[string]bool) bool {
	if v, ok := memo[name]; ok {
		return v
	}
	var v bool
	if _, ok := p.witnessIndex[name]; ok {
		v = cosigned[name]
	} else if gi, ok := p.groupIndex[name]; ok {
		g := p.groups[gi]
		n := 0
		for _, m := range g.Members {
			if p.satisfied(m, cosigned, memo) {
				n++
			}
		}
		v = n >= g.Threshold
	}
	memo[name] = v
	return v
}

// ParseLogVKey parses a log's C2SP vkey `name+hex(keyID)+base64(0x01‖key)`,
// checking that the key ID matches the name and key.
func ParseLogVKey(vkey string) (Log, error) {
	k, err := c2sp.ParseVKey(vkey)
	if err != nil {
		return Log{}, err
	}
	if k.Type != c2sp.TypeEd25519 {
		return Log{}, fmt.Errorf("vkey %q has signature type 0x%02x, want Ed25519 (0x01)", vkey, k.Type)
	}
	return Log{VKey: vkey, KeyName: k.Name, KeyID: k.Hash, PublicKey: k.Key,
		Verifier: c2sp.NewEd25519Verifier(k.Name, k.Key)}, nil
}

// ParseWitnessVKey parses a witness's C2SP vkey. Type 0x04 (cosignature/v1)
// is the standard Ed25519 one; type 0x01 is accepted and read as the same
// key with type 0x04, as Tessera and formats/note do; type 0x06 is an
// ML-DSA-44 cosigner key (1,312 bytes). The returned KeyID is the one on the
// witness's cosignature lines (computed with type 0x04 or 0x06). Any other
// type is an error naming it.
func ParseWitnessVKey(vkey string) (Witness, error) {
	k, err := c2sp.ParseVKey(vkey)
	if err != nil {
		return Witness{}, err
	}
	var v c2sp.Verifier
	switch k.Type {
	case c2sp.TypeCosignatureV1, c2sp.TypeEd25519:
		k.Type, v = c2sp.TypeCosignatureV1, c2sp.NewCosignatureVerifier(k.Name, k.Key)
	case c2sp.TypeCosignatureMLDSA44:
		if v, err = mldsa.NewVerifier(k.Name, k.Key); err != nil {
			return Witness{}, fmt.Errorf("vkey %q: %w", vkey, err)
		}
	default:
		return Witness{}, fmt.Errorf("vkey %q has unknown signature type 0x%02x, want cosignature/v1 (0x04) or ML-DSA-44 (0x06)", vkey, k.Type)
	}
	return Witness{VKey: vkey, KeyName: k.Name, KeyID: v.KeyHash(), Type: k.Type, PublicKey: k.Key, Verifier: v}, nil
}

// Cosignature is a verified cosignature from a witness in the policy.
type Cosignature struct {
	// Witness is the witness's policy name.
	Witness string
	// Timestamp is the cosignature's POSIX timestamp (seconds).
	Timestamp uint64
}

// Result is what Check found on a note.
type Result struct {
	// Origin is the checkpoint's origin line.
	Origin string
	// Log is the VKey of the policy log whose signature verified, or ""
	// if the policy lists no logs.
	Log string
	// Cosignatures lists each witness with a valid cosignature, once, in
	// policy order.
	Cosignatures []Cosignature
	// QuorumMet reports whether the cosignatures satisfy the quorum.
	QuorumMet bool
}

// ErrQuorumNotMet is returned (wrapped) by Verify when signatures are valid
// but too few witnesses cosigned.
var ErrQuorumNotMet = errors.New("witness quorum not met")

// Check verifies the cosignatures on a signed checkpoint note against the
// policy's witnesses and evaluates the quorum. If the policy lists logs, a
// valid signature from one of them whose key name equals the checkpoint's
// origin is required. Signature lines from unknown keys are ignored, as
// signed-note requires; a line that matches a known key (name and key ID)
// but does not verify is an error.
func (p *Policy) Check(note []byte) (*Result, error) {
	n, err := c2sp.SplitNote(note)
	if err != nil {
		return nil, fmt.Errorf("malformed note: %w", err)
	}
	text, sigs := n.Text, n.Sigs
	origin, _, _ := strings.Cut(string(text), "\n")
	if bytes.Count(text, []byte("\n")) < 3 || origin == "" {
		return nil, errors.New("malformed checkpoint: fewer than three lines or empty origin")
	}
	res := &Result{Origin: origin}
	if len(p.logs) > 0 {
		for _, s := range sigs {
			for _, l := range p.logs {
				if s.Name != l.KeyName || s.Hash != l.KeyID {
					continue
				}
				if !l.Verifier.Verify(text, s.Sig) {
					return nil, fmt.Errorf("invalid signature from log key %s", l.VKey)
				}
				if l.KeyName != origin {
					return nil, fmt.Errorf("checkpoint origin %q differs from the key name of log %s", origin, l.VKey)
				}
				res.Log = l.VKey
			}
		}
		if res.Log == "" {
			return nil, errors.New("checkpoint has no signature from a log in the policy")
		}
	}
	cosigned := map[string]bool{}
	stamps := map[string]uint64{}
	for _, s := range sigs {
		for _, w := range p.witnesses {
			if s.Name != w.KeyName || s.Hash != w.KeyID {
				continue
			}
			ts, err := c2sp.CosignatureTimestamp(s.Sig)
			if err != nil || !w.Verifier.Verify(text, s.Sig) {
				return nil, fmt.Errorf("invalid cosignature from witness %q (%s)", w.Name, w.VKey)
			}
			if !cosigned[w.Name] || ts > stamps[w.Name] {
				stamps[w.Name] = ts
			}
			cosigned[w.Name] = true
		}
	}
	for _, w := range p.witnesses {
		if cosigned[w.Name] {
			res.Cosignatures = append(res.Cosignatures, Cosignature{Witness: w.Name, Timestamp: stamps[w.Name]})
		}
	}
	res.QuorumMet = p.Satisfied(cosigned)
	return res, nil
}

// Verify is Check that also fails, with an error wrapping ErrQuorumNotMet,
// when the quorum is not met.
func (p *Policy) Verify(note []byte) (*Result, error) {
	res, err := p.Check(note)
	if err != nil {
		return nil, err
	}
	if !res.QuorumMet {
		names := make([]string, len(res.Cosignatures))
		for i, c := range res.Cosignatures {
			names[i] = c.Witness
		}
		return res, fmt.Errorf("%w: quorum %q, valid cosignatures from %d witnesses %v", ErrQuorumNotMet, p.quorum, len(names), names)
	}
	return res, nil
}
