package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keycommit/keycommit/log/verify"
	"github.com/spf13/cobra"
)

// Exit codes of keycommit verify (documented in its help, docs/bundle.md
// and, with --trust, docs/multilog.md).
const (
	exitVerifyOK     = 0 // every check passed
	exitVerifyUsage  = 1 // bad flags, unreadable files, fetch failures
	exitVerifyFailed = 2 // a check failed: the bundle must not be used (--trust: no trusted log verified)
	exitVerifySome   = 3 // --trust: some log not ok or some issuer refused; the accepted and pending issuers are usable
)

// verifyConfig configures runVerify.
type verifyConfig struct {
	// Bundle is a file path or an http(s) URL of a keys bundle.
	Bundle string
	// LogVKey is the log's C2SP verifier key.
	LogVKey string
	// Origin is the checkpoint origin to require ("" means the key name).
	Origin string
	// PolicyFile is the witness policy (Sigsum/Tessera text format).
	PolicyFile string
	// Previous, if set, is a bundle saved by an earlier successful run.
	Previous string
	// MaxAge is the maximum age of counted cosignatures.
	MaxAge time.Duration
	// Save, if set, receives the bundle once it passed every check.
	Save string
	// Out receives the report.
	Out io.Writer
	// NoDelta, with a URL and Previous, fetches the full bundle instead
	// of trying a delta first.
	NoDelta bool
	// HTTP fetches URL bundles.
	HTTP *http.Client
	// JSON prints the result as a verifyResult object instead of text.
	JSON bool
	// Trust, if set, is a trust file (docs/multilog.md): the logs to
	// verify and merge, instead of Bundle and the single-log flags.
	Trust string
	// MinLogs, if not 0, replaces the trust file's min-logs.
	MinLogs int
}

// verifySingleLogFlags are the flags of a single-log verify, which a trust
// file replaces.
var verifySingleLogFlags = []string{"bundle", "log-vkey", "origin", "witness-policy", "previous", "max-age", "save", "no-delta"}

