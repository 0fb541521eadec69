// Package migrate copies a key store from one storage to another — the
// embedded store of a data directory (DIR/kms.db, package boltstore) or a
// PostgreSQL database (package pgstore) — and verifies the copy. It is
// `kms migrate`; docs/storage.md ("Moving a key store") describes it for
// users.
//
// Records are copied byte for byte under the same names. A sealed record is
// bound to its name, not to the store, so the copy opens with the same root
// key. Run refuses before writing anything unless the root key opens the
// source's meta/rootkey-check record and the destination holds no record.
// It copies in key order, one destination transaction per batch, then
// checks that both sides hold the same number of records with the same
// SHA-256 over them (Digest), and that sample keys work alike on both
// sides through the KMS service (CheckKeys). The records that speak of
// the source's audit trail (its high-water mark, the outbox entries of
// internal/outbox) are then removed from the destination: the trail does
// not move.
//
// The source must not change meanwhile. A data directory's store is locked
// while Run has it open, so no server can run on it; the nodes of a
// PostgreSQL store must be stopped by hand, and a write during the copy
// makes the verification fail.
package migrate

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/datadir"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/outbox"
	"github.com/openkms/kms/internal/rootkey"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/pgstore"
)

var (
	// ErrWrongRootKey is returned when the root key does not open the
	// source's root key check record.
	ErrWrongRootKey = errors.New("the root key is not the one the source was created with")
	// ErrNotEmpty is returned when the destination already holds records.
	ErrNotEmpty = errors.New("the destination is not empty")
	// ErrMismatch is returned when the copy does not verify.
	ErrMismatch = errors.New("the copy differs from the source")
)

const (
	defaultBatchSize = 1000
	defaultSamples   = 20
	// progressEvery is how many records pass between progress lines.
	progressEvery = 100_000
)

// Options configure Run.
type Options struct {
	// From and To are each a data directory or a PostgreSQL URL
	// (ParseLocation).
	From, To string
	// RootKeyFile and RootKeyText (from KMS_ROOT_KEY) give the root key,
	// as to the server; Run refuses both. Without either, Run uses the
	// root.key of the source's data directory, else the destination's
	// (dev mode). RootKeyFrom names where RootKeyText came from, in
	// messages (default KMS_ROOT_KEY).
	RootKeyFile string
	RootKeyText string
	RootKeyFrom string
	// PKCS11Module reaches the token of a RootKeyText that is a PKCS#11
	// URI; Getenv reads its PIN (KMS_PKCS11_PIN) when the URI does not
	// say where it is.
	PKCS11Module string
	Getenv       func(string) string
	// BatchSize is the number of records per destination transaction
	// (default 1000).
	BatchSize int
	// Samples is how many keys of each kind CheckKeys uses (default 20).
	Samples int
	// Out receives progress and the summary (default: discarded).
	Out io.Writer
	// Logger receives the services' storage errors (default slog.Default()).
	Logger *slog.Logger
}

// Report is what a successful Run did.
type Report struct {
	Records int      // records copied, and found on both sides
	Digest  [32]byte // SHA-256 over the records (Digest)
	Checked Checked
	// RootKeyCopied and CredentialsCopied are the files Run wrote into the
	// destination's data directory, or "".
	RootKeyCopied, CredentialsCopied string
	// Outbox counts the source's audit outbox entries (internal/outbox),
	// removed from the destination once verified: each names a place in
	// the source's trail, which does not move.
	Outbox int
}

