package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Exit codes of keycommit verify (documented in its help and docs/bundle.md).
const (
	exitVerifyOK     = 0 // every check passed
	exitVerifyUsage  = 1 // bad flags, unreadable files, fetch failures
	exitVerifyFailed = 2 // a check failed: the bundle must not be used
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
}

func newVerifyCmd() *cobra.Command {
	cfg := verifyConfig{HTTP: &http.Client{Timeout: time.Minute}}
	cmd := &cobra.Command{
		Use:   "verify --bundle FILE_OR_URL --log-vkey VKEY --witness-policy FILE [--previous FILE] [--max-age DURATION] [--save FILE]",
		Short: "Verify a keys bundle as a user agent does",
		Long: `Verify a keys bundle (docs/bundle.md) as a user agent does: the key set
hashes to the snapshot entry's digest, the entry is a snapshot included in the
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
2 a check failed (the message names it; do not use the keys).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Out = cmd.OutOrStdout()
			return runVerify(cmd.Context(), &cfg)
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
		stored, err := got.Stored()
		if err != nil {
			return usageErr("bundle verified, but couldn't encode it for saving: %v", err)
		}
		if err := writeFileAtomic(cfg.Save, stored, 0o644); err != nil {
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
		Origin: cp.Origin, TreeSize: cp.Size, Root: cp.Hash[:], SnapshotIndex: got.Bundle.Index,
		SnapshotTime: got.SnapshotTime.UTC().Format(time.RFC3339Nano), PSTIssuers: len(ks.PST), PrivacyPassIssuers: len(ks.PrivacyPass),
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("couldn't fetch the %s: %v", what, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, verify.MaxBundleSize+1))
	if err != nil {
		return "", nil, fmt.Errorf("couldn't fetch the %s: %v", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.Status, bytes.TrimSpace(b), nil
	}
	if len(b) > verify.MaxBundleSize {
		return "", nil, fmt.Errorf("%s at %s is over the limit of %d bytes", what, u, verify.MaxBundleSize)
	}
	return "", b, nil
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
	d := sha256.Sum256(prev.Bundle.KeySet)
	q := u.Query()
	q.Set("old", strconv.FormatUint(prev.Checkpoint.Size, 10))
	q.Set("base", hex.EncodeToString(d[:]))
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
		cp.Origin, cp.Size, got.Bundle.Index, got.SnapshotTime.UTC().Format(time.RFC3339), len(ks.PST), len(ks.PrivacyPass))
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
	fmt.Fprintf(w, "consistent with the previous bundle (tree size %d, snapshot at index %d)\n", prev.Checkpoint.Size, prev.Bundle.Index)
	if len(got.Changes) == 0 {
		fmt.Fprintln(w, "no issuer's keys changed")
		return
	}
	for _, c := range got.Changes {
		fmt.Fprintf(w, "changed: %s %s %s\n", c.Issuer, c.Part, c.Op)
	}
}
