package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/client"
	"github.com/keycommit/keycommit/log/issuer"
	"github.com/keycommit/keycommit/schema"
	"github.com/spf13/cobra"
)

// exitRefused is the exit code of an issuer command whose submission the
// log's policy refused (as opposed to 1, any other failure).
const exitRefused = 3

// exitDiffer is the exit code of `issuer status` with several logs whose
// latest key commitments for the issuer differ (or one of which could not
// be checked).
const exitDiffer = 4

func newIssuerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issuer",
		Short: "Issuer tools: account keys, registration, key commitments, incident reports, status",
		Long: `Issuer tools. Every command that talks to a log takes --log URL and --log-vkey
VKEY (defaults from $KEYCOMMIT_LOG and $KEYCOMMIT_LOG_VKEY), verifies the log's
signature on every checkpoint it is handed and the inclusion proof of every entry
it submits.

Several logs: repeat --log URL --log-vkey VKEY (paired in order), or give
--logs TRUSTFILE (the trust file of ` + "`keycommit verify --trust`" + `, docs/multilog.md).
register, submit and report then sign one statement per log (each after the
issuer's latest entry in that log), skip a log whose latest entry for the issuer
already is that statement (so running the same command again retries only where
it is missing), and report per log; status shows each log's view and where the
latest key commitments differ.

Exit codes: 0 success (with several logs: every log holds the statement);
1 any failure (with several logs: some log failed or could not be checked);
3 the log's policy refused the submission (the message names the rule and the
numbers; with several logs: refused by some log, held by the others); 4 status
with several logs: their latest key commitments for the issuer differ.`,
	}
	cmd.AddCommand(newIssuerKeygenCmd(), newIssuerRegisterCmd(), newIssuerSubmitCmd(),
		newIssuerReportCmd(), newIssuerStatusCmd(), newIssuerGenCommitmentCmd(), newIssuerChallengeCmd())
	return cmd
}

// logFlags are the flags naming the log an issuer command talks to.
type logFlags struct{ url, vkey string }

func (f *logFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "log", os.Getenv("KEYCOMMIT_LOG"), "log URL (default $KEYCOMMIT_LOG)")
	cmd.Flags().StringVar(&f.vkey, "log-vkey", os.Getenv("KEYCOMMIT_LOG_VKEY"), "log verifier key, C2SP vkey (default $KEYCOMMIT_LOG_VKEY)")
}

func (f *logFlags) client() (*client.Client, error) {
	if f.url == "" {
		return nil, errors.New("no log: set --log or $KEYCOMMIT_LOG")
	}
	if f.vkey == "" {
		return nil, errors.New("no log verifier key: set --log-vkey or $KEYCOMMIT_LOG_VKEY")
	}
	return client.New(f.url, f.vkey, &http.Client{Timeout: 60 * time.Second})
}

func newIssuerKeygenCmd() *cobra.Command {
	var out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Create an issuer account key (Ed25519, PKCS#8 PEM, mode 0600); prints the public key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := issuer.WriteKeyFile(out)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), &keygenResult{KeyFile: out, PublicKey: pub})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "account key written to %s\n%s\n", out, base64.StdEncoding.EncodeToString(pub))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "issuer.key", "where to write the private key (refuses to overwrite)")
	addJSONFlag(cmd, &asJSON, "issuer-keygen")
	return cmd
}

// keygenResult is `issuer keygen --json`
// (schema/jsonschema/cli/issuer-keygen.json).
type keygenResult struct {
	KeyFile string `json:"key_file"`
	// PublicKey is the Ed25519 public key, standard base64.
	PublicKey []byte `json:"public_key"`
}

// submitFlags are the flags common to commands that sign and submit.
type submitFlags struct {
	logsFlags
	keyFile, origin       string
	dryRun, asJSON, again bool
}

func (f *submitFlags) add(cmd *cobra.Command) {
	f.logsFlags.add(cmd)
	cmd.Flags().StringVar(&f.keyFile, "key", "issuer.key", "the issuer's account key file")
	cmd.Flags().StringVar(&f.origin, "origin", "", "the issuer's HTTPS origin (required)")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "ask the log's policy without logging anything (POST /v1/check)")
	cmd.Flags().BoolVar(&f.again, "again", false, "with several logs: submit even to a log whose latest entry for the issuer already is this statement (e.g. to renew an unchanged registration)")
	addJSONFlag(cmd, &f.asJSON, "issuer-submit")
	cmd.Flags().Lookup("json").Usage = "print the log's answer (index, leaf hash, entry, inclusion proof, checkpoint; with --dry-run the policy's decision) as JSON (schema/jsonschema/cli/issuer-submit.json); errors and refusals too (cli/error.json), with the same exit codes"
	cmd.MarkFlagRequired("origin")
}

