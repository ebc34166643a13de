// Package witnessing is the log side of C2SP tlog-witness: after the log
// signs a checkpoint, it asks every witness of a k-of-n policy (the
// Sigsum/Tessera/C2SP tlog-policy text format) for a cosignature, in
// parallel, and returns the checkpoint with the cosignatures it got appended
// after the log's own signature, and whether the quorum is met.
//
// It remembers, per witness, the size of the latest checkpoint the witness
// cosigned for this log (starting at 0), sends the consistency proof from
// that size, and on 409 reads the witness's size from the response and
// retries once from there. Every witness call has a timeout, so a slow or
// dead witness costs at most Config.Timeout; once the quorum is met, the call
// waits at most Config.Grace for stragglers.
package witnessing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keycommit/keycommit/log/c2sp"
	"github.com/keycommit/keycommit/log/sequencer"
	"github.com/keycommit/keycommit/witness/quorum"
)

// ProveFunc returns the RFC 6962 consistency proof between two sizes of the
// log's tree (oldSize < newSize, oldSize > 0).
type ProveFunc func(ctx context.Context, oldSize, newSize uint64) ([][]byte, error)

// Config configures a Collector.
type Config struct {
	// Policy is the witness policy text. Every witness in it needs a URL:
	// its tlog-witness submission prefix (add-checkpoint is appended).
	Policy []byte
	// Prove builds consistency proofs. Required.
	Prove ProveFunc
	// Client makes the HTTP requests. Nil means a client with keep-alive
	// connections and no overall timeout (each call has its own).
	Client *http.Client
	// Timeout bounds each witness's part of a call, 409 retry included.
	// Zero means 10s.
	Timeout time.Duration
	// Grace is how long a call still waits for other witnesses once the
	// quorum is met. Zero means 1s; negative means return at once.
	Grace time.Duration
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Metrics, if set, receives per-witness Prometheus collectors.
	Metrics prometheus.Registerer
	// Clock stamps when each witness's answer arrived
	// (sequencer.Cosignature.Received); nil means time.Now. Give it the
	// log's clock.
	Clock func() time.Time
}

// maxResponse bounds a witness's response body.
const maxResponse = 64 << 10

// Collector collects cosignatures for one log. It is safe for concurrent use;
// calls for the same witness are serialised so that its size is tracked.
type Collector struct {
	policy    *quorum.Policy
	witnesses []*witnessClient
	prove     ProveFunc
	client    *http.Client
	timeout   time.Duration
	grace     time.Duration
	logger    *slog.Logger
	clock     func() time.Time
	m         *metrics
}

type witnessClient struct {
	w        quorum.Witness
	verifier c2sp.Verifier
	ep       *endpoint
}

// endpoint is one witness server. Policy witnesses with the same URL (one
// witness's Ed25519 and ML-DSA-44 keys, on two `witness` lines) share it:
// one add-checkpoint call answers with the cosignatures of all its keys.
type endpoint struct {
	url  string
	name string        // the first policy witness at this URL, for metrics and logs
	lock chan struct{} // one-slot semaphore: one call at a time
	size uint64        // witness's latest cosigned size as we know it; guarded by lock
}

// exchange is one collection's add-checkpoint call to an endpoint, shared
// by the policy witnesses at it.
type exchange struct {
	once sync.Once
	body []byte
	err  error
}

