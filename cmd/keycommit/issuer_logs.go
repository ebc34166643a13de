package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer"
	"github.com/keycommit/keycommit/log/verify"
	"github.com/keycommit/keycommit/schema"
	"github.com/spf13/cobra"
)

// Several logs (docs/multilog.md, "Issuers"): the issuer commands that
// talk to logs take --log URL --log-vkey VKEY repeated, paired in order,
// or --logs TRUSTFILE, and with more than one log report per log.

// logTarget is one log an issuer command talks to: its URL, verifier key
// and name (the key's name).
type logTarget struct{ url, vkey, name string }

func (t logTarget) client() (*client.Client, error) {
	return client.New(t.url, t.vkey, &http.Client{Timeout: 60 * time.Second})
}

// logsFlags are the flags naming the logs an issuer command talks to.
type logsFlags struct {
	urls, vkeys []string
	trustFile   string
	cmd         *cobra.Command
}

func (f *logsFlags) add(cmd *cobra.Command) {
	f.cmd = cmd
	var defURL, defVKey []string
	if v := os.Getenv("KEYCOMMIT_LOG"); v != "" {
		defURL = []string{v}
	}
	if v := os.Getenv("KEYCOMMIT_LOG_VKEY"); v != "" {
		defVKey = []string{v}
	}
	cmd.Flags().StringArrayVar(&f.urls, "log", defURL, "log URL (default $KEYCOMMIT_LOG); repeat it, each with its --log-vkey in the same order, to talk to several logs")
	cmd.Flags().StringArrayVar(&f.vkeys, "log-vkey", defVKey, "log verifier key, C2SP vkey (default $KEYCOMMIT_LOG_VKEY); one per --log, in the same order")
	cmd.Flags().StringVar(&f.trustFile, "logs", "", "a trust file (docs/multilog.md) naming the logs to talk to (each log line's vkey, and the log URL its bundle URL is under), instead of --log and --log-vkey")
}

// targets returns the logs the flags name, in order.
func (f *logsFlags) targets() ([]logTarget, error) {
	if f.trustFile != "" {
		if f.cmd != nil && (f.cmd.Flags().Changed("log") || f.cmd.Flags().Changed("log-vkey")) {
			return nil, errors.New("--logs names the logs: give either --logs or --log/--log-vkey, not both")
		}
		tr, err := verify.ReadTrustFile(f.trustFile)
		if err != nil {
			return nil, err
		}
		var ts []logTarget
		for i := range tr.Logs {
			u, err := tr.Logs[i].LogURL()
			if err != nil {
				return nil, fmt.Errorf("--logs %s: %w", f.trustFile, err)
			}
			ts = append(ts, logTarget{url: u, vkey: tr.Logs[i].VKey})
		}
		return checkTargets(ts)
	}
	switch {
	case len(f.urls) == 0:
		return nil, errors.New("no log: set --log (or $KEYCOMMIT_LOG), or --logs")
	case len(f.vkeys) == 0:
		return nil, errors.New("no log verifier key: set --log-vkey or $KEYCOMMIT_LOG_VKEY")
	case len(f.urls) != len(f.vkeys):
		return nil, fmt.Errorf("--log is given %d times and --log-vkey %d times: give one --log-vkey for each --log, in the same order", len(f.urls), len(f.vkeys))
	}
	ts := make([]logTarget, len(f.urls))
	for i := range f.urls {
		if f.urls[i] == "" || f.vkeys[i] == "" {
			return nil, fmt.Errorf("--log/--log-vkey pair %d is empty", i+1)
		}
		ts[i] = logTarget{url: strings.TrimSuffix(f.urls[i], "/"), vkey: f.vkeys[i]}
	}
	return checkTargets(ts)
}

// checkTargets refuses a log named twice (by URL or by key name): a
// statement is signed for one log and would be reported twice.
// It fills in each log's name from its verifier key, which must parse.
func checkTargets(ts []logTarget) ([]logTarget, error) {
	urls, names := map[string]bool{}, map[string]bool{}
	for i := range ts {
		t := &ts[i]
		v, err := checkpoint.NewVerifier(t.vkey)
		if err != nil {
			return nil, fmt.Errorf("log %s: bad verifier key %q: %w", t.url, t.vkey, err)
		}
		t.name = v.Name()
		if urls[t.url] {
			return nil, fmt.Errorf("log %s is named twice", t.url)
		}
		if names[t.name] {
			return nil, fmt.Errorf("two logs have the key name %s: each log must be named once", t.name)
		}
		urls[t.url], names[t.name] = true, true
	}
	return ts, nil
}

