package identity

import (
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

// ErrSignInFailed is the one answer to a failed sign-in.
var ErrSignInFailed = &fault.Error{Code: fault.AccessDenied, Message: "Failed authentication"}

// SignInWithPassword returns the IAM user account/userName if password is
// its login profile's.
func (d *Directory) SignInWithPassword(ctx context.Context, account, userName, password string) (*Principal, error) {
	var rec loginProfileRecord
	found := false
	if checkName("userName", userName, 64) == nil && len(account) == 12 {
		err := d.view(ctx, func(tx store.Tx) error { return getJSON(tx, loginProfileKey(account, userName), &rec) })
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
	return d.loadUserPrincipal(ctx, account, rec.UserName)
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
// key, user or login profile is gone (ErrSignInFailed).
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
	err := d.view(ctx, func(tx store.Tx) error {
		_, err := tx.Get(loginProfileKey(p.Account, p.Username))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrSignInFailed
	}
	if err != nil {
		return nil, err
	}
	np, err := d.loadUserPrincipal(ctx, p.Account, p.Username)
	if err != nil {
		return nil, err
	}
	if np.UserID != p.UserID {
		return nil, ErrSignInFailed // the user was deleted and made again
	}
	return np, nil
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
