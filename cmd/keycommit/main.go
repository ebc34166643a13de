// Command keycommit runs and uses a transparency log for the key
// commitments of Private State Token and Privacy Pass issuers: the log
// itself, witnesses that cosign its checkpoints, monitors that replay it,
// the issuer tools that submit keys, and the verifier user agents run.
//
// Every subcommand is thin: it turns flags into a library Config and calls
// the library. Run `keycommit help` for the list.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// newRootCmd builds the command tree: every group is constructed here,
// explicitly, and builds its own subcommands.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "keycommit",
		Short:         "A transparency log for privacy-token issuer keys",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newLogCmd(), newWitnessCmd(), newMonitorCmd(), newIssuerCmd(),
		newPolicyCmd(), newVerifyCmd(), newDevCmd(), newVersionCmd())
	setVersion(root)
	setExamples(root)
	setCompletions(root)
	return root
}

func main() {
	cmd, err := newRootCmd().ExecuteC()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keycommit:", err)
		var p printed
		if wantsJSON(cmd) && !errors.As(err, &p) {
			writeJSONOut(os.Stdout, newJSONError(err))
		}
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

// newLogger returns a text logger writing to w at the level named by
// level (debug, info, warn or error), the value of a --log-level flag.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
}