// Outcomes of a statement on one log of several.
const (
	outcomeLogged      = "logged"       // submitted now, entry verified
	outcomeAlready     = "already"      // the log's latest entry for the issuer is this statement
	outcomeWouldAccept = "would-accept" // --dry-run: the log's policy would accept it
	outcomeRefused     = "refused"      // the log's policy refused it
	outcomeFailed      = "failed"       // anything else: unreachable, a proof that did not verify, ...
)

// logsResult is `issuer register|submit|report --json` with several logs
// (schema/jsonschema/cli/issuer-submit.json, the per-log report).
type logsResult struct {
	Kind   string       `json:"kind"`
	DryRun bool         `json:"dry_run,omitempty"`
	Logs   []logOutcome `json:"logs"`
}

// logOutcome is what happened to the statement on one log.
type logOutcome struct {
	// Log is the log's name (its key name) and URL where it was reached.
	Log string `json:"log"`
	URL string `json:"url"`
	// Outcome is logged, already, would-accept, refused or failed.
	Outcome string `json:"outcome"`
	// Index and LeafHash are the entry's (logged, already).
	Index    *uint64 `json:"index,omitempty"`
	LeafHash []byte  `json:"leaf_hash,omitempty"`
	// TreeSize is the size of the signed checkpoint the entry is proven in.
	TreeSize uint64 `json:"tree_size,omitempty"`
	// Result is the log's verified answer (logged).
	Result *api.SubmitResult `json:"result,omitempty"`
	// Rule and Reason are the policy's refusal (refused).
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Error says what went wrong (refused, failed).
	Error string `json:"error,omitempty"`
}

// bodyFunc makes the body of the statement to sign for one log, given
// the issuer's state in that log (its status and prev): a registration
// that moves the account key proves possession against that log's prev.
type bodyFunc func(p *issuer.Issuer) (any, error)

// submitToLogs signs and submits the statement of kind to every log the
// flags name. With one log it is signAndSubmit. With several, each log
// gets its own statement (signed for that log, after the issuer's prev in
// it); a log whose latest entry for the issuer already is this statement
// (same kind, byte-identical body, proven included) is skipped, unless
// again; the outcome is reported per log. The exit code is 0 when every
// log holds the statement (or would accept it), 3 when the only failures
// are policy refusals, 1 otherwise.
func (f *submitFlags) submitToLogs(cmd *cobra.Command, kind schema.Kind, body bodyFunc) error {
	ctx := cmd.Context()
	ts, err := f.targets()
	if err != nil {
		return err
	}
	origin, err := originArg(f.origin)
	if err != nil {
		return err
	}
	key, err := issuer.ReadKeyFile(f.keyFile)
	if err != nil {
		return err
	}
	if len(ts) == 1 {
		p, err := openIssuer(ctx, ts[0], origin, key)
		if err != nil {
			return err
		}
		b, err := body(p)
		if err != nil {
			return err
		}
		return f.signAndSubmit(ctx, cmd.OutOrStdout(), p, kind, b)
	}
	res := &logsResult{Kind: string(kind), DryRun: f.dryRun, Logs: make([]logOutcome, len(ts))}
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Logs[i] = f.submitToLog(ctx, t, origin, key, kind, body)
		}()
	}
	wg.Wait()
	w := cmd.OutOrStdout()
	if f.asJSON {
		if err := writeJSONOut(w, res); err != nil {
			return err
		}
	} else {
		printLogsResult(w, res)
	}
	var refused, failed []string
	for _, o := range res.Logs {
		switch o.Outcome {
		case outcomeRefused:
			refused = append(refused, o.Log)
		case outcomeFailed:
			failed = append(failed, o.Log)
		}
	}
	var out error
	switch {
	case len(failed) > 0:
		out = &exitError{1, fmt.Errorf("the %s is not on every log: failed on %s%s; run the same command again to retry where it is missing", kind, strings.Join(failed, ", "), refusedToo(refused))}
	case len(refused) > 0:
		out = &exitError{exitRefused, fmt.Errorf("the %s was refused by the policy of %s", kind, strings.Join(refused, ", "))}
	default:
		return nil
	}
	if f.asJSON {
		return printed{out}
	}
	return out
}