// Run copies the key store at o.From to o.To, verifies the copy, and for a
// data directory destination copies the dev files (root.key, credentials)
// that the destination lacks. It writes progress and a summary to o.Out.
//
// It refuses with ErrWrongRootKey or ErrNotEmpty, having written nothing.
// An error after the copy has begun leaves part of the records (or with
// ErrMismatch all of them) in the destination: empty it before trying
// again.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.BatchSize <= 0 {
		o.BatchSize = defaultBatchSize
	}
	if o.Samples <= 0 {
		o.Samples = defaultSamples
	}
	from, to, root, err := resolve(o)
	if err != nil {
		return nil, err
	}
	if root.token != nil {
		defer root.token.Close()
	}
	src, dst, release, err := openStores(ctx, from, to, root)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	defer dst.Close()
	defer release()

	// Until the copy is whole and verified, the destination says so, and
	// a server refuses to start on it.
	if err := dst.Update(ctx, func(tx store.Tx) error {
		return tx.Put(store.UnfinishedCopyRecord, []byte("kms migrate from "+from.String()+" has not finished"))
	}); err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	r := &Report{}
	fmt.Fprintf(o.Out, "Copying the key store from %s to %s\n", from, to)
	nextProgress := progressEvery
	r.Records, err = Copy(ctx, src, dst, o.BatchSize, func(n int) {
		if n >= nextProgress {
			fmt.Fprintf(o.Out, "  %d records\n", n)
			nextProgress = (n/progressEvery + 1) * progressEvery
		}
	})
	if err != nil {
		return nil, fmt.Errorf("copy, after %d records: %w (%s now holds part of the key store: empty it before trying again)", r.Records, err, to)
	}
	fmt.Fprintf(o.Out, "Copied %d records.\n", r.Records)

	if err := verify(ctx, src, dst, o.BatchSize, r); err != nil {
		return nil, fmt.Errorf("%w (empty %s before trying again)", err, to)
	}
	fmt.Fprintf(o.Out, "Verified: %d records on both sides, SHA-256 %s.\n", r.Records, hex.EncodeToString(r.Digest[:]))
	r.Checked, err = CheckKeys(ctx, src, dst, root.key, o.Samples, o.Logger)
	if err != nil {
		return nil, fmt.Errorf("%w (empty %s before trying again)", err, to)
	}
	c := r.Checked
	fmt.Fprintf(o.Out, "Checked keys on both sides: %d symmetric (encrypt on one, decrypt on the other), %d HMAC (same MAC), %d asymmetric (same public key).\n",
		c.Encrypt, c.MAC, c.PublicKey)
	if c.Skipped > 0 {
		fmt.Fprintf(o.Out, "%d keys were not checked: the source refused to use them as their account's root (key policy, expired material).\n", c.Skipped)
	}
	if c.WithoutRegion > 0 {
		fmt.Fprintf(o.Out, "%d keys were not checked: the key store was written before keys had regions, and a server moves them into its --region at its first start (docs/storage.md, \"Regions\"); try them after it.\n", c.WithoutRegion)
	}

	// The audit trail does not move, and neither does its high-water mark:
	// a server on the destination starts a trail of its own, which the
	// source's mark would have it refuse as cut off. Nor do the outbox
	// entries, which say where in the source's trail each call's record
	// is: a server on the destination would look for them in its own,
	// find none, and write every one again, marked recovered.
	if err := dst.Update(ctx, func(tx store.Tx) error {
		if err := tx.Delete([]byte(audit.MarkRecord)); err != nil {
			return err
		}
		n, err := outbox.DropAll(tx)
		if err != nil {
			return err
		}
		r.Outbox = n
		return tx.Delete(store.UnfinishedCopyRecord)
	}); err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	if err := copyDevFiles(from, to, root, r); err != nil {
		return nil, err
	}
	printAfterword(o.Out, from, to, root, r)
	if fromBefore(ctx, src, root.key) {
		fmt.Fprintf(o.Out, "Records: written by an earlier version, not authenticated under the root key yet: %s\n", AuthenticateAdvice(to))
	}
	return r, nil
}

// resolve parses the locations and finds the root key, refusing a
// destination data directory whose root.key is another key.
func resolve(o Options) (from, to Location, root *rootKey, err error) {
	if from, err = ParseLocation(o.From); err != nil {
		return from, to, nil, fmt.Errorf("--from: %w", err)
	}
	if to, err = ParseLocation(o.To); err != nil {
		return from, to, nil, fmt.Errorf("--to: %w", err)
	}
	if from.same(to) {
		return from, to, nil, errors.New("--from and --to name the same store")
	}
	// Before a root key is read from either: a directory someone else
	// made may hold a root key and a store they know.
	for _, l := range []Location{from, to} {
		if l.Dir == "" {
			continue
		}
		if err := datadir.Check(l.Dir); err != nil {
			return from, to, nil, err
		}
	}
	if root, err = loadRootKey(o, from, to); err != nil {
		return from, to, nil, err
	}
	if path := devKeyFile(to.Dir); to.Dir != "" && fileExists(path) {
		if other, err := rootkey.ReadDataDirKey(path); err != nil || root.key == nil || !sameKey(other, root.key) {
			return from, to, nil, fmt.Errorf("%s holds another root key than the one that opens the source: remove it, or choose another destination", path)
		}
	}
	return from, to, root, nil
}

