package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/argon2"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/store"
)

// Login profiles: the password an IAM user signs in to the console with
// (IAM's CreateLoginProfile, GetLoginProfile, UpdateLoginProfile and
// DeleteLoginProfile). A password is never stored: the record keeps an
// Argon2id hash (RFC 9106), sealed under the root key, with a random salt
// and the parameters it was made with, so that they can be raised later
// without breaking old hashes.

// LoginProfile is a user's login profile as the IAM API shows it.
type LoginProfile struct {
	UserName              string
	Created               time.Time
	PasswordResetRequired bool
}

type loginProfileRecord struct {
	V             int       `json:"v"`
	UserName      string    `json:"userName"`
	Created       time.Time `json:"created"`
	ResetRequired bool      `json:"passwordResetRequired,omitempty"`
	Hash          hashedPassword
	// SealedHash is Hash.Sum sealed under the root key, bound to the
	// record's name (getLoginProfile, putLoginProfile), so that a copy
	// of the store or a backup, without the root key, gives nothing to
	// guess passwords against offline. A record written before holds
	// Hash.Sum itself, and is read as it is until its password changes.
	SealedHash []byte `json:"sealedHash,omitempty"`
}

// getLoginProfile reads the login profile record key into rec, its
// hash opened.
func (d *Directory) getLoginProfile(tx store.Tx, key []byte, rec *loginProfileRecord) error {
	if err := getJSON(tx, key, rec); err != nil {
		return err
	}
	if rec.SealedHash == nil {
		return nil
	}
	sum, err := d.root.Open(key, rec.SealedHash)
	if err != nil {
		return fmt.Errorf("login profile %s: %w", key, err)
	}
	rec.Hash.Sum, rec.SealedHash = sum, nil
	return nil
}

// putLoginProfile writes rec as the login profile record key, its hash
// sealed.
func (d *Directory) putLoginProfile(tx store.Tx, key []byte, rec *loginProfileRecord) error {
	out := *rec
	if len(out.Hash.Sum) > 0 {
		out.SealedHash, out.Hash.Sum = d.root.Seal(key, out.Hash.Sum), nil
	}
	return putJSON(tx, key, &out)
}

// SealStoredPasswordHashes seals the hashes of login profiles written
// before hashes were sealed, which hold theirs in the clear, and marks
// each change erased (store.NoteErased), so that the clear hash leaves the
// store's files at the next compaction too. It is run at every start, and
// finds nothing to do once done. It returns how many it sealed. A record
// that does not decode is logged and left as it is: the calls that read
// it fail.
func (d *Directory) SealStoredPasswordHashes(ctx context.Context) (int, error) {
	var names [][]byte
	err := d.view(ctx, func(tx store.Tx) error {
		names = nil
		return store.ScanReadable(tx, []byte("iam/loginprofile/"), nil, func(k, v []byte) (bool, error) {
			var rec loginProfileRecord
			if json.Unmarshal(v, &rec) == nil && rec.SealedHash == nil && len(rec.Hash.Sum) > 0 {
				names = append(names, bytes.Clone(k))
			}
			return true, nil
		}, func(err error) {
			d.log.Error("stored console password left as it was", "err", err)
		})
	})
	if err != nil {
		return 0, err
	}
	sealed := 0
	for _, k := range names {
		did := false
		err := d.update(ctx, func(tx store.Tx) error {
			did = false
			var rec loginProfileRecord
			if err := getJSON(tx, k, &rec); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return nil
				}
				return err
			}
			if rec.SealedHash != nil || len(rec.Hash.Sum) == 0 {
				return nil // sealed meanwhile, or by another node
			}
			if err := d.putLoginProfile(tx, k, &rec); err != nil {
				return err
			}
			did = true
			return store.NoteErased(tx)
		})
		if err != nil {
			return sealed, err
		}
		if did {
			sealed++
		}
	}
	return sealed, nil
}

// hashedPassword is an Argon2id hash and its parameters.
type hashedPassword struct {
	Salt    []byte `json:"salt"`
	Sum     []byte `json:"hash"`
	Time    uint32 `json:"argon2Time"`
	Memory  uint32 `json:"argon2MemoryKiB"`
	Threads uint8  `json:"argon2Threads"`
}

