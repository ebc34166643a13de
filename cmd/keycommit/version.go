package main

import (
	"fmt"

	"github.com/keycommit/keycommit/log/api"
	"github.com/keycommit/keycommit/log/server"
	"github.com/spf13/cobra"
)

// versionLine is the one-line form of v, printed by `keycommit version`
// and `keycommit --version`.
func versionLine(v api.Version) string {
	s := "keycommit " + v.Version
	if v.Revision != "" {
		s += ", revision " + v.Revision
		if v.Modified {
			s += " (modified)"
		}
		if v.Time != "" {
			s += " of " + v.Time
		}
	}
	return s + ", built with " + v.GoVersion
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the module version, VCS revision and Go version of this binary",
		Long: `Prints the version of this binary from its Go build information: the module
version (a tag, a pseudo-version from the VCS state, or "(devel)"), the VCS
revision and time it was built from, whether the work tree was modified, and the
Go version. Every server (log, witness, monitor) answers the same at GET
/v1/version.`,
		Example: `  keycommit version
  keycommit version --json
  keycommit --version`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := server.BuildVersion()
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), &v)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine(v))
			return err
		},
	}
	addJSONFlag(cmd, &asJSON, "version")
	return cmd
}

// setVersion gives root its --version flag.
func setVersion(root *cobra.Command) {
	root.Version = versionLine(server.BuildVersion())
	root.SetVersionTemplate("{{.Version}}\n")
}