func newVerifyCmd() *cobra.Command {
	cfg := verifyConfig{HTTP: &http.Client{Timeout: time.Minute}}
	cmd := &cobra.Command{
		Use:   "verify (--bundle FILE_OR_URL --log-vkey VKEY --witness-policy FILE [--previous FILE] [--max-age DURATION] [--save FILE] | --trust FILE [--min-logs K])",
		Short: "Verify a keys bundle as a user agent does",
		Long: `Verify a keys bundle (docs/bundle.md) as a user agent does: the key set is
the one the snapshot entry commits to (its key set root, or its digest in a
log made before the root), the entry is a snapshot included in the
checkpoint, the checkpoint carries the log's signature and a quorum of witness
cosignatures (under the witness policy) no older than --max-age, and the
snapshot is not dated more than 10 minutes after those cosignatures (the time
check, docs/time.md). With
--previous (a bundle an earlier run saved with --save), the new checkpoint must
not be smaller than the old one and must be consistent with it; the issuers
whose keys changed are printed. When --bundle is a URL and --previous is given,
the bundle is fetched with ?old=<previous size> so that it carries the
consistency proof.

Exit codes: 0 every check passed; 1 usage or I/O error (nothing was verified);
2 a check failed (the message names it; do not use the keys).

With --trust FILE (docs/multilog.md), verify several logs instead: the trust
file names each log (its vkey, bundle URL, witness policy file, optional
max-age= and origin=) and the rule (min-logs K, grace DURATION). Every log's
bundle is fetched concurrently and verified as above; a log that cannot be
fetched is unavailable, one whose cosignatures are too old stale, one failing
another check invalid, and such a log carries nothing. An issuer's keys are
used (accepted) only when at least K ok logs hold the byte-identical commitment
and no ok log carrying the issuer holds another one; when logs disagree the
issuer is refused, naming the logs and the key ids on each side, unless the
newest commitment was first logged at most the grace window ago and every other
log holds the issuer's previous commitment (pending: the rotation has not
reached them; the newest is used). One issuer's refusal never blocks another.
--min-logs replaces the file's min-logs. The single-log flags (--bundle,
--log-vkey, --origin, --witness-policy, --previous, --max-age, --save,
--no-delta) cannot be combined with --trust. The output names every log's
status and every issuer's decision; --json prints one object
(schema/jsonschema/cli/verify-trust.json) whose "pst" member is the merged PST
key commitments in the shape of Chrome's component ({"<issuer origin>":
<commitment>}) and "privacy_pass" the issuers' Privacy Pass directories.

Exit codes with --trust: 0 every log ok and every issuer accepted or pending;
1 usage error (bad flags, unreadable trust file; nothing was verified); 2 no
trusted log verified (no keys to use); 3 some log not ok or some issuer refused
(the accepted and pending issuers' keys are usable).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Out = cmd.OutOrStdout()
			if cfg.Trust == "" {
				if cmd.Flags().Changed("min-logs") {
					return usageErr("--min-logs needs --trust")
				}
				return runVerify(cmd.Context(), &cfg)
			}
			var set []string
			for _, name := range verifySingleLogFlags {
				if cmd.Flags().Changed(name) {
					set = append(set, "--"+name)
				}
			}
			if len(set) > 0 {
				return usageErr("--trust cannot be combined with %s: the trust file gives each log's bundle, vkey, witness policy, max-age and origin", strings.Join(set, ", "))
			}
			return runVerifyTrust(cmd.Context(), &cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Bundle, "bundle", "", "keys bundle: a file or an http(s) URL (e.g. http://127.0.0.1:7370/v1/keys.bundle)")
	f.StringVar(&cfg.LogVKey, "log-vkey", os.Getenv("KEYCOMMIT_LOG_VKEY"), "the log's verifier key, C2SP vkey (default $KEYCOMMIT_LOG_VKEY)")
	f.StringVar(&cfg.Origin, "origin", "", "checkpoint origin to require (default: the log key's name)")
	f.StringVar(&cfg.PolicyFile, "witness-policy", "", "witness policy file (log, witness, group, quorum lines)")
	f.StringVar(&cfg.Previous, "previous", "", "a bundle saved by an earlier successful run (--save)")
	f.DurationVar(&cfg.MaxAge, "max-age", verify.DefaultMaxAge, "maximum age of the witness cosignatures that count")
	f.StringVar(&cfg.Save, "save", "", "write the bundle here once every check passed")
	f.BoolVar(&cfg.NoDelta, "no-delta", false, "with a URL and --previous, fetch the full bundle instead of a delta")
	f.StringVar(&cfg.Trust, "trust", "", "trust file naming several logs and the rule to merge them (docs/multilog.md); replaces the single-log flags")
	f.IntVar(&cfg.MinLogs, "min-logs", 0, "with --trust: how many logs must hold an issuer's identical commitment (default: the trust file's min-logs)")
	addJSONFlag(cmd, &cfg.JSON, "verify")
	return cmd
}

func usageErr(format string, args ...any) error {
	return &exitError{exitVerifyUsage, fmt.Errorf(format, args...)}
}

func checkErr(what string, err error) error {
	return &exitError{exitVerifyFailed, fmt.Errorf("verification failed: %s: %w", what, err)}
}

func runVerify(ctx context.Context, cfg *verifyConfig) error {
	if ctx == nil {
		ctx = context.Background()
	}
	switch {
	case cfg.Bundle == "":
		return usageErr("--bundle is required")
	case cfg.LogVKey == "":
		return usageErr("no log verifier key: set --log-vkey or $KEYCOMMIT_LOG_VKEY")
	case cfg.PolicyFile == "":
		return usageErr("--witness-policy is required")
	case cfg.MaxAge <= 0:
		return usageErr("--max-age must be positive")
	}
	pol, err := readWitnessPolicy(cfg.PolicyFile)
	if err != nil {
		return usageErr("%v", err)
	}
	v, err := verify.New(verify.Config{LogKey: strings.TrimSpace(cfg.LogVKey), Origin: cfg.Origin, Policy: pol, MaxAge: cfg.MaxAge})
	if err != nil {
		return usageErr("%v", err)
	}
	var prev *verify.Verified
	if cfg.Previous != "" {
		raw, err := os.ReadFile(cfg.Previous)
		if err != nil {
			return usageErr("couldn't read the previous bundle: %v", err)
		}
		if prev, err = v.VerifyStored(raw); err != nil {
			return checkErr("previous bundle "+cfg.Previous, err)
		}
		if _, err := prev.KeySet(); err != nil {
			return checkErr("previous bundle "+cfg.Previous, err)
		}
	}
	got, deltaBytes, err := fetchDelta(ctx, cfg, v, prev)
	var deltaErr string
	if got == nil {
		if err != nil {
			deltaErr = err.Error()
			if !cfg.JSON {
				fmt.Fprintf(cfg.Out, "delta not used (%v); fetching the full bundle\n", err)
			}
		}
		raw, err := fetchBundle(ctx, cfg, prev)
		if err != nil {
			return usageErr("%v", err)
		}
		if got, err = v.Verify(raw, prev); err != nil {
			return checkErr("bundle", err)
		}
	}
	ks, err := got.KeySet()
	if err != nil {
		return checkErr("bundle", err)
	}
	if cfg.Save != "" {
		if err := writeFileAtomic(cfg.Save, got.Stored(), 0o644); err != nil {
			return usageErr("bundle verified, but couldn't save it: %v", err)
		}
	}
	if cfg.JSON {
		return writeJSONOut(cfg.Out, newVerifyResult(got, ks, prev, deltaBytes, deltaErr))
	}
	if deltaBytes > 0 {
		fmt.Fprintf(cfg.Out, "applied a delta of %d bytes\n", deltaBytes)
	}
	printVerified(cfg.Out, got, ks, prev)
	return nil
}

// verifyResult is `keycommit verify --json`
// (schema/jsonschema/cli/verify.json).
type verifyResult struct {
	Origin             string              `json:"origin"`
	TreeSize           uint64              `json:"tree_size"`
	Root               []byte              `json:"root"`
	SnapshotIndex      uint64              `json:"snapshot_index"`
	SnapshotTime       string              `json:"snapshot_time"`
	PSTIssuers         int                 `json:"pst_issuers"`
	PrivacyPassIssuers int                 `json:"privacy_pass_issuers"`
	Cosignatures       []verifyCosignature `json:"cosignatures"`
	// PreviousSize and Changes are set with --previous.
	PreviousSize *uint64        `json:"previous_size,omitempty"`
	Changes      []verifyChange `json:"changes,omitempty"`
	// DeltaBytes is the size of the delta applied, DeltaError why none was.
	DeltaBytes int    `json:"delta_bytes,omitempty"`
	DeltaError string `json:"delta_error,omitempty"`
}

type verifyCosignature struct {
	Witness string `json:"witness"`
	Time    string `json:"time"`
	Counted bool   `json:"counted"`
}

type verifyChange struct {
	Issuer string `json:"issuer"`
	Part   string `json:"part"`
	Op     string `json:"op"`
}

func newVerifyResult(got *verify.Verified, ks *verify.KeySet, prev *verify.Verified, deltaBytes int, deltaErr string) *verifyResult {
	cp := got.Checkpoint
	r := &verifyResult{
		Origin: cp.Origin, TreeSize: cp.Size, Root: cp.Hash[:], SnapshotIndex: got.SnapshotIndex,
		SnapshotTime: got.SnapshotTime.UTC().Format(time.RFC3339Nano), PSTIssuers: ks.NumPST(), PrivacyPassIssuers: ks.NumPrivacyPass(),
		Cosignatures: []verifyCosignature{}, DeltaBytes: deltaBytes, DeltaError: deltaErr,
	}
	for _, c := range cp.Cosignatures {
		r.Cosignatures = append(r.Cosignatures, verifyCosignature{Witness: c.Witness, Time: c.Time.UTC().Format(time.RFC3339), Counted: c.Fresh})
	}
	if prev != nil {
		n := prev.Checkpoint.Size
		r.PreviousSize = &n
		r.Changes = []verifyChange{}
		for _, c := range got.Changes {
			r.Changes = append(r.Changes, verifyChange{Issuer: c.Issuer, Part: c.Part, Op: c.Op})
		}
	}
	return r
}

// fetchBundle reads the bundle from a file or a URL; with a previous
// bundle, a URL is fetched with ?old=<its size>.
func fetchBundle(ctx context.Context, cfg *verifyConfig, prev *verify.Verified) ([]byte, error) {
	if !strings.HasPrefix(cfg.Bundle, "http://") && !strings.HasPrefix(cfg.Bundle, "https://") {
		b, err := os.ReadFile(cfg.Bundle)
		if err != nil {
			return nil, fmt.Errorf("couldn't read the bundle: %v", err)
		}
		return b, nil
	}
	u, err := url.Parse(cfg.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bad bundle URL: %v", err)
	}
	if prev != nil {
		q := u.Query()
		q.Set("old", strconv.FormatUint(prev.Checkpoint.Size, 10))
		u.RawQuery = q.Encode()
	}
	status, b, err := getBounded(ctx, cfg.HTTP, u, "bundle")
	if err != nil {
		return nil, err
	}
	if status != "" {
		return nil, fmt.Errorf("fetching %s: %s: %s", u, status, b)
	}
	return b, nil
}

// getBounded GETs u, reading at most verify.MaxBundleSize bytes. For an
// answer other than 200 it returns the status and the trimmed body; what
// names the document in errors.
func getBounded(ctx context.Context, c *http.Client, u *url.URL, what string) (status string, body []byte, err error) {
	status, body, err = verify.GetBounded(ctx, c, u.String())
	if err != nil {
		return "", nil, fmt.Errorf("couldn't fetch the %s at %s: %v", what, u, err)
	}
	return status, body, nil
}

// fetchDelta, with a URL ending in /keys.bundle and a previous bundle,
// fetches the delta from it (docs/bundle.md) and verifies it. It returns
// nil and the reason when no delta could be used (the caller then falls
// back to the full bundle), nil and nil when no delta was tried.
func fetchDelta(ctx context.Context, cfg *verifyConfig, v *verify.Verifier, prev *verify.Verified) (*verify.Verified, int, error) {
	if prev == nil || cfg.NoDelta || !strings.HasPrefix(cfg.Bundle, "http://") && !strings.HasPrefix(cfg.Bundle, "https://") {
		return nil, 0, nil
	}
	u, err := url.Parse(cfg.Bundle)
	if err != nil || !strings.HasSuffix(u.Path, "/keys.bundle") {
		return nil, 0, nil
	}
	u.Path = strings.TrimSuffix(u.Path, "/keys.bundle") + "/keys.delta"
	q := u.Query()
	q.Set("old", strconv.FormatUint(prev.Checkpoint.Size, 10))
	q.Set("base", hex.EncodeToString(prev.Commitment()))
	u.RawQuery = q.Encode()
	status, b, err := getBounded(ctx, cfg.HTTP, u, "delta")
	if err != nil {
		return nil, 0, err
	}
	if status != "" {
		return nil, 0, fmt.Errorf("%s: %s", status, b)
	}
	got, err := v.VerifyDelta(b, prev)
	if err != nil {
		return nil, 0, fmt.Errorf("delta refused: %w", err)
	}
	return got, len(b), nil
}

func printVerified(w io.Writer, got *verify.Verified, ks *verify.KeySet, prev *verify.Verified) {
	cp := got.Checkpoint
	fmt.Fprintf(w, "verified keys bundle: %s, tree size %d, snapshot at index %d (%s), %d PST and %d Privacy Pass issuers\n",
		cp.Origin, cp.Size, got.SnapshotIndex, got.SnapshotTime.UTC().Format(time.RFC3339), ks.NumPST(), ks.NumPrivacyPass())
	var cos []string
	for _, c := range cp.Cosignatures {
		s := fmt.Sprintf("%s at %s", c.Witness, c.Time.UTC().Format(time.RFC3339))
		if !c.Fresh {
			s += " (not counted: too old or in the future)"
		}
		cos = append(cos, s)
	}
	fmt.Fprintf(w, "cosigned by: %s\n", strings.Join(cos, ", "))
	if prev == nil {
		return
	}
	fmt.Fprintf(w, "consistent with the previous bundle (tree size %d, snapshot at index %d)\n", prev.Checkpoint.Size, prev.SnapshotIndex)
	if len(got.Changes) == 0 {
		fmt.Fprintln(w, "no issuer's keys changed")
		return
	}
	for _, c := range got.Changes {
		fmt.Fprintf(w, "changed: %s %s %s\n", c.Issuer, c.Part, c.Op)
	}
}

// runVerifyTrust is `keycommit verify --trust`: every trusted log verified
// and their key sets merged by the rule of docs/multilog.md.
func runVerifyTrust(ctx context.Context, cfg *verifyConfig) error {
	if ctx == nil {
		ctx = context.Background()
	}
	tr, err := verify.ReadTrustFile(cfg.Trust)
	if err != nil {
		return usageErr("%v", err)
	}
	if cfg.MinLogs < 0 || cfg.MinLogs > len(tr.Logs) {
		return usageErr("--min-logs %d is out of range: the trust file names %d logs", cfg.MinLogs, len(tr.Logs))
	}
	m, err := verify.VerifyLogs(ctx, verify.MultiLog{Trust: tr, MinLogs: cfg.MinLogs, Fetch: verify.HTTPFetcher(cfg.HTTP)})
	if err != nil {
		return usageErr("%v", err)
	}
	if cfg.JSON {
		if err := writeJSONOut(cfg.Out, newTrustResult(m)); err != nil {
			return err
		}
	} else {
		printTrust(cfg.Out, m)
	}
	var refused, notOK int
	for _, l := range m.Logs {
		if l.Status != verify.LogOK {
			notOK++
		}
	}
	for _, r := range m.Issuers {
		if r.Decision == verify.Refused {
			refused++
		}
	}
	switch {
	case m.Available() == 0:
		return &exitError{exitVerifyFailed, printed{fmt.Errorf("verification failed: none of the %d trusted logs verified", len(m.Logs))}}
	case refused > 0 || notOK > 0:
		return &exitError{exitVerifySome, printed{fmt.Errorf("%d of %d logs not ok, %d of %d issuers refused; the accepted and pending issuers are usable", notOK, len(m.Logs), refused, len(m.Issuers))}}
	}
	return nil
}

// trustResult is `keycommit verify --trust --json`
// (schema/jsonschema/cli/verify-trust.json).
type trustResult struct {
	MinLogs      int    `json:"min_logs"`
	GraceSeconds int64  `json:"grace_seconds"`
	Time         string `json:"time"`
	// PST is the merged key set's PST part in the shape of Chrome's
	// component, PrivacyPass its Privacy Pass directories.
	PST         json.RawMessage `json:"pst"`
	PrivacyPass json.RawMessage `json:"privacy_pass"`
	Issuers     []trustIssuer   `json:"issuers"`
	Logs        []trustLog      `json:"logs"`
}

type trustIssuer struct {
	Issuer     string         `json:"issuer"`
	Decision   string         `json:"decision"`
	Reason     string         `json:"reason"`
	Logs       []string       `json:"logs"`
	Lagging    []string       `json:"lagging,omitempty"`
	Divergence []trustHolding `json:"divergence,omitempty"`
}

type trustHolding struct {
	Logs   []string `json:"logs"`
	KeyIDs []string `json:"key_ids"`
	Logged string   `json:"logged,omitempty"`
}

type trustLog struct {
	Log           string  `json:"log"`
	Bundle        string  `json:"bundle"`
	Status        string  `json:"status"`
	Error         string  `json:"error,omitempty"`
	Check         string  `json:"check,omitempty"`
	TreeSize      *uint64 `json:"tree_size,omitempty"`
	SnapshotIndex *uint64 `json:"snapshot_index,omitempty"`
	SnapshotTime  string  `json:"snapshot_time,omitempty"`
	Issuers       *int    `json:"issuers,omitempty"`
}

func newTrustResult(m *verify.Merged) *trustResult {
	r := &trustResult{MinLogs: m.MinLogs, GraceSeconds: int64(m.Grace / time.Second), Time: m.Now.UTC().Format(time.RFC3339Nano),
		PST: m.KeySet.PSTJSON(), PrivacyPass: m.KeySet.PrivacyPassJSON(), Issuers: []trustIssuer{}, Logs: []trustLog{}}
	for _, i := range m.Issuers {
		ti := trustIssuer{Issuer: i.Issuer, Decision: string(i.Decision), Reason: i.Reason, Logs: i.Logs, Lagging: i.Lagging}
		if ti.Logs == nil {
			ti.Logs = []string{}
		}
		for _, h := range i.Holdings {
			th := trustHolding{Logs: h.Logs, KeyIDs: h.KeyIDs}
			if th.KeyIDs == nil {
				th.KeyIDs = []string{}
			}
			if !h.Logged.IsZero() {
				th.Logged = h.Logged.UTC().Format(time.RFC3339Nano)
			}
			ti.Divergence = append(ti.Divergence, th)
		}
		r.Issuers = append(r.Issuers, ti)
	}
	for _, l := range m.Logs {
		tl := trustLog{Log: l.Log.Name, Bundle: l.Log.Bundle, Status: string(l.Status), Check: string(l.Check)}
		if l.Err != nil {
			tl.Error = l.Err.Error()
		}
		if v := l.Verified; v != nil {
			size, idx, n := v.Checkpoint.Size, v.SnapshotIndex, l.Issuers
			tl.TreeSize, tl.SnapshotIndex, tl.Issuers = &size, &idx, &n
			tl.SnapshotTime = v.SnapshotTime.UTC().Format(time.RFC3339Nano)
		}
		r.Logs = append(r.Logs, tl)
	}
	return r
}

func printTrust(w io.Writer, m *verify.Merged) {
	for _, l := range m.Logs {
		if v := l.Verified; v != nil {
			fmt.Fprintf(w, "log %s: ok, tree size %d, snapshot at index %d (%s), %d issuers\n", l.Log.Name, v.Checkpoint.Size, v.SnapshotIndex,
				v.SnapshotTime.UTC().Format(time.RFC3339), l.Issuers)
			continue
		}
		fmt.Fprintf(w, "log %s: %s: %v\n", l.Log.Name, l.Status, l.Err)
	}
	for _, i := range m.Issuers {
		fmt.Fprintf(w, "issuer %s: %s: %s\n", i.Issuer, i.Decision, i.Reason)
	}
	fmt.Fprintf(w, "merged key set: %d PST and %d Privacy Pass issuers (min-logs %d, grace %s); --json prints it\n",
		m.KeySet.NumPST(), m.KeySet.NumPrivacyPass(), m.MinLogs, m.Grace)
}