// The Argon2id parameters of new hashes: the second recommended option of
// RFC 9106 section 4 scaled down to a server that checks many sign-ins,
// as OWASP's password storage guidance does (19 MiB, 2 passes).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

func hashPassword(password string) hashedPassword {
	salt := make([]byte, 16)
	rand.Read(salt)
	return hashedPassword{Salt: salt, Time: argonTime, Memory: argonMemory, Threads: argonThreads,
		Sum: argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)}
}

func (h *hashedPassword) matches(password string) bool {
	if h.Time == 0 || h.Memory == 0 || h.Threads == 0 || len(h.Sum) == 0 {
		return false
	}
	sum := argon2.IDKey([]byte(password), h.Salt, h.Time, h.Memory, h.Threads, uint32(len(h.Sum)))
	return subtle.ConstantTimeCompare(sum, h.Sum) == 1
}

// decoyHash is checked when there is no hash to check, so that a sign-in
// for a user without a password takes as long as one with a wrong password.
var decoyHash = hashedPassword{Salt: make([]byte, 16), Sum: make([]byte, argonKeyLen), Time: argonTime, Memory: argonMemory, Threads: argonThreads}

// checkPassword applies IAM's default password policy (an account without
// a password policy of its own): 8 to 128 characters, at least three of
// uppercase letters, lowercase letters, digits and symbols, and not the
// user's name.
func checkPassword(userName, password string) error {
	switch {
	case password == "":
		return errf(fault.Validation, "1 validation error detected: Value null at 'password' failed to satisfy constraint: Member must not be null")
	case len(password) > 128:
		return errf(fault.Validation, "1 validation error detected: Value at 'password' failed to satisfy constraint: Member must have length less than or equal to 128")
	}
	for _, r := range password {
		if r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xff) {
			return errf(fault.Validation, "1 validation error detected: Value at 'password' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+")
		}
	}
	if len(password) < 8 {
		return errf(fault.PasswordPolicyViolation, "Password should have a minimum length of 8")
	}
	var upper, lowerCase, digit, symbol int
	for _, r := range password {
		switch {
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsLower(r):
			lowerCase = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			symbol = 1
		}
	}
	if upper+lowerCase+digit+symbol < 3 {
		return errf(fault.PasswordPolicyViolation, "Password should have at least three of the following: uppercase letters, lowercase letters, numbers and symbols")
	}
	if strings.EqualFold(password, userName) {
		return errf(fault.PasswordPolicyViolation, "Password should not be the user name")
	}
	return nil
}

func noSuchLoginProfile(name string) error {
	return errf(fault.NoSuchEntity, "Login Profile for User %s cannot be found.", name)
}

// loginProfileOwner resolves the user a login-profile call is about (the
// caller itself when name is empty and the caller is an IAM user) and
// authorizes action on it.
func (d *Directory) loginProfileOwner(ctx context.Context, tx store.Tx, caller *Principal, name, action string) (*userRecord, error) {
	if name == "" {
		if caller.Type != TypeIAMUser {
			return nil, errf(fault.Validation, "Must specify userName when calling with non-User credentials")
		}
		name = caller.Username
	}
	if err := checkName("userName", name, 64); err != nil {
		return nil, err
	}
	var u userRecord
	err := getJSON(tx, userKey(caller.Account, name), &u)
	missing := errors.Is(err, store.ErrNotFound)
	if err != nil && !missing {
		return nil, err
	}
	arn := ""
	if !missing {
		arn = userARN(caller.Account, u.Path, u.Name)
	}
	if err := d.authorizeNamed(ctx, caller, action, "user", name, arn); err != nil {
		return nil, err
	}
	if missing {
		return nil, noSuchUser(name)
	}
	return &u, nil
}

