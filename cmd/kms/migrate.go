package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/openkms/kms/internal/migrate"
)

func migrateCommand() *cobra.Command {
	var o migrate.Options
	cmd := &cobra.Command{
		Use:   "migrate --from SRC --to DST",
		Short: "Copy the key store to another data directory or PostgreSQL database, and verify the copy",
		Long: `Copy every record of a key store to another one, and verify the copy.

SRC and DST are each a data directory (its store is DIR/kms.db) or a
PostgreSQL URL (postgres://... or postgresql://...). DST must be empty: a
new or empty data directory (created with mode 0700), or a database without
key store records. A data directory, and a root.key and kms.db in it, must
be the running user's own as the server requires (docs/operations.md, "The
data directory"): one that another user owns or may write is refused.

The root key comes from --root-key-file FILE or KMS_ROOT_KEY (or --root-key:
the key itself, or a PKCS#11 URI with --pkcs11-module for a root key in an
HSM), else from the root.key of SRC's (or DST's) data directory (--dev). It
must open SRC, or nothing is written. A root key in an HSM wraps the
store's own root key in a record that is copied with the others: servers
on DST use the same token key.

No server may run on SRC. A data directory is locked while a server has it
open, so migrate refuses then. Stop every node of a PostgreSQL SRC first:
records written during the copy would be missed, and the verification fails.

After the copy, migrate checks that both sides hold the same records (count
and SHA-256), and that sample keys encrypt, decrypt, make MACs and give
public keys alike on both sides. It exits 1 on any difference. Into a data
directory it also copies SRC's root.key and dev credentials file if DST has
none. The audit trail is not part of the key store and stays where it is.`,
		Example: `  kms migrate --from kms-data --to postgres://kms@db.internal/kms --root-key-file /etc/kms/root.key
  kms migrate --from postgres://kms@db.internal/kms --to /var/lib/kms --root-key-file /etc/kms/root.key
  kms migrate --from kms-data --to kms-data-copy   # dev: root.key and credentials come along`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.RootKeyFrom = "--root-key"
			if o.RootKeyText == "" {
				o.RootKeyText, o.RootKeyFrom = os.Getenv("KMS_ROOT_KEY"), "KMS_ROOT_KEY"
			}
			o.Getenv = os.Getenv
			o.Out = cmd.OutOrStdout()
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			_, err := migrate.Run(ctx, o)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.From, "from", "", "the key store to copy: a data directory or a postgres:// URL")
	f.StringVar(&o.To, "to", "", "where to copy it: a new or empty data directory, or a postgres:// URL of an empty database")
	f.StringVar(&o.RootKeyFile, "root-key-file", "", "file holding the root key (32 bytes as base64 or hex)")
	f.StringVar(&o.RootKeyText, "root-key", "", "the root key in an HSM as a PKCS#11 URI (pkcs11:token=NAME;object=LABEL), or the key itself (32 bytes as base64 or hex); else KMS_ROOT_KEY")
	f.StringVar(&o.PKCS11Module, "pkcs11-module", "", "the PKCS#11 module (shared library) of a pkcs11: root key's token")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}
