package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			fmt.Fprintf(cmd.OutOrStdout(), "kms %s (commit %s) built with %s\n", v.version, v.commit, runtime.Version())
			return nil
		},
	}
}

type versionInfo struct{ version, commit string }

// buildVersion reads the module version and the VCS commit that the Go
// toolchain stamped into the binary ("(devel)" and "unknown" where it did
// not, as for `go run`).
func buildVersion() versionInfo {
	v := versionInfo{version: "(devel)", commit: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.version = bi.Main.Version
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && v.commit != "unknown" {
		v.commit += "+modified"
	}
	return v
}
