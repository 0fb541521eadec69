package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/openkms/kms/internal/atomicfile"
	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/backup"
	"github.com/openkms/kms/internal/hsm"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/rekey"
	"github.com/openkms/kms/internal/rootkey"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/pgstore"
)

func rootKeyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "root-key",
		Short: "Root key ceremonies",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(lockFlag(rootKeyInitCommand()), lockFlag(rootKeyRotateCommand()))
	return cmd
}

func rootKeyRotateCommand() *cobra.Command {
	var w backup.Where
	var old, new rootKeyOptions
	old.leaving = true // the way off a key that a token lets out
	cmd := &cobra.Command{
		Use:   "rotate (--data-dir DIR | --storage URL) (--new-root-key-file FILE | --new-root-key pkcs11:...)",
		Short: "Rewrap every sealed record of the key store under a new root key",
		Long: `Rewrap every value sealed under the root key — key material, import
tokens, access key secrets, the audit signing key, the root key check — under
a new root key, in one store transaction: killed at any point, the store
opens with the old root key or with the new one, never with neither.
Afterwards the old root key no longer opens the store. A data directory's
kms.db is then compacted, so that its free pages keep nothing sealed under
the old key; a PostgreSQL store's kms_records is rewritten (VACUUM FULL),
so that its files keep no old row version: that needs the role that owns
the table, and else rotate warns and says what to run. The WAL, replicas
and backups keep the old rows (docs/operations.md).

The old root key comes as for the server: --root-key-file FILE or
--root-key (a PKCS#11 URI, or the key itself; else KMS_ROOT_KEY), not both,
else the data directory's root.key (--dev), which is then replaced by the
new key once the rotation has committed. The data directory, its root.key
and its kms.db must be the running user's own as the server requires
(docs/operations.md, "The data directory"). The new one comes from
--new-root-key-file FILE, or --new-root-key: 32 bytes as base64 or hex
(visible to other users of the machine in the process list), or a PKCS#11
URI of a key in an HSM (kms root-key init makes one). Moving the root key
into an HSM or out of it is such a rotation: to a key in a token, the
records are rewrapped under a new random root key that the token's key
wraps (the store's meta/rootkey-wrapped record); out of it, that record is
removed. --pkcs11-module names the module of either token.

Offline: stop every server on the store first. A server holds the root key
in memory and would seal new records under the old one. A data directory is
locked while its server runs, and every running node of a cluster shares
its serving lease: rotate refuses in both cases, and nodes do not start
while it works.`,
		Example: `  kms root-key rotate --data-dir /var/lib/kms --root-key-file /etc/kms/root.key --new-root-key-file /etc/kms/root.key.new
  kms root-key rotate --storage postgres://kms@db.internal/kms --root-key-file old.key --new-root-key-file new.key
  KMS_PKCS11_PIN=... kms root-key rotate --data-dir /var/lib/kms --root-key-file /etc/kms/root.key \
      --new-root-key 'pkcs11:token=kms;object=kms-root' --pkcs11-module /usr/lib/softhsm/libsofthsm2.so`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := absDataDir(&w.DataDir); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			oldSpec := old.spec(w.DataDir, true)
			devFile := ""
			if w.DataDir != "" && oldSpec.File == filepath.Join(w.DataDir, "root.key") && old.file == "" {
				devFile = oldSpec.File
			}
			if !oldSpec.Given() {
				return errors.New("no root key: pass --root-key-file FILE, set KMS_ROOT_KEY, or pass --root-key pkcs11:token=NAME;object=LABEL")
			}
			new.module = old.module
			newSpec := new.spec("", false)
			newSpec.ValueName = "--new-root-key"
			var newKeyText []byte
			switch {
			case new.file != "" && new.value != "":
				return errors.New("give --new-root-key-file or --new-root-key, not both")
			case new.file != "":
				b, err := keys.ReadRootKeyText(new.file)
				if err != nil {
					return fmt.Errorf("new root key file: %w", err)
				}
				newKeyText = b
			case new.value != "" && !hsm.IsURI(new.value):
				newKeyText = []byte(new.value + "\n")
			case new.value == "":
				return errors.New("no new root key: pass --new-root-key-file FILE or --new-root-key pkcs11:...")
			}
			oldSrc, err := rootkey.Load(oldSpec)
			if err != nil {
				return err
			}
			defer oldSrc.Close()
			newSrc, err := rootkey.Load(newSpec)
			if err != nil {
				return fmt.Errorf("new root key: %w", err)
			}
			defer newSrc.Close()
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
			oldRoot, err := oldSrc.Root(ctx, st, false)
			if err != nil {
				return err
			}
			newRoot, wrapped, err := newSrc.Fresh()
			if err != nil {
				return err
			}
			// Refused before any line of progress: a refusal changes
			// nothing, and a line that says the records are being
			// rewrapped would say otherwise.
			if err := rekey.Ready(ctx, st, oldRoot, newRoot); err != nil {
				return err
			}
			fmt.Fprintf(out, "Rewrapping the sealed records of %s under the new root key.\n", loc)
			rotated, err := rekey.RotateWrapped(ctx, st, oldRoot, newRoot, wrapped, func(n int) {
				// Each of the first hundred, then every thousandth.
				if n <= 100 || n%1000 == 0 {
					fmt.Fprintf(out, "  rewrapped %d\n", n)
				}
			})
			if err != nil {
				return err
			}
			n := rotated.Sealed
			if len(rotated.Refused) > 0 {
				fmt.Fprintf(out, "Left as they were, changed outside the server and refused under either root key: %s.\n", strings.Join(rotated.Refused, ", "))
			}
			if newSrc.InToken() {
				fmt.Fprintf(out, "Rotated: %d sealed values now open with a new root key, wrapped by %s only.\n", n, newSrc)
			} else {
				fmt.Fprintf(out, "Rotated: %d sealed values now open with the new root key only.\n", n)
			}
			switch {
			case devFile == "":
			case newKeyText != nil:
				if err := atomicfile.Write(devFile, newKeyText, 0o600); err != nil {
					return fmt.Errorf("the store is rotated, but replacing %s failed: %w; put the new root key there by hand", devFile, err)
				}
				fmt.Fprintf(out, "Replaced %s with the new root key.\n", devFile)
			default:
				if err := os.Remove(devFile); err != nil {
					return fmt.Errorf("the store is rotated, but removing the old root key %s failed: %w", devFile, err)
				}
				fmt.Fprintf(out, "Removed %s: it no longer opens the store.\n", devFile)
			}
			// The values sealed under the old key stay in the file's free
			// pages until bbolt reuses them, and in a table's dead tuples
			// until it is rewritten. The rotation stands whatever happens
			// from here: an exit status of 1 says that the store is under
			// the old key. The rotation is marked as an erasure first, so
			// that a server started on the store compacts it at its first
			// maintenance round should this command not (killed,
			// interrupted, no room for the copy).
			marked, marks, err := markErased(ctx, st, newRoot)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "kms: warning: the store is rotated, but marking it for a server to compact failed: %v\n", err)
			}
			switch s := st.(type) {
			case *boltstore.Store:
				if err := s.Compact(ctx); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), compactWarning(err))
					return nil
				}
				fmt.Fprintf(out, "Compacted %s: it holds nothing sealed under the old root key.\n", loc)
			case *pgstore.Store:
				if err := s.Compact(ctx, pgstore.CompactLockTimeout); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "kms: warning: the store is rotated, but %v: its old row versions, which the old root key opens, stay in the table's files until it is rewritten: by the first server started on the store whose role may (its maintenance round), or by the table's owner running VACUUM FULL kms_records with no other session open\n", err)
					return nil
				}
				fmt.Fprintf(out, "Rewrote kms_records: its files hold nothing sealed under the old root key.\n")
			}
			if marked != nil {
				// Compacted: no server needs to again. Left, the marks
				// would only cost one needless copy.
				store.TakeErased(ctx, marked, marks)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&w.DataDir, "data-dir", "", "the data directory (its kms.db, unless --storage)")
	f.StringVar(&w.Storage, "storage", "", "a postgres:// URL of the key store")
	old.flags(f, "")
	new.flags(f, "new-")
	return cmd
}