func refusedToo(refused []string) string {
	if len(refused) == 0 {
		return ""
	}
	return "; refused by the policy of " + strings.Join(refused, ", ")
}

// openIssuer checks that the log at t is the log its key names (its
// checkpoint verifies) and fetches the issuer's status and prev there.
func openIssuer(ctx context.Context, t logTarget, origin string, key ed25519.PrivateKey) (*issuer.Issuer, error) {
	c, err := t.client()
	if err != nil {
		return nil, err
	}
	// The log's key is checked before anything is signed or submitted.
	if err := checkLogKey(ctx, c, t.vkey); err != nil {
		return nil, err
	}
	return issuer.Open(ctx, c, origin, key)
}

// submitToLog is one log's part of submitToLogs.
func (f *submitFlags) submitToLog(ctx context.Context, t logTarget, origin string, key ed25519.PrivateKey, kind schema.Kind, body bodyFunc) logOutcome {
	o := logOutcome{Log: t.name, URL: t.url}
	fail := func(err error) logOutcome {
		o.Outcome, o.Error = outcomeFailed, err.Error()
		var re *refusedError
		if errors.As(err, &re) {
			o.Outcome, o.Rule, o.Reason = outcomeRefused, re.rule, re.reason
		}
		if rej, ok := client.Reject(err); ok {
			o.Outcome, o.Rule, o.Reason = outcomeRefused, rej.Rule, rej.Reason
		}
		return o
	}
	p, err := openIssuer(ctx, t, origin, key)
	if err != nil {
		return fail(err)
	}
	b, err := body(p)
	if err != nil {
		return fail(err)
	}
	if !f.again && p.Status != nil {
		idx, leaf, size, ok, err := latestIs(ctx, p, kind, b)
		if err != nil {
			return fail(err)
		}
		if ok {
			o.Outcome, o.Index, o.LeafHash, o.TreeSize = outcomeAlready, &idx, leaf, size
			return o
		}
	}
	if f.dryRun {
		res, err := p.Check(ctx, kind, b)
		if err != nil {
			return fail(err)
		}
		if !res.Accept {
			o.Outcome, o.Rule, o.Reason = outcomeRefused, res.Rule, res.Reason
			o.Error = fmt.Sprintf("the log would refuse this %s: rule %s: %s", kind, res.Rule, res.Reason)
			return o
		}
		o.Outcome = outcomeWouldAccept
		return o
	}
	res, err := p.Submit(ctx, kind, b)
	if err != nil {
		return fail(err)
	}
	idx := res.Index
	o.Outcome, o.Index, o.LeafHash, o.TreeSize, o.Result = outcomeLogged, &idx, res.LeafHash, res.TreeSize, &res.SubmitResult
	return o
}

