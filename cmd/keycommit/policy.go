package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer"
	"github.com/keycommit/keycommit/policy"
	"github.com/keycommit/keycommit/schema"
	"github.com/spf13/cobra"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "The admission policy: check a commitment before submitting it, show the parameters",
	}
	cmd.AddCommand(newPolicyCheckCmd(), newPolicyParamsCmd())
	return cmd
}

// policyCheckFlags configure `policy check`.
type policyCheckFlags struct {
	logFlags
	// issuer is the origin the commitment is for; with --log it is judged
	// against that issuer's history.
	issuer string
	// keyFile, with --log, signs the commitment for the log's own dry run
	// (POST /v1/check) instead of replaying the log locally.
	keyFile string
	// emergency is a preliminary incident report: check the commitment as
	// an emergency rotation.
	emergency string
	// at is the time to judge at (RFC 3339); default now.
	at string
	// asJSON prints a policyCheckResult.
	asJSON bool
}

// policyCheckResult is `policy check --json`
// (schema/jsonschema/cli/policy-check.json). Acceptable is false exactly
// when the exit code is 3.
type policyCheckResult struct {
	Acceptable bool   `json:"acceptable"`
	File       string `json:"file"`
	// What describes the commitment ("" when it could not be parsed).
	What string `json:"what,omitempty"`
	// Issuer is the origin it was judged for, At the time it was judged at
	// (RFC 3339; "" for the log's own dry run, at the log's time).
	Issuer string `json:"issuer"`
	At     string `json:"at,omitempty"`
	// Mode is "offline", "replay" (the log's entries replayed here) or
	// "log" (the log's dry run, POST /v1/check).
	Mode string `json:"mode"`
	// Replayed is the number of log entries replayed (mode replay).
	Replayed uint64          `json:"replayed,omitempty"`
	Notes    []string        `json:"notes"`
	Problems []policyProblem `json:"problems"`
}

type policyProblem struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