// CreateLoginProfile gives a user a password (or, with an empty name, the
// calling user, as IAM's UserName "defaults to the principal making the
// request").
func (d *Directory) CreateLoginProfile(ctx context.Context, caller *Principal, userName, password string, resetRequired bool) (*LoginProfile, error) {
	owner := userName
	if owner == "" && caller.Type == TypeIAMUser {
		owner = caller.Username
	}
	if userName != "" {
		if err := checkName("userName", userName, 64); err != nil {
			return nil, err
		}
	}
	if err := checkPassword(owner, password); err != nil {
		return nil, err
	}
	rec := loginProfileRecord{V: 1, Created: d.now().UTC().Truncate(time.Second), ResetRequired: resetRequired, Hash: hashPassword(password)}
	err := d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		u, err := d.loginProfileOwner(ctx, tx, caller, userName, "iam:CreateLoginProfile")
		if err != nil {
			return err
		}
		rec.UserName = u.Name
		if _, err := tx.Get(loginProfileKey(caller.Account, u.Name)); err == nil {
			return errf(fault.EntityAlreadyExists, "Login Profile for user %s already exists.", u.Name)
		}
		return d.putLoginProfile(tx, loginProfileKey(caller.Account, u.Name), &rec)
	})
	if err != nil {
		return nil, err
	}
	return &LoginProfile{UserName: rec.UserName, Created: rec.Created, PasswordResetRequired: rec.ResetRequired}, nil
}

// GetLoginProfile returns a user's login profile (or, with an empty name,
// the calling user's).
func (d *Directory) GetLoginProfile(ctx context.Context, caller *Principal, userName string) (*LoginProfile, error) {
	var rec loginProfileRecord
	err := d.view(ctx, func(tx store.Tx) error {
		u, err := d.loginProfileOwner(ctx, tx, caller, userName, "iam:GetLoginProfile")
		if err != nil {
			return err
		}
		if err := d.getLoginProfile(tx, loginProfileKey(caller.Account, u.Name), &rec); errors.Is(err, store.ErrNotFound) {
			return noSuchLoginProfile(u.Name)
		} else if err != nil {
			return err
		}
		rec.UserName = u.Name
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &LoginProfile{UserName: rec.UserName, Created: rec.Created, PasswordResetRequired: rec.ResetRequired}, nil
}

// UpdateLoginProfile changes a user's password, its reset flag, or both;
// a nil argument is left as it is. A replaced password's hash is marked
// erased (store.NoteErased), for the server to clear from the store's
// files: an old hash is a target for offline guessing, and a user may
// have used that password elsewhere.
func (d *Directory) UpdateLoginProfile(ctx context.Context, caller *Principal, userName string, password *string, resetRequired *bool) error {
	if err := checkName("userName", userName, 64); err != nil {
		return err
	}
	var hash *hashedPassword
	if password != nil {
		if err := checkPassword(userName, *password); err != nil {
			return err
		}
		h := hashPassword(*password)
		hash = &h
	}
	return d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		u, err := d.loginProfileOwner(ctx, tx, caller, userName, "iam:UpdateLoginProfile")
		if err != nil {
			return err
		}
		var rec loginProfileRecord
		if err := d.getLoginProfile(tx, loginProfileKey(caller.Account, u.Name), &rec); errors.Is(err, store.ErrNotFound) {
			return noSuchLoginProfile(u.Name)
		} else if err != nil {
			return err
		}
		if hash != nil {
			rec.Hash = *hash
			// The old hash stays in the store's files until a compaction.
			if err := store.NoteErased(tx); err != nil {
				return err
			}
		}
		if resetRequired != nil {
			rec.ResetRequired = *resetRequired
		}
		return d.putLoginProfile(tx, loginProfileKey(caller.Account, u.Name), &rec)
	})
}

// DeleteLoginProfile takes a user's password away (with an empty name,
// the calling user's): the user can no longer sign in to the console, and
// its console sessions end. Its hash is marked erased (store.NoteErased),
// as UpdateLoginProfile's replaced one is.
func (d *Directory) DeleteLoginProfile(ctx context.Context, caller *Principal, userName string) error {
	return d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		u, err := d.loginProfileOwner(ctx, tx, caller, userName, "iam:DeleteLoginProfile")
		if err != nil {
			return err
		}
		if _, err := tx.Get(loginProfileKey(caller.Account, u.Name)); errors.Is(err, store.ErrNotFound) {
			return noSuchLoginProfile(u.Name)
		}
		if err := tx.Delete(loginProfileKey(caller.Account, u.Name)); err != nil {
			return err
		}
		// Its hash stays in the store's files until a compaction.
		return store.NoteErased(tx)
	})
}
