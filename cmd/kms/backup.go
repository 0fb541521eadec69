package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/openkms/kms/internal/backup"
	"github.com/openkms/kms/internal/datadir"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/rekey"
	"github.com/openkms/kms/internal/store"
)

func backupCommand() *cobra.Command {
	var w backup.Where
	var out string
	// A backup comes before a rotation off a key that its token lets out.
	rk := rootKeyOptions{leaving: true}
	cmd := &cobra.Command{
		Use:   "backup -o FILE (--data-dir DIR | --storage URL)",
		Short: "Write a consistent snapshot of the key store and its audit trail to a file",
		Long: `Write a consistent snapshot of a key store to FILE (mode 0600).

The snapshot holds every record as stored, key material still sealed under
the root key, and the audit trail files of the data directory, with a
version header, the time of the snapshot, a SHA-256 checksum and an
authentication tag made with a key derived from the root key
(docs/backup.md), which a restore checks: whoever changes the file cannot
make its tag again. But an older backup has as good a tag: keep backups
where no one can replace them. The root key is not in it: keep the two
apart.

A PostgreSQL store (--storage) and its audit tables are read in one
REPEATABLE READ transaction while the cluster serves; the root key is
needed to authenticate the file (--root-key-file FILE, KMS_ROOT_KEY, or
--root-key pkcs11:... with --pkcs11-module). A data directory's store is
locked by its running server, so backup asks that server, which holds the
root key, for the snapshot through DIR/backup.sock; with no server
running, it reads the stopped store itself, with the root key given or
the directory's root.key.`,
		Example: `  kms backup -o kms-2026-01-31.kmsbak --data-dir /var/lib/kms
  kms backup -o kms.kmsbak --storage postgres://kms@db.internal/kms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := absDataDir(&w.DataDir); err != nil {
				return err
			}
			// A running server snapshots its store without the root key
			// given here, but two given are refused all the same.
			spec := rk.spec(w.DataDir, true)
			if err := spec.Check(); err != nil {
				return err
			}
			// Renamed over the root key file, the backup would leave no
			// key that opens the store or the backup.
			if err := datadir.RefuseOutputOver(spec.File, out, "-o"); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rootFor := func(ctx context.Context, st store.Store) (*keys.RootKey, error) {
				src, err := rk.load(w.DataDir)
				if err != nil {
					return nil, fmt.Errorf("%w (the backup is authenticated under it)", err)
				}
				defer src.Close()
				root, err := src.Root(ctx, st, false)
				if err != nil {
					return nil, err
				}
				// A tag made under another key would only be refused
				// at the restore.
				ok, err := rekey.Opens(ctx, st, root)
				if err != nil {
					return nil, err
				}
				if !ok {
					return nil, fmt.Errorf("%s is not the root key of this key store", src)
				}
				return root, nil
			}
			return backup.Write(ctx, w, out, rootFor, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "the backup file to write")
	f.StringVar(&w.DataDir, "data-dir", "", "the data directory: its store (unless --storage) and audit trail")
	f.StringVar(&w.Storage, "storage", "", "a postgres:// URL of the key store")
	rk.flags(f, "")
	cmd.MarkFlagRequired("output")
	return cmd
}

func restoreCommand() *cobra.Command {
	var w backup.Where
	var in string
	// A backup under a key its token lets out restores, to be rotated off it.
	rk := rootKeyOptions{leaving: true}
	var opts backup.RestoreOptions
	cmd := &cobra.Command{
		Use:   "restore -i FILE (--data-dir DIR | --storage URL)",
		Short: "Restore a backup into an empty key store, and verify it",
		Long: `Restore the backup FILE into a new data directory or an empty database.

restore refuses a target that holds records or an audit trail, a file
whose checksum fails, and one whose authentication tag was not made with
this root key (a file changed since it was written), or that has none
(format version 1, unless --allow-unauthenticated). Before writing anything it opens every sealed value of
the backup with the root key (--root-key-file FILE or KMS_ROOT_KEY, or
--root-key pkcs11:... with --pkcs11-module for a root key in an HSM, else
the root.key of the target data directory); after writing it reads the
store again and checks it holds exactly the backup's records. The records
are written in transactions of 1000, and until the restore is done the
target is marked unfinished: no server starts on it. The audit trail
files go into --data-dir.

It prints when the backup was taken, before it writes anything: an older
backup of the same store has as good a tag, and restores as well, bringing
back what was deleted or revoked since. Check that it is the one you mean.`,
		Example: `  kms restore -i kms.kmsbak --data-dir /var/lib/kms-restored --root-key-file /etc/kms/root.key
  kms restore -i kms.kmsbak --storage postgres://kms@db.internal/kms --root-key-file /etc/kms/root.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := absDataDir(&w.DataDir); err != nil {
				return err
			}
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
			return backup.Restore(ctx, in, w, root, opts, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&in, "input", "i", "", "the backup file to restore")
	f.StringVar(&w.DataDir, "data-dir", "", "the data directory: its store (unless --storage) and audit trail")
	f.StringVar(&w.Storage, "storage", "", "a postgres:// URL of an empty database")
	f.BoolVar(&opts.AllowUnauthenticated, "allow-unauthenticated", false, "restore a backup of format version 1, which has no authentication tag (whoever could write it could have changed the policies, grants and access keys in it)")
	rk.flags(f, "")
	cmd.MarkFlagRequired("input")
	return cmd
}
