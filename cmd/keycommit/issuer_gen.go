package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/keycommit/keycommit/log/durable"
	"os"
	"time"

	"github.com/keycommit/keycommit/log/issuer"
	"github.com/spf13/cobra"
)

// writeNewFile writes b to a new file at path with mode perm, refusing to
// overwrite.
func writeNewFile(path string, b []byte, perm os.FileMode) error {
	err := durable.WriteNew(path, b, perm)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("refusing to overwrite %s", path)
	}
	return err
}

func newIssuerGenCommitmentCmd() *cobra.Command {
	var out, keysOut string
	var id, first uint32
	var n, batch int
	var lifetime time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gen-commitment --out FILE --keys-out FILE [--id N] [--first-key K] [--keys N]",
		Short: "Generate fresh PST VOPRF (P-384) keys and their key commitment, for trying keycommit out",
		Long: `Generates N fresh P-384 VOPRF key pairs and writes the PrivateStateTokenV1VOPRF
key commitment for them to --out, and the private keys to --keys-out (mode 0600).
A real issuer takes its commitment from its issuance server instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pairs, err := issuer.NewPSTCommitment(id, first, n, batch, time.Now().Add(lifetime))
			if err != nil {
				return err
			}
			cb, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				return err
			}
			kb, err := json.MarshalIndent(pairs, "", "  ")
			if err != nil {
				return err
			}
			if err := writeNewFile(keysOut, append(kb, '\n'), 0o600); err != nil {
				return fmt.Errorf("couldn't write private keys: %w", err)
			}
			if err := writeNewFile(out, append(cb, '\n'), 0o644); err != nil {
				return fmt.Errorf("couldn't write commitment: %w", err)
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), &genCommitmentResult{ID: id, Keys: n, Out: out, KeysOut: keysOut})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "commitment id %d with %d keys written to %s; private keys in %s\n", id, n, out, keysOut)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "commitment.json", "where to write the key commitment")
	cmd.Flags().StringVar(&keysOut, "keys-out", "commitment-keys.json", "where to write the private keys (mode 0600)")
	cmd.Flags().Uint32Var(&id, "id", 1, "commitment id (must increase with every commitment)")
	cmd.Flags().Uint32Var(&first, "first-key", 1, "label and key id of the first key")
	cmd.Flags().IntVar(&n, "keys", 2, "number of keys")
	cmd.Flags().IntVar(&batch, "batch-size", 10, "batchsize of the commitment")
	cmd.Flags().DurationVar(&lifetime, "lifetime", 90*24*time.Hour, "how long the keys stay valid")
	addJSONFlag(cmd, &asJSON, "issuer-gen-commitment")
	return cmd
}

// genCommitmentResult is `issuer gen-commitment --json`
// (schema/jsonschema/cli/issuer-gen-commitment.json).
type genCommitmentResult struct {
	ID      uint32 `json:"id"`
	Keys    int    `json:"keys"`
	Out     string `json:"out"`
	KeysOut string `json:"keys_out"`
}