// openStores opens the source, checks the root key on it and that no
// server runs on it, and only then opens (creating if need be) the
// destination and makes sure it is empty. release lets servers start on
// a PostgreSQL source again; on error everything is closed and released.
func openStores(ctx context.Context, from, to Location, root *rootKey) (src, dst store.Store, release func(), err error) {
	if src, err = from.openExisting(ctx); err != nil {
		return nil, nil, nil, fmt.Errorf("source: %w", err)
	}
	release = func() {}
	defer func() {
		if err != nil {
			release()
			src.Close()
			if dst != nil {
				dst.Close()
			}
			src, dst, release = nil, nil, nil
		}
	}()
	if pg, ok := src.(*pgstore.Store); ok {
		// A PostgreSQL source is not locked as a data directory is: a
		// node writing to it during the copy would have its write left
		// behind. Refuse while one runs, and keep nodes from starting.
		if release, err = pg.HoldStopped(ctx); err != nil {
			release = func() {}
			return src, nil, release, fmt.Errorf("source: %w", err)
		}
	}
	if root.token != nil {
		// The store's root key is wrapped by the token's key: unwrap it.
		if root.key, err = root.token.Root(ctx, src, false); err != nil {
			return src, nil, release, err
		}
	}
	if err = src.View(ctx, store.CheckCopyFinished); err != nil {
		return src, nil, release, fmt.Errorf("source: %w", err)
	}
	if err = checkRootKey(ctx, src, root.key, from); err != nil {
		return src, nil, release, err
	}
	// The trail does not move: a destination that holds one already
	// would have servers go on with another's trail.
	if name, terr := ExistingTrail(ctx, to); terr != nil {
		return src, nil, release, fmt.Errorf("destination: %w", terr)
	} else if name != "" {
		err = fmt.Errorf("%w: %s already holds an audit trail (%s); migrate only into an empty database or a new data directory", ErrNotEmpty, to, name)
		return src, nil, release, err
	}
	if dst, err = to.create(ctx); err != nil {
		dst = nil
		return src, nil, release, fmt.Errorf("destination: %w", err)
	}
	empty, err := isEmpty(ctx, dst)
	if err != nil {
		err = fmt.Errorf("destination: %w", err)
	} else if !empty {
		err = fmt.Errorf("%w: %s already holds records; migrate only into an empty database or a new data directory", ErrNotEmpty, to)
		// Left by a migration or restore killed midway: say so, as
		// what to do is to empty it and migrate again.
		if cerr := dst.View(ctx, store.CheckCopyFinished); errors.Is(cerr, store.ErrUnfinishedCopy) {
			err = fmt.Errorf("%w: %s: %w", ErrNotEmpty, to, cerr)
		}
	}
	return src, dst, release, err
}

// verify compares the record counts and digests of src and dst, read
// again after the copy, so that a write to the source during the copy is
// found.
func verify(ctx context.Context, src, dst store.Store, batch int, r *Report) error {
	n, sum, err := Digest(ctx, src, batch)
	if err != nil {
		return fmt.Errorf("verify: read the source: %w", err)
	}
	m, got, err := Digest(ctx, dst, batch)
	if err != nil {
		return fmt.Errorf("verify: read the destination: %w", err)
	}
	if n != m || got != sum {
		return fmt.Errorf("%w: the source holds %d records (SHA-256 %x), the destination %d (SHA-256 %x); did a server write to the source during the copy?",
			ErrMismatch, n, sum, m, got)
	}
	r.Digest = sum
	return nil
}

