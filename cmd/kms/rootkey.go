package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/openkms/kms/internal/atomicfile"
	"github.com/openkms/kms/internal/backup"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/rekey"
)

func rootKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "root-key",
		Short: "Root key ceremonies",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(rootKeyRotateCommand())
	return cmd
}

func rootKeyRotateCommand() *cobra.Command {
	var w backup.Where
	var oldFile, newFile, newText string
	cmd := &cobra.Command{
		Use:   "rotate (--data-dir DIR | --storage URL) --new-root-key-file FILE",
		Short: "Rewrap every sealed record of the key store under a new root key",
		Long: `Rewrap every value sealed under the root key — key material, import
tokens, access key secrets, the audit signing key, the root key check — under
a new root key, in one store transaction: killed at any point, the store
opens with the old root key or with the new one, never with neither.
Afterwards the old root key no longer opens the store.

The old root key comes as for the server: --root-key-file FILE, else
KMS_ROOT_KEY, else the data directory's root.key (--dev), which is then
replaced by the new key once the rotation has committed. The new one comes
from --new-root-key-file FILE (or --new-root-key, 32 bytes as base64 or hex;
visible to other users of the machine in the process list).

Offline: stop every server on the store first. A server holds the root key
in memory and would seal new records under the old one. A data directory is
locked while its server runs, and a cluster's running node holds the
maintenance lease: rotate refuses in both cases.`,
		Example: `  kms root-key rotate --data-dir /var/lib/kms --root-key-file /etc/kms/root.key --new-root-key-file /etc/kms/root.key.new
  kms root-key rotate --storage postgres://kms@db.internal/kms --root-key-file old.key --new-root-key-file new.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			devFile := ""
			if oldFile == "" && os.Getenv("KMS_ROOT_KEY") == "" && w.DataDir != "" {
				devFile = filepath.Join(w.DataDir, "root.key")
			}
			old, err := rootKeyFlags(oldFile, os.Getenv("KMS_ROOT_KEY"), w.DataDir)
			if err != nil {
				return err
			}
			var newKeyText []byte
			switch {
			case newFile != "" && newText != "":
				return errors.New("give --new-root-key-file or --new-root-key, not both")
			case newFile != "":
				if newKeyText, err = os.ReadFile(newFile); err != nil {
					return fmt.Errorf("new root key file: %w", err)
				}
			case newText != "":
				newKeyText = []byte(newText + "\n")
			default:
				return errors.New("no new root key: pass --new-root-key-file FILE")
			}
			new, err := keys.ParseRootKey(newKeyText)
			if err != nil {
				return fmt.Errorf("new root key: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			st, loc, err := backup.OpenExisting(ctx, w)
			if err != nil {
				return err
			}
			defer st.Close()
			release, err := rekey.Hold(ctx, st)
			if err != nil {
				return err
			}
			defer release()
			fmt.Fprintf(out, "Rewrapping the sealed records of %s under the new root key.\n", loc)
			n, err := rekey.Rotate(ctx, st, old, new, func(n int) {
				// Each of the first hundred, then every thousandth.
				if n <= 100 || n%1000 == 0 {
					fmt.Fprintf(out, "  rewrapped %d\n", n)
				}
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Rotated: %d sealed values now open with the new root key only.\n", n)
			if devFile != "" {
				if err := atomicfile.Write(devFile, newKeyText, 0o600); err != nil {
					return fmt.Errorf("the store is rotated, but replacing %s failed: %w; put the new root key there by hand", devFile, err)
				}
				fmt.Fprintf(out, "Replaced %s with the new root key.\n", devFile)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&w.DataDir, "data-dir", "", "the data directory (its kms.db, unless --storage)")
	f.StringVar(&w.Storage, "storage", "", "a postgres:// URL of the key store")
	f.StringVar(&oldFile, "root-key-file", "", "file holding the current root key")
	f.StringVar(&newFile, "new-root-key-file", "", "file holding the new root key (32 bytes as base64 or hex)")
	f.StringVar(&newText, "new-root-key", "", "the new root key itself (32 bytes as base64 or hex)")
	return cmd
}
