package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/openkms/kms/internal/atomicfile"
	"github.com/openkms/kms/internal/hsm"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/rootkey"
	"github.com/openkms/kms/internal/store"
)

// rootKey is the root key Run uses and where it came from.
type rootKey struct {
	// key is nil for a key in a token until the source is open.
	key *keys.RootKey
	// token is a key in a token that wraps the source's root key.
	token *rootkey.Source
	// file is the file it was read from, "" for KMS_ROOT_KEY.
	file string
	// dev reports that file is a data directory's root.key.
	dev bool
}

// devKeyFile is where a --dev server keeps its root key.
func devKeyFile(dir string) string { return filepath.Join(dir, "root.key") }

// loadRootKey finds the root key as the server does: RootKeyFile or
// RootKeyText (a key, or a PKCS#11 URI: logged into, unwrapping nothing
// yet), refusing both, else (dev mode) the root.key of the source's data
// directory, else of the destination's.
func loadRootKey(o Options, from, to Location) (*rootKey, error) {
	name := o.RootKeyFrom
	if name == "" {
		name = "KMS_ROOT_KEY"
	}
	// A store under a key its token lets out may be moved, to be rotated
	// off it: only a server refuses such a key.
	spec := rootkey.Spec{File: o.RootKeyFile, Value: o.RootKeyText, ValueName: name, Module: o.PKCS11Module, Getenv: o.Getenv, Leaving: true}
	if err := spec.Check(); err != nil {
		return nil, err
	}
	switch {
	case o.RootKeyFile != "":
		rk, err := keys.ReadRootKeyFile(o.RootKeyFile)
		return &rootKey{key: rk, file: o.RootKeyFile}, err
	case hsm.IsURI(o.RootKeyText):
		src, err := rootkey.Load(spec)
		if err != nil {
			return nil, err
		}
		return &rootKey{token: src}, nil
	case o.RootKeyText != "":
		rk, err := keys.ParseRootKey([]byte(o.RootKeyText))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &rootKey{key: rk}, nil
	}
	for _, l := range []Location{from, to} {
		if l.Dir == "" {
			continue
		}
		path := devKeyFile(l.Dir)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		rk, err := rootkey.ReadDataDirKey(path)
		return &rootKey{key: rk, file: path, dev: true}, err
	}
	return nil, errors.New("no root key: pass --root-key-file FILE or set KMS_ROOT_KEY (a --dev data directory's root.key is used when there is one)")
}

// sameKey reports whether a and b are the same root key: what one seals,
// the other opens.
func sameKey(a, b *keys.RootKey) bool {
	aad := []byte("kms migrate: same root key?")
	_, err := b.Open(aad, a.Seal(aad, []byte("x")))
	return err == nil
}

// checkRootKey makes sure root opens st's root key check record. Unlike
// the server's check, it writes nothing: a store without the record is not
// a key store a server has run on.
func checkRootKey(ctx context.Context, st store.Store, root *keys.RootKey, where Location) error {
	var sealed []byte
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		sealed, err = tx.Get(keys.RootCheckRecord)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s holds no key store (no %s record)", where, keys.RootCheckRecord)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", where, err)
	}
	if _, err := root.Open(keys.RootCheckRecord, sealed); err != nil {
		return fmt.Errorf("%w: it does not open the %s record of %s", ErrWrongRootKey, keys.RootCheckRecord, where)
	}
	return nil
}

// copyNewFile copies the file src to dst (mode 0600) unless dst exists,
// whole or not at all. It reports whether it copied; a missing src copies
// nothing.
func copyNewFile(src, dst string) (bool, error) {
	data, err := os.ReadFile(src)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return atomicfile.CreateOnce(dst, data, 0o600)
}