// copyDevFiles gives a data directory destination the source's root.key
// (when it is the root key in use) and dev credentials file, unless it has
// its own.
func copyDevFiles(from, to Location, root *rootKey, r *Report) error {
	if from.Dir == "" || to.Dir == "" {
		return nil
	}
	srcKey, dstKey := devKeyFile(from.Dir), devKeyFile(to.Dir)
	if k, err := rootkey.ReadDataDirKey(srcKey); err == nil && sameKey(k, root.key) {
		copied, err := copyNewFile(srcKey, dstKey)
		if err != nil {
			return fmt.Errorf("copy the root key: %w", err)
		}
		if copied {
			r.RootKeyCopied = dstKey
		}
	}
	dstCreds := filepath.Join(to.Dir, "credentials")
	copied, err := copyNewFile(filepath.Join(from.Dir, "credentials"), dstCreds)
	if err != nil {
		return fmt.Errorf("copy the credentials file: %w", err)
	}
	if copied {
		r.CredentialsCopied = dstCreds
	}
	return nil
}

// printAfterword tells where the root key, the credentials and the audit
// trail are now.
func printAfterword(w io.Writer, from, to Location, root *rootKey, r *Report) {
	switch {
	case r.RootKeyCopied != "":
		fmt.Fprintf(w, "Root key: copied to %s (dev mode).\n", r.RootKeyCopied)
	case to.Dir != "" && fileExists(devKeyFile(to.Dir)):
		fmt.Fprintf(w, "Root key: %s holds it.\n", devKeyFile(to.Dir))
	case root.dev && to.DSN != "":
		fmt.Fprintf(w, "Root key: servers on %s need the same one: --root-key-file %s (or, in dev mode, --dev --data-dir %s --storage ...).\n",
			to, root.file, filepath.Dir(root.file))
	case root.token != nil:
		fmt.Fprintf(w, "Root key: the copy's root key is wrapped by the same key in the token: servers on %s need --root-key %s.\n",
			to, strings.TrimPrefix(root.token.String(), "root key "))
	case root.file != "":
		fmt.Fprintf(w, "Root key: servers on %s need the same one: --root-key-file %s.\n", to, root.file)
	default:
		fmt.Fprintf(w, "Root key: servers on %s need the same one (KMS_ROOT_KEY).\n", to)
	}
	creds := "existing access keys keep working"
	if from.Dir != "" && fileExists(filepath.Join(from.Dir, "credentials")) {
		creds = filepath.Join(from.Dir, "credentials") + " keeps working"
	}
	if r.CredentialsCopied != "" {
		creds = "copied to " + r.CredentialsCopied
	}
	fmt.Fprintf(w, "Credentials: access keys are records and moved with them; %s.\n", creds)
	if from.Dir != "" {
		if trail, err := ExistingTrail(context.Background(), Location{Dir: from.Dir}); err == nil && trail == "" {
			// A copy made by kms migrate or kms restore on which no
			// server has run: there is no trail to send anyone to.
			fmt.Fprintf(w, "Audit trail: %s holds none (no server has run on it); a server on %s starts its own.\n", from.Dir, to)
		} else {
			fmt.Fprintf(w, "Audit trail: not copied; it stays in %s (kms audit verify --data-dir %s).\n", from.Dir, from.Dir)
		}
	} else {
		fmt.Fprintf(w, "Audit trail: not copied; it stays where the servers wrote it (their data directories, or the audit tables of %s).\n", from)
	}
	if r.Outbox > 0 {
		fmt.Fprintf(w, "Audit outbox: %d changes made on %s may lack their records in its trail (a server was killed or its trail failed); not copied: a server started on %s writes those records there (docs/audit.md, \"Recovered records\").\n",
			r.Outbox, from, from)
	}
}

// fromBefore reports whether st's records are from before they were
// authenticated (internal/authstore).
func fromBefore(ctx context.Context, st store.Store, root *keys.RootKey) bool {
	var state authstore.State
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		state, err = authstore.ReadState(tx, root)
		return err
	})
	return err == nil && state == authstore.Legacy
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// AuthenticateAdvice says what the first server on l, a copy of a store
// whose records are not authenticated yet, must be given: a --dev server
// with its root.key in the data directory authenticates them by itself,
// but no server on PostgreSQL does without --authenticate-store.
func AuthenticateAdvice(l Location) string {
	if l.DSN != "" {
		return fmt.Sprintf("start the first server on %s once with --authenticate-store, --dev or not (docs/storage.md).", l)
	}
	return fmt.Sprintf("start the first server on %s once with --authenticate-store, which a --dev server with its root.key in its data directory does by itself (docs/storage.md).", l)
}
