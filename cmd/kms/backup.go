package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/openkms/kms/internal/backup"
	"github.com/openkms/kms/internal/keys"
)

func backupCommand() *cobra.Command {
	var w backup.Where
	var out string
	cmd := &cobra.Command{
		Use:   "backup -o FILE (--data-dir DIR | --storage URL)",
		Short: "Write a consistent snapshot of the key store and its audit trail to a file",
		Long: `Write a consistent snapshot of a key store to FILE (mode 0600).

The snapshot holds every record as stored, key material still sealed under
the root key, and the audit trail files of the data directory, with a
version header and a SHA-256 checksum (docs/backup.md). The root key is not
in it and is not needed to take it: keep the two apart.

A PostgreSQL store (--storage) and its audit tables are read in one
REPEATABLE READ transaction while the cluster serves. A data directory's
store is locked by its running server, so backup asks that server for the
snapshot through DIR/backup.sock; with no server running, it reads the
stopped store itself.`,
		Example: `  kms backup -o kms-2026-01-31.kmsbak --data-dir /var/lib/kms
  kms backup -o kms.kmsbak --storage postgres://kms@db.internal/kms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return backup.Write(ctx, w, out, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "the backup file to write")
	f.StringVar(&w.DataDir, "data-dir", "", "the data directory: its store (unless --storage) and audit trail")
	f.StringVar(&w.Storage, "storage", "", "a postgres:// URL of the key store")
	cmd.MarkFlagRequired("output")
	return cmd
}

func restoreCommand() *cobra.Command {
	var w backup.Where
	var in string
	var rk rootKeyOptions
	cmd := &cobra.Command{
		Use:   "restore -i FILE (--data-dir DIR | --storage URL)",
		Short: "Restore a backup into an empty key store, and verify it",
		Long: `Restore the backup FILE into a new data directory or an empty database.

restore refuses a target that holds records or an audit trail, and a file
whose checksum fails. Before writing anything it opens every sealed value of
the backup with the root key (--root-key-file FILE or KMS_ROOT_KEY, or
--root-key pkcs11:... with --pkcs11-module for a root key in an HSM, else
the root.key of the target data directory); after writing it reads the
store again and checks it holds exactly the backup's records. The records
are written in one transaction. The audit trail files go into --data-dir.`,
		Example: `  kms restore -i kms.kmsbak --data-dir /var/lib/kms-restored --root-key-file /etc/kms/root.key
  kms restore -i kms.kmsbak --storage postgres://kms@db.internal/kms --root-key-file /etc/kms/root.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src, err := rk.load(w.DataDir)
			if err != nil {
				return err
			}
			defer src.Close()
			wrapped, err := backup.ReadRecord(in, keys.WrappedRootRecord)
			if err != nil {
				return err
			}
			root, err := src.Unwrap(wrapped)
			if err != nil {
				return err
			}
			src.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return backup.Restore(ctx, in, w, root, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&in, "input", "i", "", "the backup file to restore")
	f.StringVar(&w.DataDir, "data-dir", "", "the data directory: its store (unless --storage) and audit trail")
	f.StringVar(&w.Storage, "storage", "", "a postgres:// URL of an empty database")
	rk.flags(f, "")
	cmd.MarkFlagRequired("input")
	return cmd
}