// New parses the policy and prepares the witness clients.
func New(cfg Config) (*Collector, error) {
	p, err := quorum.Parse(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse witness policy: %w", err)
	}
	if cfg.Prove == nil {
		return nil, errors.New("witnessing: Config.Prove is required")
	}
	c := &Collector{
		policy:  p,
		prove:   cfg.Prove,
		client:  cfg.Client,
		timeout: cfg.Timeout,
		grace:   cfg.Grace,
		logger:  cfg.Logger,
		clock:   cfg.Clock,
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if c.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		c.client = &http.Client{Transport: tr}
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.grace == 0 {
		c.grace = time.Second
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	endpoints := map[string]*endpoint{}
	for _, w := range p.Witnesses() {
		if w.URL == "" {
			return nil, fmt.Errorf("witness %q in the policy has no URL", w.Name)
		}
		url := strings.TrimSuffix(w.URL, "/") + "/add-checkpoint"
		ep := endpoints[url]
		if ep == nil {
			ep = &endpoint{url: url, name: w.Name, lock: make(chan struct{}, 1)}
			endpoints[url] = ep
		}
		c.witnesses = append(c.witnesses, &witnessClient{w: w, verifier: w.Verifier, ep: ep})
	}
	if c.m, err = newMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	return c, nil
}

// Result is the outcome of one collection.
type Result struct {
	// Checkpoint is the signed checkpoint with the cosignatures obtained
	// appended after the signatures it already had.
	Checkpoint []byte
	// QuorumMet reports whether the cosignatures meet the policy.
	QuorumMet bool
	// Cosigned lists the witnesses (policy names) whose cosignature was
	// obtained and verified in this call, in policy order.
	Cosigned []string
	// Errors holds, per witness that did not cosign, why.
	Errors map[string]error
}

// Witness has exactly the shape of the log's witnessing hook:
//
//	func(ctx context.Context, signedCheckpoint []byte) (cosigned []byte, err error)
//
// It returns the checkpoint with the cosignatures obtained. If the quorum is
// not met it still returns that checkpoint, with an error wrapping
// quorum.ErrQuorumNotMet, so the caller chooses whether to publish it.
func (c *Collector) Witness(ctx context.Context, signedCheckpoint []byte) ([]byte, error) {
	res, err := c.Collect(ctx, signedCheckpoint)
	if err != nil {
		return nil, err
	}
	if !res.QuorumMet {
		var errs []string
		for _, w := range c.witnesses {
			if e, ok := res.Errors[w.w.Name]; ok {
				errs = append(errs, fmt.Sprintf("%s: %v", w.w.Name, e))
			}
		}
		return res.Checkpoint, fmt.Errorf("%w: quorum %q, cosigned by %v; failures: %s",
			quorum.ErrQuorumNotMet, c.policy.Quorum(), res.Cosigned, strings.Join(errs, "; "))
	}
	return res.Checkpoint, nil
}

// Collect asks every witness in parallel to cosign signedCheckpoint. It
// returns an error only if signedCheckpoint is not a checkpoint note; witness
// failures are in Result.Errors.
func (c *Collector) Collect(ctx context.Context, signedCheckpoint []byte) (*Result, error) {
	res, _, err := c.collect(ctx, signedCheckpoint, nil)
	return res, err
}

// collect is Collect asking only the witnesses named in only (all if
// nil). It also returns, per witness that cosigned, its verified
// cosignature.
func (c *Collector) collect(ctx context.Context, signedCheckpoint []byte, only []string) (*Result, map[string]sequencer.Cosignature, error) {
	n, err := c2sp.SplitNote(signedCheckpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't witness checkpoint: %w", err)
	}
	text := n.Text
	cp, err := c2sp.ParseCheckpoint(text)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't witness checkpoint: %w", err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	proofs := &proofCache{prove: c.prove, size: cp.Size, m: map[uint64]*proofFuture{}}

	type outcome struct {
		i    int
		line []byte
		err  error
	}
	results := make(chan outcome, len(c.witnesses))
	asked := len(c.witnesses)
	calls := map[*endpoint]*exchange{}
	for _, wc := range c.witnesses {
		calls[wc.ep] = &exchange{}
	}
	for i, wc := range c.witnesses {
		if only != nil && !slices.Contains(only, wc.w.Name) {
			asked--
			continue
		}
		go func() {
			line, err := c.witnessOne(ctx, wc, calls[wc.ep], signedCheckpoint, text, cp.Size, proofs)
			results <- outcome{i, line, err}
		}()
	}

	lines := make([][]byte, len(c.witnesses))
	errs := map[string]error{}
	cosigned := map[string]bool{}
	got := map[string]sequencer.Cosignature{}
	var graceC <-chan time.Time
	pending := asked
	met := c.policy.Satisfied(cosigned)
collect:
	for pending > 0 {
		select {
		case o := <-results:
			pending--
			name := c.witnesses[o.i].w.Name
			if o.err != nil {
				errs[name] = o.err
				continue
			}
			lines[o.i] = o.line
			cosigned[name] = true
			got[name] = sequencer.Cosignature{Witness: name, Time: lineTime(o.line), Line: o.line, Received: c.clock()}
			if !met && c.policy.Satisfied(cosigned) {
				met = true
				if c.grace < 0 {
					break collect
				}
				graceC = time.After(c.grace)
			}
		case <-graceC:
			break collect
		}
	}
	// Witnesses still running are cancelled; they keep their size record
	// consistent under their own lock, and the next call resynchronises
	// through 409 if needed.
	cancel()
	for _, wc := range c.witnesses {
		if only != nil && !slices.Contains(only, wc.w.Name) {
			continue
		}
		if _, ok := cosigned[wc.w.Name]; !ok {
			if _, ok := errs[wc.w.Name]; !ok {
				errs[wc.w.Name] = errors.New("no answer before the quorum was met and the grace period ended")
			}
		}
	}

	// The log's own lines first, as given, except older cosignatures by
	// witnesses that just cosigned again; then the new cosignatures in
	// policy order.
	res := &Result{QuorumMet: met, Errors: errs}
	replaced := map[string]bool{} // "name keyID" of witnesses with a new line
	for i, wc := range c.witnesses {
		if lines[i] != nil {
			res.Cosigned = append(res.Cosigned, wc.w.Name)
			replaced[fmt.Sprintf("%s %08x", wc.w.KeyName, wc.w.KeyID)] = true
		}
	}
	var out bytes.Buffer
	out.Write(text)
	out.WriteByte('\n')
	for _, sig := range n.Sigs {
		if replaced[fmt.Sprintf("%s %08x", sig.Name, sig.Hash)] {
			continue
		}
		out.Write(sig.Line())
	}
	for i := range c.witnesses {
		out.Write(lines[i])
	}
	res.Checkpoint = out.Bytes()
	result := "met"
	if !met {
		result = "not_met"
	}
	c.m.collections.WithLabelValues(result).Inc()
	c.m.collectSeconds.Observe(time.Since(start).Seconds())
	if !met {
		c.logger.Warn("witness quorum not met", "size", cp.Size, "cosigned", res.Cosigned, "errors", fmt.Sprint(errs))
	}
	return res, got, nil
}

var _ sequencer.Witnesses = (*Collector)(nil)

// Cosign implements sequencer.Witnesses: it asks the named witnesses
// (every witness if names is nil) as Collect does.
func (c *Collector) Cosign(ctx context.Context, signed []byte, names []string) ([]sequencer.Cosignature, map[string]error) {
	res, got, err := c.collect(ctx, signed, names)
	if err != nil {
		errs := map[string]error{}
		for _, wc := range c.witnesses {
			if names == nil || slices.Contains(names, wc.w.Name) {
				errs[wc.w.Name] = err
			}
		}
		return nil, errs
	}
	out := make([]sequencer.Cosignature, 0, len(got))
	for _, wc := range c.witnesses {
		if cs, ok := got[wc.w.Name]; ok {
			out = append(out, cs)
		}
	}
	return out, res.Errors
}

// Cosignatures implements sequencer.Witnesses: the verified
// cosignatures of the policy's witnesses in a cosigned note.
func (c *Collector) Cosignatures(cosigned []byte) []sequencer.Cosignature {
	var out []sequencer.Cosignature
	for _, wc := range c.witnesses {
		_, verified, err := c2sp.Open(cosigned, wc.verifier)
		if err != nil {
			continue
		}
		line := verified[0].Line()
		out = append(out, sequencer.Cosignature{Witness: wc.w.Name, Time: lineTime(line), Line: line})
	}
	return out
}

// Satisfied implements sequencer.Witnesses with the policy's quorum.
func (c *Collector) Satisfied(names map[string]bool) bool { return c.policy.Satisfied(names) }

// Names implements sequencer.Witnesses: the policy's witnesses.
func (c *Collector) Names() []string {
	out := make([]string, len(c.witnesses))
	for i, wc := range c.witnesses {
		out[i] = wc.w.Name
	}
	return out
}

// lineTime is the tlog-cosignature timestamp of a verified cosignature
// line (key ID, then the big-endian timestamp).
func lineTime(line []byte) time.Time {
	s, err := c2sp.ParseSignatureLine(line)
	if err != nil {
		return time.Time{}
	}
	ts, err := c2sp.CosignatureTimestamp(s.Sig)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(int64(ts), 0)
}

// witnessOne gets one policy witness's cosignature: from the
// add-checkpoint call to its endpoint, made once per collection for all
// the policy witnesses at that endpoint.
func (c *Collector) witnessOne(ctx context.Context, wc *witnessClient, x *exchange, signed, text []byte, size uint64, proofs *proofCache) ([]byte, error) {
	x.once.Do(func() { x.body, x.err = c.addCheckpoint(ctx, wc.ep, signed, size, proofs) })
	if x.err != nil {
		return nil, x.err
	}
	line, err := cosignatureLine(text, x.body, wc.verifier)
	if err != nil {
		return nil, fmt.Errorf("witness answered 200 but %w", err)
	}
	c.m.size.WithLabelValues(wc.w.Name).Set(float64(size))
	c.m.cosignatures.WithLabelValues(wc.w.Name).Inc()
	return line, nil
}

// addCheckpoint runs add-checkpoint against one endpoint, retrying once on
// 409, and returns the body of its 200 answer.
func (c *Collector) addCheckpoint(ctx context.Context, ep *endpoint, signed []byte, size uint64, proofs *proofCache) ([]byte, error) {
	select {
	case ep.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the previous call to this witness: %w", ctx.Err())
	}
	defer func() { <-ep.lock }()

	old := ep.size
	for attempt := 0; ; attempt++ {
		if old > size {
			return nil, fmt.Errorf("witness has cosigned size %d, larger than this checkpoint's %d", old, size)
		}
		var pf [][]byte
		if old > 0 && old < size {
			var err error
			if pf, err = proofs.get(ctx, old); err != nil {
				return nil, fmt.Errorf("couldn't build consistency proof %d -> %d: %w", old, size, err)
			}
		}
		status, ctype, body, err := c.post(ctx, ep, old, pf, signed)
		if err != nil {
			return nil, err
		}
		switch status {
		case http.StatusOK:
			ep.size = size
			return body, nil
		case http.StatusConflict:
			if ctype != "text/x.tlog.size" {
				return nil, fmt.Errorf("witness answered 409 without a size (Content-Type %q): %s", ctype, snippet(body))
			}
			n, err := strconv.ParseUint(strings.TrimSuffix(string(body), "\n"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("witness answered 409 with a bad size %q", snippet(body))
			}
			if n > size {
				// The witness has seen a larger tree than this
				// checkpoint: either an older checkpoint is being
				// witnessed late or the log lost state.
				ep.size = n
				return nil, fmt.Errorf("witness has cosigned size %d, larger than this checkpoint's %d", n, size)
			}
			if attempt > 0 {
				return nil, fmt.Errorf("witness answered 409 twice (size %d, then %d)", old, n)
			}
			c.logger.Info("witness size differs from ours; retrying from its size", "witness", ep.name, "ours", old, "theirs", n)
			ep.size, old = n, n
		default:
			return nil, fmt.Errorf("witness answered %d: %s", status, snippet(body))
		}
	}
}

func (c *Collector) post(ctx context.Context, wc *endpoint, old uint64, pf [][]byte, signed []byte) (status int, ctype string, body []byte, err error) {
	b, err := (&c2sp.AddCheckpointRequest{OldSize: old, Proof: pf, Checkpoint: signed}).Marshal()
	if err != nil {
		return 0, "", nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wc.url, bytes.NewReader(b))
	if err != nil {
		return 0, "", nil, fmt.Errorf("couldn't make request to %s: %w", wc.url, err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		c.m.requests.WithLabelValues(wc.name, "error").Inc()
		return 0, "", nil, fmt.Errorf("couldn't reach witness at %s: %w", wc.url, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	c.m.requests.WithLabelValues(wc.name, strconv.Itoa(resp.StatusCode)).Inc()
	c.m.requestSeconds.WithLabelValues(wc.name).Observe(time.Since(start).Seconds())
	if err != nil {
		return 0, "", nil, fmt.Errorf("couldn't read answer from witness at %s: %w", wc.url, err)
	}
	if len(body) > maxResponse {
		return 0, "", nil, fmt.Errorf("witness at %s answered more than %d bytes", wc.url, maxResponse)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body, nil
}

// cosignatureLine picks the witness's verified signature line out of its
// response (which may contain lines for other keys, to be ignored).
func cosignatureLine(text, body []byte, v c2sp.Verifier) ([]byte, error) {
	msg := make([]byte, 0, len(text)+1+len(body))
	msg = append(append(append(msg, text...), '\n'), body...)
	_, verified, err := c2sp.Open(msg, v)
	if err != nil {
		return nil, fmt.Errorf("its cosignature does not verify: %w", err)
	}
	return verified[0].Line(), nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}

// proofCache shares consistency proofs between witnesses at the same size.
type proofCache struct {
	prove ProveFunc
	size  uint64
	mu    sync.Mutex
	m     map[uint64]*proofFuture
}

type proofFuture struct {
	once  sync.Once
	proof [][]byte
	err   error
}

func (pc *proofCache) get(ctx context.Context, old uint64) ([][]byte, error) {
	pc.mu.Lock()
	f, ok := pc.m[old]
	if !ok {
		f = &proofFuture{}
		pc.m[old] = f
	}
	pc.mu.Unlock()
	f.once.Do(func() { f.proof, f.err = pc.prove(ctx, old, pc.size) })
	return f.proof, f.err
}