// latestIs reports whether the issuer's latest entry in p's log is the
// statement of kind with body: the entry is fetched and proven included
// in the log's signed checkpoint before it counts, so that a log is never
// reported as holding a statement it does not prove it holds.
func latestIs(ctx context.Context, p *issuer.Issuer, kind schema.Kind, body any) (index uint64, leaf []byte, size uint64, ok bool, err error) {
	want, err := schema.CanonicalizeBody(kind, body)
	if err != nil {
		return 0, nil, 0, false, err
	}
	idx := p.Status.LastIndex
	es, err := p.Client.Entries(ctx, idx, idx+1)
	if err != nil {
		return 0, nil, 0, false, fmt.Errorf("couldn't fetch the issuer's latest entry %d: %w", idx, err)
	}
	e, err := schema.ParseEntry(es[0].Data)
	if err != nil {
		return 0, nil, 0, false, fmt.Errorf("the issuer's latest entry %d: %w", idx, err)
	}
	if e.Issuer != p.Origin || e.Kind != kind || e.Log != p.Client.Verifier().Name() {
		return 0, nil, 0, false, nil
	}
	if !bytes.Equal(e.Body, want) {
		// A registration that moves the account key proves possession
		// of the new key against the prev it follows, so its repeat is
		// never byte-identical: what it registers (contact, account
		// key) is what counts.
		got, err1 := e.ParsedBody()
		reg, ok1 := got.(*schema.Registration)
		mine, ok2 := body.(*schema.Registration)
		if err1 != nil || !ok1 || !ok2 || len(mine.KeyProof) == 0 || reg.Contact != mine.Contact || !bytes.Equal(reg.AccountKey, mine.AccountKey) {
			return 0, nil, 0, false, nil
		}
	}
	cp, _, err := p.Client.Checkpoint(ctx)
	if err != nil {
		return 0, nil, 0, false, fmt.Errorf("couldn't verify the log's checkpoint with the log key: %w", err)
	}
	if idx >= cp.Size {
		return 0, nil, 0, false, fmt.Errorf("the log's status names entry %d, which is not in its checkpoint of size %d", idx, cp.Size)
	}
	proven, err := p.Client.InclusionProof(ctx, cp, idx)
	if err != nil {
		return 0, nil, 0, false, fmt.Errorf("inclusion check of entry %d in the checkpoint of size %d failed: %w", idx, cp.Size, err)
	}
	if !bytes.Equal(proven, es[0].LeafHash) || !bytes.Equal(proven, p.Status.LastLeafHash) {
		return 0, nil, 0, false, fmt.Errorf("entry %d: the log's entry, its status and its checkpoint's proof name different leaf hashes", idx)
	}
	return idx, proven, cp.Size, true, nil
}

func printLogsResult(w io.Writer, res *logsResult) {
	for _, o := range res.Logs {
		switch o.Outcome {
		case outcomeLogged:
			fmt.Fprintf(w, "%-9s %s: logged at index %d, proven in the log's checkpoint of size %d, leaf hash %s\n",
				o.Outcome, o.Log, *o.Index, o.TreeSize, base64.StdEncoding.EncodeToString(o.LeafHash))
		case outcomeAlready:
			fmt.Fprintf(w, "%-9s %s: already the issuer's latest entry (index %d, proven in the checkpoint of size %d); not submitted again\n",
				o.Outcome, o.Log, *o.Index, o.TreeSize)
		case outcomeWouldAccept:
			fmt.Fprintf(w, "%-9s %s: the log would accept this %s now (dry run; nothing logged)\n", "ok", o.Log, res.Kind)
		case outcomeRefused:
			fmt.Fprintf(w, "%-9s %s: rule %s: %s\n", o.Outcome, o.Log, o.Rule, o.Reason)
		default:
			fmt.Fprintf(w, "%-9s %s (%s): %s\n", o.Outcome, o.Log, o.URL, o.Error)
		}
	}
}

// issuerLogsStatus is `issuer status --json` with several logs
// (schema/jsonschema/cli/issuer-status.json, the per-log form).
type issuerLogsStatus struct {
	Issuer string `json:"issuer"`
	// Agree reports whether every log answered and their latest key
	// commitments are byte-identical (or none has one).
	Agree bool `json:"agree"`
	// Differences says, in sentences, where the logs' latest commitments
	// differ.
	Differences []string    `json:"differences"`
	Logs        []logStatus `json:"logs"`
}

// logStatus is one log's verified view of the issuer.
type logStatus struct {
	Log string `json:"log"`
	URL string `json:"url"`
	// Error is set when the log could not be read or did not verify.
	Error string `json:"error,omitempty"`
	// Registered is false when the log does not know the issuer.
	Registered bool `json:"registered"`
	// Commitment is the latest key commitment: its index, log time,
	// SHA-256 of its body, and its key ids.
	Commitment *logCommitment `json:"commitment,omitempty"`
	// Status is the log's verified status (issuer status --json of one log).
	Status *issuerStatusResult `json:"status,omitempty"`
}

