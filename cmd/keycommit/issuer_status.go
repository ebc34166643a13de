package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/schema"
)

// issuerStatusResult is `issuer status --json`
// (schema/jsonschema/cli/issuer-status.json): the log's answer (GET
// /v1/issuers/<origin>) and what of it was verified.
type issuerStatusResult struct {
	*api.Issuer
	Verified issuerVerified `json:"verified"`
	// commitment is the body of the latest key commitment, verified.
	commitment []byte
}

// issuerVerified is what `issuer status` checked against the log's
// signed checkpoint before printing.
type issuerVerified struct {
	// CheckpointSize is the size of the checkpoint, signed by the log key,
	// that every checked entry is proven to be included in.
	CheckpointSize uint64 `json:"checkpoint_size"`
	// Entries are the indexes of the entries fetched, proven included and
	// compared with the status: the registration in force, the latest
	// entry and the latest key commitment.
	Entries []uint64 `json:"entries"`
}

// fetchIssuerStatus fetches the log's view of origin and verifies it: the
// checkpoint with the log key, then the registration in force, the latest
// entry and the latest key commitment the status names, each included in
// that checkpoint and saying what the status says (origin, kind, account
// key, contact, leaf hash, time).
func fetchIssuerStatus(ctx context.Context, c *client.Client, origin string) (*issuerStatusResult, error) {
	cp, _, err := c.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't verify the log's checkpoint with the log key: %w", err)
	}
	res, err := c.Issuer(ctx, origin)
	if err != nil {
		return nil, fmt.Errorf("couldn't fetch the log's view of %s: %w", origin, err)
	}
	st := res.Status
	var commitment []byte
	if st.Origin != origin {
		return nil, fmt.Errorf("asked the log about %s, it answered about %s", origin, st.Origin)
	}
	checks := []struct {
		index uint64
		what  string
		check func(e *schema.Entry, leaf []byte) error
	}{
		{st.Registered, "registration in force", func(e *schema.Entry, _ []byte) error {
			b, err := e.ParsedBody()
			if err != nil {
				return err
			}
			reg, ok := b.(*schema.Registration)
			if !ok || e.Kind != schema.KindRegistration {
				return fmt.Errorf("it is a %s entry", e.Kind)
			}
			if !bytes.Equal(reg.AccountKey, st.AccountKey) || reg.Contact != st.Contact {
				return fmt.Errorf("it registers account key %s, contact %s; the status says %s, %s",
					base64.StdEncoding.EncodeToString(reg.AccountKey), reg.Contact, base64.StdEncoding.EncodeToString(st.AccountKey), st.Contact)
			}
			return nil
		}},
		{st.LastIndex, "latest entry", func(e *schema.Entry, leaf []byte) error {
			if !bytes.Equal(leaf, st.LastLeafHash) || e.Time != st.LastTime {
				return fmt.Errorf("its leaf hash is %s at time %d; the status says %s at %d",
					base64.StdEncoding.EncodeToString(leaf), e.Time, base64.StdEncoding.EncodeToString(st.LastLeafHash), st.LastTime)
			}
			return nil
		}},
	}
	if st.Commitment != nil {
		checks = append(checks, struct {
			index uint64
			what  string
			check func(e *schema.Entry, leaf []byte) error
		}{*st.Commitment, "latest key commitment", func(e *schema.Entry, _ []byte) error {
			if e.Kind != schema.KindKeyCommitment || e.Time != st.CommitmentTime {
				return fmt.Errorf("it is a %s entry at time %d; the status says a key commitment at %d", e.Kind, e.Time, st.CommitmentTime)
			}
			commitment = e.Body
			return nil
		}})
	}
	out := &issuerStatusResult{Issuer: res}
	for _, ch := range checks {
		if ch.index >= cp.Size {
			// The status may be a moment ahead of the checkpoint.
			if cp, _, err = c.Checkpoint(ctx); err != nil {
				return nil, fmt.Errorf("couldn't verify the log's checkpoint with the log key: %w", err)
			}
			if ch.index >= cp.Size {
				return nil, fmt.Errorf("the status names entry %d (%s), which is not in the log's checkpoint of size %d", ch.index, ch.what, cp.Size)
			}
		}
	}
	for _, ch := range checks {
		if !slices.Contains(res.Entries, ch.index) {
			return nil, fmt.Errorf("the status names entry %d (%s), which its list of the issuer's entries lacks", ch.index, ch.what)
		}
		leaf, err := c.InclusionProof(ctx, cp, ch.index)
		if err != nil {
			return nil, fmt.Errorf("inclusion check of entry %d (%s) in the checkpoint of size %d failed: %w", ch.index, ch.what, cp.Size, err)
		}
		es, err := c.Entries(ctx, ch.index, ch.index+1)
		if err != nil {
			return nil, fmt.Errorf("couldn't fetch entry %d (%s): %w", ch.index, ch.what, err)
		}
		if !bytes.Equal(es[0].LeafHash, leaf) {
			return nil, fmt.Errorf("entry %d (%s) hashes to %s, the checkpoint's proof is for %s", ch.index, ch.what,
				base64.StdEncoding.EncodeToString(es[0].LeafHash), base64.StdEncoding.EncodeToString(leaf))
		}
		e, err := schema.ParseEntry(es[0].Data)
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", ch.index, ch.what, err)
		}
		if e.Issuer != origin {
			return nil, fmt.Errorf("entry %d (%s) is for %s, not %s", ch.index, ch.what, e.Issuer, origin)
		}
		if err := ch.check(e, leaf); err != nil {
			return nil, fmt.Errorf("entry %d (%s) does not match the status: %w", ch.index, ch.what, err)
		}
		if !slices.Contains(out.Verified.Entries, ch.index) {
			out.Verified.Entries = append(out.Verified.Entries, ch.index)
		}
	}
	out.Verified.CheckpointSize = cp.Size
	out.commitment = commitment
	return out, nil
}