// checkLogKey fetches the log's checkpoint and verifies it with the log
// key the command was given: a command that writes to the log checks it
// is talking to the log it means before it writes.
func checkLogKey(ctx context.Context, c *client.Client, vkey string) error {
	if _, _, err := c.Checkpoint(ctx); err != nil {
		return fmt.Errorf("refusing to submit anything: the log's checkpoint does not verify with --log-vkey %s (a wrong key, or not that log): %w", vkey, err)
	}
	return nil
}

// signAndSubmit signs body as a statement of kind and submits it (or asks
// the policy, with --dry-run), printing the outcome.
func (f *submitFlags) signAndSubmit(ctx context.Context, w io.Writer, p *issuer.Issuer, kind schema.Kind, body any) error {
	if f.dryRun {
		res, err := p.Check(ctx, kind, body)
		if err != nil {
			return err
		}
		if !res.Accept {
			return &exitError{exitRefused, &refusedError{fmt.Sprintf("the log would refuse this %s: rule %s: %s", kind, res.Rule, res.Reason), res.Rule, res.Reason}}
		}
		if f.asJSON {
			return writeJSONOut(w, &dryRunResult{DryRun: true, Accept: true, Kind: string(kind)})
		}
		fmt.Fprintf(w, "the log would accept this %s now (dry run; nothing logged)\n", kind)
		return nil
	}
	res, err := p.Submit(ctx, kind, body)
	if err != nil {
		if rej, ok := client.Reject(err); ok {
			return &exitError{exitRefused, &refusedError{fmt.Sprintf("the log refused this %s: rule %s: %s", kind, rej.Rule, rej.Reason), rej.Rule, rej.Reason}}
		}
		return err
	}
	if f.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(&res.SubmitResult)
	}
	fmt.Fprintf(w, "%s logged at index %d, proven in the log's checkpoint of size %d\nleaf hash %s\n",
		kind, res.Index, res.TreeSize, base64.StdEncoding.EncodeToString(res.LeafHash))
	return nil
}

// dryRunResult is `issuer register|submit|report --dry-run --json` when
// the log would accept (a refusal is a cli/error object with its rule).
type dryRunResult struct {
	DryRun bool   `json:"dry_run"`
	Accept bool   `json:"accept"`
	Kind   string `json:"kind"`
}

