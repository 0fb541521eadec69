// Package rootkey finds the root key a command is given and, for a root
// key kept in a PKCS#11 token, the store's root key that the token's key
// wraps.
//
// A root key comes from a file (--root-key-file), from the key itself
// (--root-key or KMS_ROOT_KEY: 32 bytes as base64 or hex), or from an
// AES-256 key inside a token named by an RFC 7512 PKCS#11 URI
// (--root-key pkcs11:token=NAME;object=LABEL, internal/hsm); a command
// given more than one refuses to guess. A file or text key seals the store's records itself. A token's key never sees
// them: the records are sealed under a random 32-byte root key held in
// memory, and the token's key seals only that key, in the store record
// keys.WrappedRootRecord:
//
//	version (1 byte, 1) ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext and tag
//
// with the record's name and the version byte as additional data. The
// token is asked once, when a command starts; the hot path runs on the
// key in memory, as with a file key. Neither the unwrapped key nor the
// token's key is ever written anywhere.
package rootkey

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/openkms/kms/internal/datadir"
	"github.com/openkms/kms/internal/hsm"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// wrappedVersion is the first byte of keys.WrappedRootRecord.
const wrappedVersion = 1

// Spec says where a root key comes from, as a command's flags give it.
// It names one key: File or Value, not both (Check).
type Spec struct {
	// File is a file holding the key (--root-key-file).
	File string
	// FileName names where File came from in messages
	// ("KMS_ROOT_KEY_FILE"); default "--root-key-file".
	FileName string
	// InDataDir says that File is the root.key of a data directory (dev
	// mode), found there rather than given: it is read as ReadDataDirKey
	// reads it.
	InDataDir bool
	// Value is a PKCS#11 URI, or the key itself as base64 or hex.
	Value string
	// ValueName names where Value came from in messages ("KMS_ROOT_KEY",
	// "--new-root-key").
	ValueName string
	// Module is the PKCS#11 module (--pkcs11-module), for a URI.
	Module string
	// Getenv reads the token's PIN (hsm.PINEnv) when the URI does not
	// say where it is.
	Getenv func(string) string
	// Leaving accepts a key in a token that lets it out (hsm.Key.MayLeave),
	// which Load otherwise refuses: for the old key of kms root-key
	// rotate, so that a store can be moved off such a key.
	Leaving bool
}

// Given reports whether s names a root key at all.
func (s Spec) Given() bool { return s.File != "" || s.Value != "" }

// Check refuses a Spec that names two root keys, a file and a value,
// naming where each came from. Neither may silently win: a new store
// would be created under the one that does, a key file where a key in a
// token was meant, and only that key would ever open it.
func (s Spec) Check() error {
	if s.File == "" || s.Value == "" {
		return nil
	}
	file, value := s.FileName, s.ValueName
	if file == "" {
		file = "--root-key-file"
	}
	if value == "" {
		value = "--root-key"
	}
	return fmt.Errorf("two root keys are given, by %s and by %s: give only one", file, value)
}

// Source is a root key as given: a key in hand, or a key in a token.
type Source struct {
	name  string // how it was given, for messages
	key   *keys.RootKey
	token *hsm.Key
}

// FromKey is the Source of a key in hand; name says where it came from.
func FromKey(key *keys.RootKey, name string) *Source {
	return &Source{name: name, key: key}
}

// Load reads the root key of s, logging into the token for a PKCS#11 URI.
// Its error is one line that names the key and says what is wrong. A Spec
// that names two keys is refused (Check), and so is a key in a token that
// lets it out, unless s.Leaving.
func Load(s Spec) (*Source, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	switch {
	case s.File != "":
		read := keys.ReadRootKeyFile
		if s.InDataDir {
			read = ReadDataDirKey
		}
		key, err := read(s.File)
		if err != nil {
			return nil, err
		}
		return FromKey(key, "root key file "+s.File), nil
	case hsm.IsURI(s.Value):
		u, err := hsm.ParseURI(s.Value)
		if err != nil {
			return nil, fmt.Errorf("root key %s: %w", s.ValueName, err)
		}
		name := "root key " + u.Redacted()
		getenv := s.Getenv
		if getenv == nil {
			getenv = func(string) string { return "" }
		}
		pin, err := u.PIN(getenv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		token, err := hsm.Open(s.Module, u, pin)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if token.MayLeave() && !s.Leaving {
			token.Close()
			return nil, fmt.Errorf("%s: the token lets this key out (it is CKA_EXTRACTABLE or not CKA_SENSITIVE): make a root key that stays in it with kms root-key init, and move the store onto it with kms root-key rotate", name)
		}
		return &Source{name: name, token: token}, nil
	case s.Value != "":
		key, err := keys.ParseRootKey([]byte(s.Value))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.ValueName, err)
		}
		return FromKey(key, s.ValueName), nil
	}
	return nil, errors.New("no root key")
}