type logCommitment struct {
	Index  uint64   `json:"index"`
	Time   int64    `json:"time"`
	SHA256 string   `json:"sha256"`
	KeyIDs []string `json:"key_ids"`
}

// logsStatus fetches and verifies the issuer's status on every log and
// compares their latest key commitments.
func logsStatus(ctx context.Context, ts []logTarget, origin string) *issuerLogsStatus {
	out := &issuerLogsStatus{Issuer: origin, Logs: make([]logStatus, len(ts)), Differences: []string{}}
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls := logStatus{Log: t.name, URL: t.url}
			defer func() { out.Logs[i] = ls }()
			c, err := t.client()
			if err != nil {
				ls.Error = err.Error()
				return
			}
			res, err := fetchIssuerStatus(ctx, c, origin)
			var he *client.HTTPError
			if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
				return
			}
			if err != nil {
				ls.Error = err.Error()
				return
			}
			ls.Registered, ls.Status = true, res
			if st := res.Status; st.Commitment != nil {
				sum := sha256.Sum256(res.commitment)
				lc := &logCommitment{Index: *st.Commitment, Time: st.CommitmentTime, SHA256: hex.EncodeToString(sum[:]), KeyIDs: []string{}}
				for _, k := range st.Keys {
					lc.KeyIDs = append(lc.KeyIDs, k.ID)
				}
				ls.Commitment = lc
			}
		}()
	}
	wg.Wait()
	out.Agree = true
	var first *logStatus
	for i := range out.Logs {
		ls := &out.Logs[i]
		switch {
		case ls.Error != "":
			out.Agree = false
			out.Differences = append(out.Differences, fmt.Sprintf("%s could not be checked: %s", ls.Log, ls.Error))
			continue
		case first == nil:
			first = ls
			continue
		}
		if d := commitmentDifference(first, ls); d != "" {
			out.Agree = false
			out.Differences = append(out.Differences, d)
		}
	}
	return out
}

// commitmentDifference says how b's latest commitment differs from a's,
// or "" when they are the same.
func commitmentDifference(a, b *logStatus) string {
	desc := func(ls *logStatus) string {
		switch {
		case !ls.Registered:
			return ls.Log + " does not know the issuer"
		case ls.Commitment == nil:
			return ls.Log + " has no key commitment for it"
		}
		return fmt.Sprintf("%s holds commitment sha256 %s (index %d, %s, key ids %s)", ls.Log, ls.Commitment.SHA256[:16],
			ls.Commitment.Index, fmtMs(ls.Commitment.Time), strings.Join(ls.Commitment.KeyIDs, " "))
	}
	switch {
	case a.Commitment == nil && b.Commitment == nil && a.Registered == b.Registered:
		return ""
	case a.Commitment != nil && b.Commitment != nil && a.Commitment.SHA256 == b.Commitment.SHA256:
		return ""
	}
	return desc(a) + "; " + desc(b)
}

func printLogsStatus(w io.Writer, st *issuerLogsStatus) {
	fmt.Fprintf(w, "issuer %s on %d logs\n", st.Issuer, len(st.Logs))
	for _, ls := range st.Logs {
		switch {
		case ls.Error != "":
			fmt.Fprintf(w, "  log %s: FAILED (%s): %s\n", ls.Log, ls.URL, ls.Error)
		case !ls.Registered:
			fmt.Fprintf(w, "  log %s: not registered\n", ls.Log)
		case ls.Commitment == nil:
			fmt.Fprintf(w, "  log %s: registered (index %d), no key commitment yet\n", ls.Log, ls.Status.Status.Registered)
		default:
			fmt.Fprintf(w, "  log %s: commitment at index %d (%s), sha256 %s, key ids %s; verified in the checkpoint of size %d\n", ls.Log,
				ls.Commitment.Index, fmtMs(ls.Commitment.Time), ls.Commitment.SHA256[:16], strings.Join(ls.Commitment.KeyIDs, " "), ls.Status.Verified.CheckpointSize)
		}
	}
	if st.Agree {
		fmt.Fprintf(w, "agree: every log holds the same latest key commitment\n")
		return
	}
	for _, d := range st.Differences {
		fmt.Fprintf(w, "DIFFER: %s\n", d)
	}
}
