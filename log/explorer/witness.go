package explorer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/storage"
	"github.com/keycommit/keycommit/witness/quorum"
)

type witnessVerifier struct {
	w quorum.Witness
	v c2sp.Verifier
}

func witnessVerifiers(p *quorum.Policy) ([]witnessVerifier, error) {
	if p == nil {
		return nil, nil
	}
	var out []witnessVerifier
	for _, w := range p.Witnesses() {
		out = append(out, witnessVerifier{w: w, v: w.Verifier})
	}
	return out, nil
}

// witnessView is the home page's witness section.
type witnessView struct {
	// Configured says whether the explorer knows the witness policy.
	Configured bool
	Quorum     string
	// CosignedSize is the size of the latest cosigned checkpoint (0:
	// none); Latest says it is the latest log-signed size.
	CosignedSize uint64
	Latest       bool
	// Satisfied says the cosignatures on it meet the policy's quorum;
	// Fresh that it is also the latest checkpoint.
	Satisfied bool
	Fresh     bool
	Rows      []witnessRow
}

type witnessRow struct {
	Name    string
	KeyName string
	URL     string
	// Time is the witness's cosignature timestamp on the latest cosigned
	// checkpoint (zero: no valid cosignature on it).
	Time     time.Time
	Age      string
	Verified bool
}

// witnesses checks the latest cosigned checkpoint's cosignatures against
// the witness policy.
func (e *Explorer) witnesses(ctx context.Context, latest uint64, now time.Time) (*witnessView, error) {
	v := &witnessView{Configured: e.cfg.Witnesses != nil}
	if e.cfg.Witnesses != nil {
		v.Quorum = e.cfg.Witnesses.Quorum()
	}
	n, cos, err := e.cfg.Log.Cosigned(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		for _, wv := range e.wvers {
			v.Rows = append(v.Rows, witnessRow{Name: wv.w.Name, KeyName: wv.w.KeyName, URL: wv.w.URL})
		}
		return v, nil
	}
	if err != nil {
		return nil, err
	}
	v.CosignedSize, v.Latest = n, n == latest
	vs := []c2sp.Verifier{e.cfg.Verifier}
	for _, wv := range e.wvers {
		vs = append(vs, wv.v)
	}
	nt, verified, err := c2sp.Open(cos, vs...)
	if err != nil {
		// The log's own signature is checked on write; say so, don't fail.
		e.log.Warn("explorer: cosigned checkpoint does not open", "err", err)
		return v, nil
	}
	times := map[uint32]time.Time{}
	type key struct {
		name string
		hash uint32
	}
	isVerified := map[key]bool{}
	for _, s := range verified {
		isVerified[key{s.Name, s.Hash}] = true
		if s.Name == e.cfg.Verifier.Name() && s.Hash == e.cfg.Verifier.KeyHash() {
			continue // the log's signature has no timestamp
		}
		if ts, err := c2sp.CosignatureTimestamp(s.Sig); err == nil {
			times[s.Hash] = time.Unix(int64(ts), 0)
		}
	}
	cosigned := map[string]bool{}
	for _, wv := range e.wvers {
		row := witnessRow{Name: wv.w.Name, KeyName: wv.w.KeyName, URL: wv.w.URL}
		if t, ok := times[wv.v.KeyHash()]; ok {
			row.Time, row.Age, row.Verified = t.UTC(), Ago(now, t), true
			cosigned[wv.w.Name] = true
		}
		v.Rows = append(v.Rows, row)
	}
	if !v.Configured {
		for _, s := range nt.Sigs {
			if !isVerified[key{s.Name, s.Hash}] {
				v.Rows = append(v.Rows, witnessRow{Name: s.Name, KeyName: s.Name})
			}
		}
	}
	if e.cfg.Witnesses != nil {
		v.Satisfied = e.cfg.Witnesses.Satisfied(cosigned)
		v.Fresh = v.Satisfied && v.Latest
	}
	return v, nil
}

// Ago says how long before now t was, roughly ("5 min ago").
func Ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h ago", d.Hours())
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}
