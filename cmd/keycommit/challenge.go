package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/keycommit/keycommit/log/challenge"
	"github.com/keycommit/keycommit/log/checkpoint"
	"github.com/keycommit/keycommit/log/durable"
	"github.com/keycommit/keycommit/log/issuer"
	"github.com/keycommit/keycommit/schema"
	"github.com/spf13/cobra"
)

// challengeFlags are log serve's flags for the fetch of proofs of origin
// control.
type challengeFlags struct {
	caFiles      []string
	dial         []string
	allowPrivate bool
	timeout      time.Duration
}

func (f *challengeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.caFiles, "challenge-ca", nil, "PEM file of certificate authorities trusted, besides the system roots, when fetching origins' challenges (repeatable; tests and private deployments)")
	cmd.Flags().StringArrayVar(&f.dial, "challenge-dial", nil, "HOST[:PORT]=ADDR: fetch HOST's challenge from ADDR (IP[:PORT]) instead of resolving it, like curl --resolve; the address is allowed even if private (repeatable; HOST * maps every other host, for tests)")
	cmd.Flags().BoolVar(&f.allowPrivate, "challenge-allow-private", false, "UNSAFE outside tests: let challenge fetches reach loopback, private and link-local addresses")
	cmd.Flags().DurationVar(&f.timeout, "challenge-timeout", challenge.DefaultTimeout, "bound on each challenge fetch, redirects included")
}

// fetcher builds the challenge fetcher the flags describe.
func (f *challengeFlags) fetcher() (*challenge.Fetcher, error) {
	cfg := challenge.Config{AllowPrivate: f.allowPrivate, Timeout: f.timeout, Dial: map[string]string{}}
	if len(f.caFiles) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, file := range f.caFiles {
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("--challenge-ca: %w", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("--challenge-ca %s: no PEM certificate in it", file)
			}
		}
		cfg.Roots = pool
	}
	for _, d := range f.dial {
		host, addr, ok := strings.Cut(d, "=")
		if !ok || host == "" || addr == "" {
			return nil, fmt.Errorf("--challenge-dial %q: want HOST[:PORT]=ADDR", d)
		}
		cfg.Dial[strings.ToLower(host)] = addr
	}
	return challenge.New(cfg)
}

func newIssuerChallengeCmd() *cobra.Command {
	var f logFlags
	var keyFile, origin, out string
	cmd := &cobra.Command{
		Use:   "challenge --key FILE --origin ORIGIN --log URL --out FILE",
		Short: "Write the challenge that proves control of ORIGIN to the log; prints where to serve it",
		Long: `Before the log admits the first registration of an origin, or its registration by
anyone after it lapsed (a reclaim), the log fetches a challenge from the origin
over HTTPS and compares it byte for byte. The challenge binds the log (its
checkpoint origin), the origin and the account key in --key.

This writes the exact bytes to serve to --out and prints, as its last line, the
path under the origin where they must be served (GET ORIGIN+PATH must answer 200
with exactly those bytes; redirects only within the same host). The log's name
comes from --log-vkey when given, else from the first line of GET /checkpoint.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := originArg(origin)
			if err != nil {
				return err
			}
			key, err := issuer.ReadKeyFile(keyFile)
			if err != nil {
				return err
			}
			name, err := logName(cmd.Context(), f)
			if err != nil {
				return err
			}
			pub := key.Public().(ed25519.PublicKey)
			body := schema.Challenge(name, o, pub)
			// Published (the operator serves it): fsynced with its directory.
			if err := durable.Replace(out, body, 0o644); err != nil {
				return fmt.Errorf("couldn't write the challenge: %w", err)
			}
			u := schema.ChallengeURL(name, o, pub)
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "challenge for %s to register with log %s written to %s (%d bytes)\nserve it at %s\n%s\n",
				o, name, out, len(body), u, strings.TrimPrefix(u, o))
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&keyFile, "key", "issuer.key", "the account key the registration will carry")
	cmd.Flags().StringVar(&origin, "origin", "", "the issuer's HTTPS origin (required)")
	cmd.Flags().StringVar(&out, "out", "", "file to write the challenge to (required)")
	cmd.MarkFlagRequired("origin")
	cmd.MarkFlagRequired("out")
	return cmd
}

// logName returns the log's name: its vkey's, or the origin line of its
// checkpoint.
func logName(ctx context.Context, f logFlags) (string, error) {
	if f.vkey != "" {
		v, err := checkpoint.NewVerifier(f.vkey)
		if err != nil {
			return "", fmt.Errorf("--log-vkey: %w", err)
		}
		return v.Name(), nil
	}
	if f.url == "" {
		return "", errors.New("no log: set --log or $KEYCOMMIT_LOG")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(f.url, "/")+"/checkpoint", nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("couldn't fetch the log's checkpoint: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil || res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("couldn't fetch the log's checkpoint: status %d %v", res.StatusCode, err)
	}
	name, _, _ := strings.Cut(string(b), "\n")
	if err := checkpoint.CheckOrigin(name); err != nil {
		return "", fmt.Errorf("the log's checkpoint names %q: %w", name, err)
	}
	return name, nil
}
