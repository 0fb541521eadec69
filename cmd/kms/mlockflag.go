package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/openkms/kms/internal/memlock"
)

// lockFlag gives cmd, a command that reads a root key or holds key
// material or plaintext in the clear, the flag --mlock: its memory is
// locked into RAM (internal/memlock) before the command does anything,
// or the command refuses to run. kms server has its own, a setting of
// its config file too.
func lockFlag(cmd *cobra.Command) *cobra.Command {
	var lock bool
	cmd.Flags().BoolVar(&lock, "mlock", false, "lock this process's memory into RAM (mlockall) so that no key material or plaintext is written to swap; refuses to run if it cannot: lift RLIMIT_MEMLOCK (ulimit -l unlimited) or grant CAP_IPC_LOCK")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if lock {
			if err := memlock.Lock(); err != nil {
				return fmt.Errorf("--mlock: cannot lock this process's memory: %w", err)
			}
		}
		return run(cmd, args)
	}
	return cmd
}