// ReadDataDirKey reads the root key file path, a data directory's
// root.key, only if the directory is one datadir.Check accepts and the
// file one datadir.ReadSecret reads: a key that another user could have
// put there or read is refused, whichever command finds it. A missing
// file is an error for which errors.Is(err, fs.ErrNotExist) holds.
func ReadDataDirKey(path string) (*keys.RootKey, error) {
	if err := datadir.Check(filepath.Dir(path)); err != nil {
		return nil, err
	}
	b, err := datadir.ReadSecret(path)
	if err != nil {
		return nil, fmt.Errorf("root key file: %w", err)
	}
	key, err := keys.ParseRootKey(b)
	if err != nil {
		return nil, fmt.Errorf("root key file %s: %w", path, err)
	}
	return key, nil
}

// InToken reports whether the key is kept in a PKCS#11 token.
func (s *Source) InToken() bool { return s.token != nil }

// String says where the key came from, never the key.
func (s *Source) String() string { return s.name }

// Close logs out of the token, if any. Keys returned before stay usable.
func (s *Source) Close() error {
	if s.token == nil {
		return nil
	}
	return s.token.Close()
}

// Root returns the key that seals st's records. For a key in hand that is
// the key itself; for a key in a token, the key unwrapped from st's
// keys.WrappedRootRecord. With create, a store that was never opened (no
// root key check record) gets a new random root key, and its wrapped form
// is written. A key of the wrong kind for st (in hand for a store whose
// root key is wrapped, or the reverse) is refused naming both.
func (s *Source) Root(ctx context.Context, st store.Store, create bool) (*keys.RootKey, error) {
	do := st.View
	if create && s.token != nil {
		do = st.Update
	}
	var root *keys.RootKey
	err := do(ctx, func(tx store.Tx) error {
		root = nil
		wrapped, err := tx.Get(keys.WrappedRootRecord)
		if errors.Is(err, store.ErrNotFound) {
			wrapped = nil
		} else if err != nil {
			return err
		}
		if wrapped != nil || s.token == nil {
			root, err = s.Unwrap(wrapped)
			return err
		}
		if _, err := tx.Get(keys.RootCheckRecord); err == nil {
			return fmt.Errorf("%s: this key store's root key is not kept in a PKCS#11 token (it has no %s record): give the root key it was created with", s.name, keys.WrappedRootRecord)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if !create {
			return fmt.Errorf("%s: no key store here (no %s record)", s.name, keys.RootCheckRecord)
		}
		root, wrapped, err = s.Fresh()
		if err != nil {
			return err
		}
		return tx.Put(keys.WrappedRootRecord, wrapped)
	})
	return root, err
}

// Unwrap returns the key that seals the records of a store (or backup)
// whose keys.WrappedRootRecord is wrapped (nil: it has none).
func (s *Source) Unwrap(wrapped []byte) (*keys.RootKey, error) {
	switch {
	case s.token == nil && wrapped == nil:
		return s.key, nil
	case s.token == nil:
		return nil, fmt.Errorf("%s: the key store's root key is kept in a PKCS#11 token (it holds a %s record): give --root-key pkcs11:token=...;object=...", s.name, keys.WrappedRootRecord)
	case wrapped == nil:
		return nil, fmt.Errorf("%s: the key store's root key is not kept in a PKCS#11 token (it has no %s record)", s.name, keys.WrappedRootRecord)
	}
	if len(wrapped) == 0 || wrapped[0] != wrappedVersion {
		return nil, fmt.Errorf("%s: the %s record is not in a format this version reads", s.name, keys.WrappedRootRecord)
	}
	raw, err := s.token.Open(wrappedAAD(), wrapped[1:])
	if errors.Is(err, hsm.ErrOpen) {
		return nil, fmt.Errorf("%s: the root key is not the one this key store was created with (the key in the token does not open its %s record)", s.name, keys.WrappedRootRecord)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: open the %s record: %w", s.name, keys.WrappedRootRecord, err)
	}
	return keys.NewRootKey(raw)
}

// Fresh returns a root key for a store to be sealed under from now on (by
// a rotation, or a new store), and the value of its keys.WrappedRootRecord:
// for a key in hand, the key itself and nil (no record); for a key in a
// token, a new random key and its wrapped form, once the token has
// unwrapped that again: a record it cannot open would lock every record
// sealed under the key out for good.
func (s *Source) Fresh() (*keys.RootKey, []byte, error) {
	if s.token == nil {
		return s.key, nil, nil
	}
	raw := make([]byte, keys.RootKeySize)
	rand.Read(raw)
	root, err := keys.NewRootKey(raw)
	if err != nil {
		return nil, nil, err
	}
	sealed, err := s.token.Seal(wrappedAAD(), raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.name, err)
	}
	back, err := s.token.Open(wrappedAAD(), sealed)
	if err == nil && !bytes.Equal(back, raw) {
		err = errors.New("it unwraps as another value")
	}
	clear(back)
	clear(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: the token does not unwrap the root key it has just wrapped: %w", s.name, err)
	}
	return root, append([]byte{wrappedVersion}, sealed...), nil
}

func wrappedAAD() []byte {
	return append(append([]byte(nil), keys.WrappedRootRecord...), wrappedVersion)
}
