package identity

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"strings"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/store"
)

// Signing in to the console: with a user name and the password of its
// login profile, or with a long-term access key id and its secret (how an
// account's root signs in). Every failure is the one opaque
// ErrSignInFailed: a sign-in never tells which check failed, nor whether
// the user exists.

// The sign-in's own answers. They are plain sentinels, not *fault.Error
// values, which match by class: no other refusal may pass for one of them.
var (
	// ErrSignInFailed is the one answer to a failed sign-in.
	ErrSignInFailed = errors.New("failed authentication")
	// ErrPasswordResetRequired answers a sign-in with the right password
	// of a login profile whose PasswordResetRequired is set: the user must
	// choose a new one (ChangePasswordAtSignIn) before it may sign in.
	ErrPasswordResetRequired = errors.New("password reset required")
)

// SignInWithPassword returns the IAM user account/userName if password is
// its login profile's.
func (d *Directory) SignInWithPassword(ctx context.Context, account, userName, password string) (*Principal, error) {
	rec, err := d.passwordChecked(ctx, account, userName, password)
	if err != nil {
		return nil, err
	}
	if rec.ResetRequired {
		return nil, ErrPasswordResetRequired
	}
	return d.signedInWith(ctx, account, rec.UserName, rec)
}

// passwordChecked returns the login profile of account/userName if
// password is its password, else ErrSignInFailed, having spent as long
// on an unknown user as on a known one.
func (d *Directory) passwordChecked(ctx context.Context, account, userName, password string) (*loginProfileRecord, error) {
	var rec loginProfileRecord
	found := false
	if checkName("userName", userName, 64) == nil && len(account) == 12 {
		err := d.view(ctx, func(tx store.Tx) error { return d.getLoginProfile(tx, loginProfileKey(account, userName), &rec) })
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		found = err == nil
	}
	if !found {
		decoyHash.matches(password)
		return nil, ErrSignInFailed
	}
	if !rec.Hash.matches(password) {
		return nil, ErrSignInFailed
	}
	return &rec, nil
}

// signedInWith is the user that signed in with the password of login
// profile rec, marked with the password's salt: Refresh ends the session
// once the password is another (a new salt) or must be reset.
func (d *Directory) signedInWith(ctx context.Context, account, userName string, rec *loginProfileRecord) (*Principal, error) {
	p, err := d.loadUserPrincipal(ctx, account, userName)
	if err != nil {
		return nil, err
	}
	p.passwordSalt = string(rec.Hash.Salt)
	return p, nil
}

// ChangePasswordAtSignIn replaces the password of a login profile whose
// reset is required, given its current password, clears the requirement
// and signs the user in. The new password must meet the password policy
// and differ from the old one. No identity policy is needed: the
// administrator who required the reset allowed it. The change is refused
// (ErrSignInFailed) if the password was replaced after it was checked:
// the old password no longer holds by then. mayChange, if not
// nil, is asked once the old password is verified and the new one
// accepted, before anything changes: its error refuses the change, and is
// returned. The user is read in the transaction that changes the
// password: an error means the password was not changed, so that the
// caller records every change it reports. changing, if not nil, is given
// the user in that transaction, before it commits (the caller names it in
// the record the store keeps with the change, internal/outbox); it may be
// called more than once, if the transaction runs again. The old
// password's hash is marked erased (store.NoteErased), as
// UpdateLoginProfile's is.
func (d *Directory) ChangePasswordAtSignIn(ctx context.Context, account, userName, oldPassword, newPassword string, mayChange func() error, changing func(*Principal)) (*Principal, error) {
	checked, err := d.passwordChecked(ctx, account, userName, oldPassword)
	if err != nil {
		return nil, err
	}
	if !checked.ResetRequired {
		return nil, ErrSignInFailed // no reset is required: sign in as usual
	}
	if err := checkPassword(userName, newPassword); err != nil {
		return nil, err
	}
	if newPassword == oldPassword {
		return nil, errf(fault.PasswordPolicyViolation, "Password should not be the same as the previous password")
	}
	if mayChange != nil {
		if err := mayChange(); err != nil {
			return nil, err
		}
	}
	hash := hashPassword(newPassword)
	var p *Principal
	err = d.update(ctx, func(tx store.Tx) error {
		var rec loginProfileRecord
		if err := d.getLoginProfile(tx, loginProfileKey(account, userName), &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return ErrSignInFailed
			}
			return err
		}
		// Changed meanwhile: no reset is required any more, or the
		// password checked is no longer the password (an administrator
		// replaced a leaked one, its reset still required).
		if !rec.ResetRequired || !bytes.Equal(rec.Hash.Salt, checked.Hash.Salt) {
			return ErrSignInFailed
		}
		var err error
		if p, err = userPrincipal(tx, account, rec.UserName); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return ErrSignInFailed
			}
			return err
		}
		if changing != nil {
			changing(p)
		}
		rec.Hash, rec.ResetRequired = hash, false
		// The old hash stays in the store's files until a compaction.
		if err := store.NoteErased(tx); err != nil {
			return err
		}
		return d.putLoginProfile(tx, loginProfileKey(account, userName), &rec)
	})
	if err != nil {
		return nil, err
	}
	p.passwordSalt = string(hash.Salt)
	return p, nil
}