func newIssuerRegisterCmd() *cobra.Command {
	var f submitFlags
	var contact, newKey string
	cmd := &cobra.Command{
		Use:   "register --origin ORIGIN --contact URI [--key FILE] [--new-key FILE]",
		Short: "Register an issuer origin, renew its registration, or change its account key",
		Long: `Registers ORIGIN with the account key in --key. If ORIGIN is already registered,
this renews the registration (signed by --key, the key in force); with --new-key
it also moves the account to the key in that file, which signs a proof of
possession.

The first registration of an origin, and any registration after its registration
lapsed (a renewal after the lapse, or a reclaim by a new key in --key), needs
proof of control of the origin: serve the challenge of ` + "`keycommit issuer challenge`" + `
first. The log fetches it; a refusal (exit 3, rule origin-control) says what the
log fetched and what it expected.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var account ed25519.PrivateKey
			if newKey != "" {
				k, err := issuer.ReadKeyFile(newKey)
				if err != nil {
					return err
				}
				account = k
			}
			return f.submitToLogs(cmd, schema.KindRegistration, func(p *issuer.Issuer) (any, error) {
				if newKey != "" && p.Status == nil {
					return nil, fmt.Errorf("%s is not registered yet: register it with --key before changing its key", p.Origin)
				}
				a := p.Key
				if account != nil {
					a = account
				}
				reg := &schema.Registration{Contact: contact, AccountKey: a.Public().(ed25519.PublicKey)}
				if account != nil {
					if err := reg.ProveKeyPossession(p.Origin, p.Prev, account); err != nil {
						return nil, err
					}
				}
				return reg, nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&contact, "contact", "", "mailto: or https: URI where the issuer can be reached (required)")
	cmd.Flags().StringVar(&newKey, "new-key", "", "move the account to the key in this file")
	cmd.MarkFlagRequired("contact")
	return cmd
}

func newIssuerSubmitCmd() *cobra.Command {
	var f submitFlags
	var commitment, emergency string
	cmd := &cobra.Command{
		Use:   "submit --origin ORIGIN --commitment FILE [--emergency REPORT.json]",
		Short: "Submit a key commitment (PST key commitment or Privacy Pass issuer directory)",
		Long: `Submits the key commitment in FILE exactly as the issuer serves it: a Private
State Token key commitment ({"PrivateStateTokenV1VOPRF": {...}}) or an RFC 9578
issuer directory. It is validated and canonicalized first; anything dropped or
rewritten is reported. With --emergency, the commitment is an emergency rotation
and REPORT.json is its preliminary incident report:
  {"summary": "...", "discovered": <ms since epoch>, "impact": "...",
   "root_cause": "...", "remediation": "...", "url": "https://..."}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(commitment)
			if err != nil {
				return fmt.Errorf("couldn't read commitment: %w", err)
			}
			kc, notes, err := schema.ParseCommitmentFile(raw)
			for _, n := range notes {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", n)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", commitment, err)
			}
			if emergency != "" {
				r, err := readIncidentReport(emergency)
				if err != nil {
					return err
				}
				kc.Emergency = r
			}
			return f.submitToLogs(cmd, schema.KindKeyCommitment, func(p *issuer.Issuer) (any, error) {
				if p.Status == nil {
					return nil, fmt.Errorf("%s is not registered with this log: run `keycommit issuer register` first", p.Origin)
				}
				return kc, nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&commitment, "commitment", "", "the key commitment file (required)")
	cmd.Flags().StringVar(&emergency, "emergency", "", "an emergency rotation: its preliminary incident report (JSON)")
	cmd.MarkFlagRequired("commitment")
	return cmd
}

func readIncidentReport(path string) (*schema.IncidentReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read incident report: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var r schema.IncidentReport
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("incident report %s: %w", path, err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := r.CheckDiscovered(time.Now()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func newIssuerReportCmd() *cobra.Command {
	var f submitFlags
	var report string
	var emergencyIndex int64
	cmd := &cobra.Command{
		Use:   "report --origin ORIGIN --emergency-index N --report REPORT.json",
		Short: "Log the final incident report for an earlier emergency rotation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if emergencyIndex < 0 {
				return errors.New("--emergency-index is required: the log index of the emergency commitment")
			}
			r, err := readIncidentReport(report)
			if err != nil {
				return err
			}
			body := &schema.IncidentFinal{Emergency: uint64(emergencyIndex), Report: *r}
			return f.submitToLogs(cmd, schema.KindIncidentReport, func(p *issuer.Issuer) (any, error) {
				if p.Status == nil {
					return nil, fmt.Errorf("%s is not registered with this log", p.Origin)
				}
				return body, nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&report, "report", "", "the final incident report (JSON, same fields as --emergency) (required)")
	cmd.Flags().Int64Var(&emergencyIndex, "emergency-index", -1, "log index of the emergency commitment this report closes (required)")
	cmd.MarkFlagRequired("report")
	return cmd
}

func newIssuerStatusCmd() *cobra.Command {
	var f logsFlags
	var origin string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status --origin ORIGIN",
		Short: "Show the log's view of an issuer: registration, keys, when the next rotation is allowed",
		Long: `Shows the log's view of ORIGIN (GET /v1/issuers/<origin>) after verifying it: the
log's checkpoint with --log-vkey, then the registration in force, the latest entry
and the latest key commitment the status names, each fetched, proven included in
that checkpoint and compared with the status.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := originArg(origin)
			if err != nil {
				return err
			}
			ts, err := f.targets()
			if err != nil {
				return err
			}
			if len(ts) > 1 {
				st := logsStatus(cmd.Context(), ts, o)
				if asJSON {
					if err := writeJSONOut(cmd.OutOrStdout(), st); err != nil {
						return err
					}
				} else {
					printLogsStatus(cmd.OutOrStdout(), st)
				}
				if !st.Agree {
					code := exitDiffer
					for _, ls := range st.Logs {
						if ls.Error != "" {
							code = 1
						}
					}
					err := &exitError{code, fmt.Errorf("the logs differ for %s: %s", o, strings.Join(st.Differences, "; "))}
					if asJSON {
						return printed{err}
					}
					return err
				}
				return nil
			}
			c, err := ts[0].client()
			if err != nil {
				return err
			}
			res, err := fetchIssuerStatus(cmd.Context(), c, o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), res)
			}
			printIssuerStatus(cmd.OutOrStdout(), res.Issuer)
			fmt.Fprintf(cmd.OutOrStdout(), "verified          entries %v are in the log's checkpoint of size %d (signed by the log key) and match this status\n", res.Verified.Entries, res.Verified.CheckpointSize)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&origin, "origin", "", "the issuer's HTTPS origin (required)")
	addJSONFlag(cmd, &asJSON, "issuer-status")
	cmd.MarkFlagRequired("origin")
	return cmd
}

// originArg normalizes an origin given on the command line, taking a bare
// host name as https://host.
func originArg(s string) (string, error) {
	if s != "" && !strings.Contains(s, "://") {
		s = "https://" + s
	}
	return schema.NormalizeOrigin(s)
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func printIssuerStatus(w io.Writer, res *api.Issuer) {
	st := res.Status
	fmt.Fprintf(w, "issuer            %s\n", st.Origin)
	fmt.Fprintf(w, "contact           %s\n", st.Contact)
	fmt.Fprintf(w, "account key       %s\n", base64.StdEncoding.EncodeToString(st.AccountKey))
	lapsed := ""
	if st.RegistrationLapsed {
		lapsed = " (LAPSED: renew with `keycommit issuer register`, with proof of control: `keycommit issuer challenge`)"
	}
	fmt.Fprintf(w, "registered        index %d, expires %s%s\n", st.Registered, fmtMs(st.RegistrationExpires), lapsed)
	if st.Control != nil {
		fmt.Fprintf(w, "origin control    proven at index %d: %s %s checked %s\n", *st.ControlIndex, st.Control.Method, st.Control.URL, fmtMs(st.Control.Time))
	}
	for _, r := range st.Reclaims {
		fmt.Fprintf(w, "RECLAIMED         at index %d (%s) by a new account key after the registration at index %d lapsed; previous key %s\n",
			r.Index, fmtMs(r.Time), r.Lapsed, base64.StdEncoding.EncodeToString(r.PreviousKey))
	}
	fmt.Fprintf(w, "latest entry      index %d at %s, leaf hash %s\n", st.LastIndex, fmtMs(st.LastTime), base64.StdEncoding.EncodeToString(st.LastLeafHash))
	if st.Commitment == nil {
		fmt.Fprintf(w, "key commitment    none yet\n")
	} else {
		fmt.Fprintf(w, "key commitment    index %d at %s, %d keys\n", *st.Commitment, fmtMs(st.CommitmentTime), len(st.Keys))
		for _, v := range st.CommitmentIDs {
			fmt.Fprintf(w, "  %s id %d (next commitment needs a larger id)\n", v.Version, v.ID)
		}
	}
	switch {
	case st.NextRotation == 0:
		fmt.Fprintf(w, "next rotation     allowed now\n")
	case st.NextRotation <= st.Now:
		fmt.Fprintf(w, "next rotation     allowed now (since %s)\n", fmtMs(st.NextRotation))
	default:
		fmt.Fprintf(w, "next rotation     allowed from %s (normal); earlier only as an emergency with an incident report\n", fmtMs(st.NextRotation))
	}
	if st.OpenIncident != nil {
		fmt.Fprintf(w, "open incident     emergency at index %d has no final report: no further emergency until `keycommit issuer report`\n", *st.OpenIncident)
	}
	fmt.Fprintf(w, "emergencies       %d in the last %s\n", st.EmergenciesInWindow, humanSeconds(st.Params.EmergencyWindow))
	fmt.Fprintf(w, "keys in window    %d added; %d more allowed now\n", st.KeysInWindow, st.KeysAllowedNow)
	fmt.Fprintf(w, "entries           %v\n", res.Entries)
}