// markErased marks st, rotated to root, as a store whose files may hold
// erased values (store.NoteErased), so that a server started on it
// compacts it at its first maintenance round; it returns the store the
// marks were written through (st, its records authenticated under root
// if st's are) and the marks, for the command to take once it compacted
// st itself.
func markErased(ctx context.Context, st store.Store, root *keys.RootKey) (store.Store, []store.Mark, error) {
	var state authstore.State
	if err := st.View(ctx, func(tx store.Tx) error {
		var err error
		state, err = authstore.ReadState(tx, root)
		return err
	}); err != nil {
		return nil, nil, err
	}
	if state == authstore.Authenticated {
		st = authstore.Wrap(st, authstore.NewKey(root))
	}
	if err := st.Update(ctx, store.NoteErased); err != nil {
		return nil, nil, err
	}
	marks, err := store.Erased(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	return st, marks, nil
}

// compactWarning is the warning of a rotation that committed but whose
// compaction of kms.db failed with err: what the file may still hold,
// and what to do. A compaction whose file took the old one's place, but
// whose directory did not sync, did clear the file: only a crash before
// the directory syncs brings the old file back.
func compactWarning(err error) string {
	if errors.Is(err, boltstore.ErrCompactedNotDurable) {
		return fmt.Sprintf("kms: warning: the store is rotated, but %v: kms.db holds nothing sealed under the old root key, but until the directory syncs (run sync), a crash may bring back the file from before the compaction, whose free pages hold values sealed under the old root key", err)
	}
	if errors.Is(err, context.Canceled) {
		return "kms: warning: the store is rotated, but its compaction was interrupted: kms.db's free pages may still hold the values sealed under the old root key, which opens them, until a server started on it compacts it at its first maintenance round"
	}
	return fmt.Sprintf("kms: warning: the store is rotated, but %v: its free pages may still hold the values sealed under the old root key, which opens them, until a server started on it compacts it at its first maintenance round (which needs room for a second copy of kms.db)", err)
}

func rootKeyInitCommand() *cobra.Command {
	var file, value, module string
	cmd := &cobra.Command{
		Use:   "init (--root-key pkcs11:token=NAME;object=LABEL --pkcs11-module PATH | --root-key-file FILE)",
		Short: "Make a new root key: an AES key in an HSM, or a key file",
		Long: `Make a new root key.

With --root-key pkcs11:token=NAME;object=LABEL (an RFC 7512 PKCS#11 URI) and
--pkcs11-module PATH, generate an AES-256 key labelled LABEL inside the token
labelled NAME: kept on the token, sensitive and not extractable, so that it
never leaves it. The PIN comes from the URI's pin-source=file:/path (or
pin-value), else KMS_PKCS11_PIN. init refuses if the token already holds a
key with that label. A key made by other tools works as well, found by its
label (pkcs11-tool --module PATH --token-label NAME --login --keygen
--key-type AES:32 --label LABEL --sensitive).

With --root-key-file FILE, write 32 random bytes as base64 to FILE (mode
0600), refusing if it exists.

Then start the server with the same --root-key (or --root-key-file): on the
first start of a new store, a server with a key in a token generates the
store's root key in memory and keeps it only wrapped by the token's key.
To move an existing store into the token, use kms root-key rotate.`,
		Example: `  softhsm2-util --init-token --free --label kms --so-pin 5678 --pin 1234
  KMS_PKCS11_PIN=1234 kms root-key init --root-key 'pkcs11:token=kms;object=kms-root' --pkcs11-module /usr/lib/softhsm/libsofthsm2.so
  kms root-key init --root-key-file /etc/kms/root.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			switch {
			case (file == "") == (value == ""):
				return errors.New("give --root-key pkcs11:... or --root-key-file FILE")
			case file != "":
				created, err := atomicfile.CreateOnce(file, keys.GenerateRootKey(), 0o600)
				if err != nil {
					return err
				}
				if !created {
					return fmt.Errorf("%s exists: init writes only a new file", file)
				}
				fmt.Fprintf(out, "Wrote a new root key to %s.\n", file)
				return nil
			}
			u, err := hsm.ParseURI(value)
			if err != nil {
				return fmt.Errorf("--root-key: %w", err)
			}
			pin, err := u.PIN(os.Getenv)
			if err != nil {
				return fmt.Errorf("root key %s: %w", u.Redacted(), err)
			}
			if err := hsm.Create(module, u, pin); err != nil {
				return fmt.Errorf("root key %s: %w", u.Redacted(), err)
			}
			fmt.Fprintf(out, "Created a non-extractable AES-256 key labelled %q in token %q.\n", u.Object, u.Token)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&value, "root-key", "", "the key to make, as a PKCS#11 URI: pkcs11:token=NAME;object=LABEL")
	f.StringVar(&module, "pkcs11-module", "", "the PKCS#11 module (shared library) of the token")
	f.StringVar(&file, "root-key-file", "", "write a new root key to this file instead")
	return cmd
}

// rootKeyOptions are the flags that give a command the store's root key,
// as to the server: --root-key-file or --root-key (else KMS_ROOT_KEY), not
// both, and --pkcs11-module.
type rootKeyOptions struct {
	file, value, module string
	// leaving accepts a key in a token that lets it out (rootkey.Spec's
	// Leaving), which only a server and the new key of a rotation refuse:
	// for the commands on the way off it (kms backup, restore, and
	// root-key rotate's old key).
	leaving bool
}

// flags adds the options to f, their names prefixed with prefix ("new-").
func (o *rootKeyOptions) flags(f *pflag.FlagSet, prefix string) {
	what := "the root key"
	if prefix != "" {
		what = "the " + strings.TrimSuffix(prefix, "-") + " root key"
	}
	f.StringVar(&o.file, prefix+"root-key-file", "", "file holding "+what+" (32 bytes as base64 or hex)")
	f.StringVar(&o.value, prefix+"root-key", "", what+" in an HSM as a PKCS#11 URI (pkcs11:token=NAME;object=LABEL), or the key itself (32 bytes as base64 or hex)")
	if prefix == "" {
		f.StringVar(&o.module, "pkcs11-module", "", "the PKCS#11 module (shared library) of a pkcs11: root key's token")
	}
}

// spec is where the root key comes from: the flags, else KMS_ROOT_KEY
// (when env is true) for --root-key, else the root.key of the data
// directory dir, read only from a directory and a file the server would
// trust (rootkey.ReadDataDirKey). rootkey.Load refuses a spec with a file
// and a value.
func (o *rootKeyOptions) spec(dir string, env bool) rootkey.Spec {
	s := rootkey.Spec{File: o.file, Value: o.value, ValueName: "--root-key", Module: o.module, Getenv: os.Getenv, Leaving: o.leaving}
	if s.Value == "" && env {
		s.Value, s.ValueName = os.Getenv("KMS_ROOT_KEY"), "KMS_ROOT_KEY"
	}
	if !s.Given() && dir != "" {
		if path := filepath.Join(dir, "root.key"); fileExists(path) {
			s.File, s.InDataDir = path, true
		}
	}
	return s
}

// load reads the root key of spec(dir, true).
func (o *rootKeyOptions) load(dir string) (*rootkey.Source, error) {
	s := o.spec(dir, true)
	if !s.Given() {
		return nil, errors.New("no root key: pass --root-key-file FILE, set KMS_ROOT_KEY, or pass --root-key pkcs11:token=NAME;object=LABEL")
	}
	return rootkey.Load(s)
}

// absDataDir makes the --data-dir path *dir absolute once, as the server
// and kms migrate do, so that every file of the command is opened, and
// checked (package datadir), under the one name. Left relative, a ".."
// from a working directory reached through a symbolic link would name
// one directory to filepath.Abs, and so to the key store and the checks,
// and another to the system, which opens the audit trail files and the
// root key.
func absDataDir(dir *string) error {
	if *dir == "" {
		return nil
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	*dir = abs
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