// SignInWithAccessKey returns the principal of a long-term access key
// (a root's or a user's) if secret is its secret. Temporary credentials
// of role sessions cannot sign in.
func (d *Directory) SignInWithAccessKey(ctx context.Context, accessKeyID, secret string) (*Principal, error) {
	if accessKeyID == "" || strings.HasPrefix(accessKeyID, "ASIA") || len(accessKeyID) > 128 {
		return nil, ErrSignInFailed
	}
	c, err := d.credential(ctx, accessKeyID)
	if err != nil {
		if e, ok := fault.As(err); ok && e.Code == fault.InvalidClientTokenID {
			return nil, ErrSignInFailed
		}
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(c.secret), []byte(secret)) != 1 {
		return nil, ErrSignInFailed
	}
	return c.principal, nil
}

// Refresh reads again the principal p, which signed in earlier, so that a
// console session sees changes to its policies and ends when its access
// key, user or login profile is gone, or, for a password sign-in, when
// the password was changed or must be reset (ErrSignInFailed).
func (d *Directory) Refresh(ctx context.Context, p *Principal) (*Principal, error) {
	if p.AccessKeyID != "" {
		c, err := d.credential(ctx, p.AccessKeyID)
		if err != nil {
			if e, ok := fault.As(err); ok && e.Code == fault.InvalidClientTokenID {
				return nil, ErrSignInFailed
			}
			return nil, err
		}
		if c.principal.ARN != p.ARN {
			return nil, ErrSignInFailed
		}
		return c.principal, nil
	}
	if p.Type != TypeIAMUser {
		return nil, ErrSignInFailed
	}
	var rec loginProfileRecord
	err := d.view(ctx, func(tx store.Tx) error { return d.getLoginProfile(tx, loginProfileKey(p.Account, p.Username), &rec) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrSignInFailed
	}
	if err != nil {
		return nil, err
	}
	if rec.ResetRequired || string(rec.Hash.Salt) != p.passwordSalt {
		return nil, ErrSignInFailed // the password was changed, or must be
	}
	np, err := d.signedInWith(ctx, p.Account, p.Username, &rec)
	if err != nil {
		return nil, err
	}
	if np.UserID != p.UserID {
		return nil, ErrSignInFailed // the user was deleted and made again
	}
	return np, nil
}

// UserExists reports whether account has an IAM user named userName (as
// IAM compares names, regardless of case); false for a name no user can
// have. It authorizes nothing and is for the server's own records (a
// failed sign-in names the user it tried only if there is one), never for
// an answer to a caller, who must not learn which users exist.
func (d *Directory) UserExists(ctx context.Context, account, userName string) (bool, error) {
	if checkName("userName", userName, 64) != nil || len(account) != 12 {
		return false, nil
	}
	err := d.view(ctx, func(tx store.Tx) error {
		_, err := tx.Get(userKey(account, userName))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (d *Directory) loadUserPrincipal(ctx context.Context, account, name string) (*Principal, error) {
	var p *Principal
	err := d.view(ctx, func(tx store.Tx) error {
		var err error
		p, err = userPrincipal(tx, account, name)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrSignInFailed
	}
	return p, err
}