func newPolicyCheckCmd() *cobra.Command {
	var f policyCheckFlags
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a PST key commitment or Privacy Pass issuer directory against the policy",
		Long: `Check FILE, a PST key commitment or an RFC 9578 issuer directory exactly as the
issuer serves it, against the log's admission rules, and print every problem
with its rule and numbers. Members the consumers ignore are dropped and noted.

Without --log (or, with --issuer, $KEYCOMMIT_LOG), FILE is judged offline as the first commitment of a newly
registered issuer (origin --issuer, or a placeholder) at the current time
(or --at). Exit 0 only when it is acceptable.

With --log URL --log-vkey VKEY --issuer ORIGIN it is judged against that
issuer's history: with --key FILE (the issuer's account key) the commitment is
signed and the log's own dry run (POST /v1/check) decides, at the log's time;
without --key the log's entries are fetched and replayed here (every decision
of the log re-checked) and the commitment is judged against the replayed state.

Exit codes: 0 acceptable; 3 not acceptable (the messages say why); 1 any other
failure.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPolicyCheck(cmd.Context(), cmd.OutOrStdout(), &f, args[0])
		},
	}
	f.logFlags.url, f.logFlags.vkey = "", ""
	cmd.Flags().StringVar(&f.logFlags.url, "log", "", "judge against this log's history (needs --issuer and --log-vkey; with --issuer, default $KEYCOMMIT_LOG)")
	cmd.Flags().StringVar(&f.logFlags.vkey, "log-vkey", os.Getenv("KEYCOMMIT_LOG_VKEY"), "the log's verifier key, C2SP vkey (default $KEYCOMMIT_LOG_VKEY)")
	cmd.Flags().StringVar(&f.issuer, "issuer", "", "the issuer's HTTPS origin")
	cmd.Flags().StringVar(&f.keyFile, "key", "", "with --log: the issuer's account key, to ask the log's own dry run")
	cmd.Flags().StringVar(&f.emergency, "emergency", "", "check as an emergency rotation with this preliminary incident report (JSON)")
	cmd.Flags().StringVar(&f.at, "at", "", "judge at this time (RFC 3339) instead of now; not with --key")
	addJSONFlag(cmd, &f.asJSON, "policy-check")
	return cmd
}

// placeholderOrigin stands for the issuer when `policy check` runs offline
// without --issuer.
const placeholderOrigin = "https://new-issuer.invalid"

func runPolicyCheck(ctx context.Context, w io.Writer, f *policyCheckFlags, file string) error {
	res := &policyCheckResult{File: file, Mode: "offline", Notes: []string{}, Problems: []policyProblem{}}
	err := policyCheck(ctx, res, f, file)
	if f.asJSON {
		if err != nil && !errors.As(err, new(*problemsError)) {
			return err // an error object, from main
		}
		if werr := writeJSONOut(w, res); werr != nil {
			return werr
		}
		if err != nil {
			return printed{err}
		}
		return nil
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if res.Mode == "replay" {
		fmt.Fprintf(w, "replayed %d log entries\n", res.Replayed)
	}
	for _, p := range res.Problems {
		fmt.Fprintf(w, "refused by rule %s: %s\n", p.Rule, p.Reason)
	}
	if err == nil {
		switch res.Mode {
		case "offline":
			fmt.Fprintf(w, "%s is acceptable as the first commitment of a new issuer (at %s)\n", res.What, res.At)
		case "replay":
			fmt.Fprintf(w, "%s is acceptable for %s now (%s), given the log's %d entries\n", res.What, res.Issuer, res.At, res.Replayed)
		case "log":
			fmt.Fprintf(w, "the log would accept %s for %s now (dry run; nothing logged)\n", res.What, res.Issuer)
		}
	}
	return err
}

// problemsError is a policy check that found problems (exit code 3); the
// problems are in the result.
type problemsError struct{ n int }

func (e *problemsError) Error() string { return fmt.Sprintf("not acceptable: %d problem(s)", e.n) }

// refuse records the problems ds in res and returns the exit-3 error.
func refuse(res *policyCheckResult, ds []policy.Decision) error {
	if len(ds) == 0 {
		res.Acceptable = true
		return nil
	}
	for _, d := range ds {
		res.Problems = append(res.Problems, policyProblem{Rule: d.Rule, Reason: d.Reason})
	}
	return &exitError{exitRefused, &problemsError{len(ds)}}
}

// policyCheck judges file as f says, filling in res.
func policyCheck(ctx context.Context, res *policyCheckResult, f *policyCheckFlags, file string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("couldn't read the commitment: %w", err)
	}
	kc, notes, err := schema.ParseCommitmentFile(raw)
	res.Notes = append(res.Notes, notes...)
	if err != nil {
		return refuse(res, []policy.Decision{{Rule: "format", Reason: fmt.Sprintf("%s is not acceptable: %v", file, err)}})
	}
	if f.emergency != "" {
		rep, err := readIncidentReport(f.emergency)
		if err != nil {
			return err
		}
		kc.Emergency = rep
	}
	// Make sure what would be logged is a valid, canonical body.
	if _, err := schema.CanonicalizeBody(schema.KindKeyCommitment, kc); err != nil {
		return refuse(res, []policy.Decision{{Rule: "format", Reason: fmt.Sprintf("%s is not acceptable: %v", file, err)}})
	}
	at := time.Now().UnixMilli()
	if f.at != "" {
		t, err := time.Parse(time.RFC3339, f.at)
		if err != nil {
			return fmt.Errorf("--at: %w", err)
		}
		at = t.UnixMilli()
	}
	origin := placeholderOrigin
	if f.issuer != "" {
		if origin, err = originArg(f.issuer); err != nil {
			return err
		}
	}
	res.Issuer, res.What = origin, describeCommitment(kc)
	if f.url == "" && f.issuer != "" {
		f.url = os.Getenv("KEYCOMMIT_LOG")
	}
	if f.url == "" {
		if f.keyFile != "" {
			return errors.New("--key needs --log (or $KEYCOMMIT_LOG)")
		}
		res.At = fmtMs(at)
		return refuse(res, policy.CheckCommitment(policy.NewState(), origin, kc, at))
	}
	if f.issuer == "" {
		return errors.New("--log needs --issuer, the origin whose history the commitment is judged against")
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	if f.keyFile != "" {
		if f.at != "" {
			return errors.New("--at does not apply to the log's dry run, which uses the log's time")
		}
		res.Mode = "log"
		return checkWithLog(ctx, res, c, f.keyFile, origin, kc)
	}
	st, err := replayLog(ctx, c)
	if err != nil {
		return err
	}
	if latest := latestTime(st, origin); latest > at {
		at = latest
	}
	res.Mode, res.Replayed, res.At = "replay", st.Size(), fmtMs(at)
	if _, ok := st.Issuer(origin); !ok {
		res.Notes = append(res.Notes, fmt.Sprintf("%s is not registered in the log; judged as a new issuer's first commitment", origin))
	}
	return refuse(res, policy.CheckCommitment(st, origin, kc, at))
}

func describeCommitment(kc *schema.KeyCommitment) string {
	keys, _ := kc.Keys()
	kind := "PST key commitment (" + strings.Join(kc.PST.Versions(), ", ") + ")"
	if kc.PrivacyPass != nil {
		kind = "Privacy Pass issuer directory"
	}
	if kc.Emergency != nil {
		kind = "emergency " + kind
	}
	return fmt.Sprintf("this %s with %d keys", kind, len(keys))
}

// checkWithLog signs the commitment with the issuer's account key and asks
// the log's policy (POST /v1/check); nothing is logged.
func checkWithLog(ctx context.Context, res *policyCheckResult, c *client.Client, keyFile, origin string, kc *schema.KeyCommitment) error {
	key, err := issuer.ReadKeyFile(keyFile)
	if err != nil {
		return err
	}
	if err := checkLogKey(ctx, c, c.Verifier().Name()); err != nil {
		return err
	}
	is, err := issuer.Open(ctx, c, origin, key)
	if err != nil {
		return err
	}
	sub, err := is.Sign(schema.KindKeyCommitment, kc)
	if err != nil {
		return err
	}
	cr, err := c.Check(ctx, sub)
	if err != nil {
		return fmt.Errorf("couldn't ask the log's policy: %w", err)
	}
	if !cr.Accept {
		return refuse(res, []policy.Decision{{Rule: cr.Rule, Reason: cr.Reason}})
	}
	res.Acceptable = true
	return nil
}

// replayLog fetches every entry up to the log's latest checkpoint and
// builds the policy state, re-checking each of the log's decisions.
func replayLog(ctx context.Context, c *client.Client) (*policy.State, error) {
	cp, _, err := c.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't fetch the log's checkpoint: %w", err)
	}
	st := policy.NewLogState(cp.Origin)
	for start := uint64(0); start < cp.Size; {
		end := min(start+api.MaxEntriesPerRequest, cp.Size)
		es, err := c.Entries(ctx, start, end)
		if err != nil {
			return nil, fmt.Errorf("couldn't fetch entries [%d, %d): %w", start, end, err)
		}
		for _, re := range es {
			e, err := schema.ParseEntry(re.Data)
			if err != nil {
				return nil, fmt.Errorf("log entry %d: %w", re.Index, err)
			}
			if d := policy.Evaluate(st, e, re.Index); !d.Accept {
				return nil, fmt.Errorf("the log admitted entry %d, which the policy refuses: %w", re.Index, d.Err())
			}
			var lh [32]byte
			copy(lh[:], re.LeafHash)
			if err := st.Apply(e, re.Index, lh); err != nil {
				return nil, fmt.Errorf("log entry %d: %w", re.Index, err)
			}
		}
		start = end
	}
	return st, nil
}

func latestTime(st *policy.State, origin string) int64 {
	if is, ok := st.Issuer(origin); ok {
		return is.LastTime
	}
	return 0
}

func newPolicyParamsCmd() *cobra.Command {
	var f logFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "params",
		Short: "Print the policy parameters (the defaults, or with --log the log's), the requirements for inclusion they make, and the rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			p := policy.DefaultParams()
			source := "defaults"
			if f.url != "" {
				c, err := f.client()
				if err != nil {
					return err
				}
				lp, err := c.Policy(cmd.Context())
				if err != nil {
					return fmt.Errorf("couldn't fetch the log's policy: %w", err)
				}
				p, source = *lp, "in force at "+f.url
			}
			if asJSON {
				return writeJSONOut(w, p)
			}
			printParams(w, p, source)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.url, "log", "", "print the parameters in force at this log (GET /v1/policy)")
	cmd.Flags().StringVar(&f.vkey, "log-vkey", os.Getenv("KEYCOMMIT_LOG_VKEY"), "the log's verifier key, C2SP vkey (default $KEYCOMMIT_LOG_VKEY)")
	addJSONFlag(cmd, &asJSON, "policy-params")
	return cmd
}

func printParams(w io.Writer, p schema.PolicyParams, source string) {
	dur := humanSeconds
	fmt.Fprintf(w, "policy parameters (%s):\n", source)
	for _, r := range []struct{ name, value, what string }{
		{"min_rotation_interval", dur(p.MinRotationInterval), "between rotations (commitments adding a key), unless emergency"},
		{"max_emergencies", fmt.Sprint(p.MaxEmergencies), "emergency rotations per emergency_window"},
		{"emergency_window", dur(p.EmergencyWindow), "rolling window for max_emergencies"},
		{"max_keys_voprf", fmt.Sprint(p.MaxKeysVOPRF), "keys per PST VOPRF commitment"},
		{"max_keys_pmb", fmt.Sprint(p.MaxKeysPMB), "keys per PST PMB commitment"},
		{"max_keys_privacy_pass", fmt.Sprint(p.MaxKeysPrivacyPass), "token-keys per Privacy Pass directory"},
		{"max_keys_per_window", fmt.Sprint(p.MaxKeysPerWindow), "distinct new keys per issuer per key_window"},
		{"key_window", dur(p.KeyWindow), "rolling window for max_keys_per_window"},
		{"max_key_lifetime", dur(p.MaxKeyLifetime), "latest PST key expiry after the entry time"},
		{"min_batch_size", fmt.Sprint(p.MinBatchSize), "smallest PST batchsize"},
		{"max_batch_size", fmt.Sprint(p.MaxBatchSize), "largest PST batchsize"},
		{"registration_lifetime", dur(p.RegistrationLifetime), "a registration lapses unless renewed"},
	} {
		fmt.Fprintf(w, "  %-22s %-10s %s\n", r.name, r.value, r.what)
	}
	fmt.Fprintln(w, "\nrequirements for inclusion (what GET /v1/policy and /v1/policy.html publish for these parameters):")
	for _, r := range policy.RequirementTexts(p) {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	fmt.Fprintln(w, "\nrules, in the order they are checked:")
	for _, r := range policy.Rules {
		fmt.Fprintf(w, "  %-16s %s\n", r.Name, r.Description)
	}
}
