package identity

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/store"
)

// Role is an IAM role as the IAM API shows it.
type Role struct {
	Path        string
	RoleName    string
	RoleID      string
	Arn         string
	Created     time.Time
	TrustPolicy string
	Description string
	MaxSession  int32
}

func (r *roleRecord) role(account string) *Role {
	return &Role{Path: r.Path, RoleName: r.Name, RoleID: r.ID, Arn: roleARN(account, r.Path, r.Name), Created: r.Created,
		TrustPolicy: r.TrustPolicy, Description: r.Description, MaxSession: r.MaxSession}
}

// IAM's bounds on a role: its trust policy holds at most 2,048
// characters, whitespace not counted (the ACLSizePerRole quota's
// default), and its description at most 1,000 characters of Latin-1 text
// without control characters but tab and newlines.
const (
	maxTrustPolicyChars = 2048
	maxDescriptionChars = 1000
)

var descriptionPattern = regexp.MustCompile(`^[\x{9}\x{A}\x{D}\x{20}-\x{7E}\x{A1}-\x{FF}]*$`)

// checkDescription refuses a role description as IAM does. The message
// does not quote the value, which may be long: it is recorded in the
// audit trail.
func checkDescription(s string) error {
	const prefix = "1 validation error detected: Value at 'description' failed to satisfy constraint: "
	switch {
	case utf8.RuneCountInString(s) > maxDescriptionChars:
		return errf(fault.Validation, prefix+"Member must have length less than or equal to %d", maxDescriptionChars)
	case !descriptionPattern.MatchString(s):
		return errf(fault.Validation, prefix+"Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*")
	}
	return nil
}

// policySize is the size of a policy document as IAM's quotas count it:
// its characters but whitespace.
func policySize(doc string) int {
	n := 0
	for _, r := range doc {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

func noSuchRole(name string) error {
	return errf(fault.NoSuchEntity, "The role with name %s cannot be found.", name)
}

// CreateRole creates a role whose trust policy says who may assume it.
func (d *Directory) CreateRole(ctx context.Context, caller *Principal, name, path, trustPolicy, description string, maxSession int32) (*Role, error) {
	if err := checkName("roleName", name, 64); err != nil {
		return nil, err
	}
	path, err := checkPath(path)
	if err != nil {
		return nil, err
	}
	if trustPolicy == "" {
		return nil, errf(fault.Validation, "1 validation error detected: Value null at 'assumeRolePolicyDocument' failed to satisfy constraint: Member must not be null")
	}
	if err := checkDescription(description); err != nil {
		return nil, err
	}
	if policySize(trustPolicy) > maxTrustPolicyChars {
		return nil, errf(fault.LimitExceeded, "Cannot exceed quota for ACLSizePerRole: %d", maxTrustPolicyChars)
	}
	trust, err := policy.ParseTrust(trustPolicy)
	if err != nil {
		var pe *policy.Error
		if errors.As(err, &pe) && pe.Syntax {
			return nil, errf(fault.MalformedPolicyDocument, "This policy contains invalid Json") // IAM's words
		}
		if errors.As(err, &pe) && pe.Principal != "" {
			// IAM's words for a principal that is none, as for one
			// that does not exist (trustPrincipalIDs).
			return nil, errf(fault.MalformedPolicyDocument, "Invalid principal in policy: \"AWS\":\"%s\"", pe.Principal)
		}
		return nil, errf(fault.MalformedPolicyDocument, "%s", err.Error())
	}
	if maxSession == 0 {
		maxSession = 3600
	}
	if maxSession < 3600 || maxSession > 43200 {
		return nil, errf(fault.Validation, "1 validation error detected: Value '%d' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", maxSession)
	}
	// Authorized before the users and roles the trust policy names are
	// looked up: a caller who may not create the role must not learn
	// from "Invalid principal" which of them exist.
	if err := d.authorize(ctx, caller, "iam:CreateRole", roleARN(caller.Account, path, name)); err != nil {
		return nil, err
	}
	trustIDs, err := d.trustPrincipalIDs(ctx, trust)
	if err != nil {
		return nil, err
	}
	rec := roleRecord{V: 1, Name: name, ID: randomID("AROA", 17), Path: path, Created: d.now().UTC().Truncate(time.Second),
		TrustPolicy: trustPolicy, TrustIDs: trustIDs, TrustBound: true, Description: description, MaxSession: maxSession}
	err = d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		// Decided again on the caller as this transaction reads it, as
		// CreateUser is.
		if err := d.authorize(ctx, caller, "iam:CreateRole", roleARN(caller.Account, path, name)); err != nil {
			return err
		}
		if _, err := tx.Get(roleKey(caller.Account, name)); err == nil {
			return errf(fault.EntityAlreadyExists, "Role with name %s already exists.", name)
		}
		if n, err := count(tx, rolePrefix(caller.Account)); err != nil {
			return err
		} else if n >= d.roleQuota {
			return errf(fault.LimitExceeded, "Cannot exceed quota for RolesPerAccount: %d", d.roleQuota)
		}
		return putJSON(tx, roleKey(caller.Account, name), &rec)
	})
	if err != nil {
		return nil, err
	}
	return rec.role(caller.Account), nil
}

// trustPrincipalIDs checks that every IAM user and role a trust policy
// names exists, as IAM does ("Invalid principal in policy"), and returns
// their unique ids, to bind the policy to (roleRecord.TrustIDs).
func (d *Directory) trustPrincipalIDs(ctx context.Context, trust *policy.Policy) (map[string]string, error) {
	return d.bindTrust(ctx, trust, true)
}

// bindTrust returns the unique ids of the IAM users and roles trust
// names; one that does not exist is an error when strict, else bound to
// no one ("").
func (d *Directory) bindTrust(ctx context.Context, trust *policy.Policy, strict bool) (map[string]string, error) {
	var ids map[string]string
	for _, st := range trust.Statements {
		for _, ps := range []*policy.Principals{st.Principal, st.NotPrincipal} {
			if ps == nil {
				continue
			}
			for _, arn := range ps.AWS {
				if strict && strings.HasPrefix(arn, "arn:") && !strings.HasPrefix(arn, "arn:aws:") {
					// An account or session of another partition: no
					// principal of this one, as in a key policy.
					return nil, errf(fault.MalformedPolicyDocument, "Invalid principal in policy: \"AWS\":\"%s\"", arn)
				}
				if !policy.IsUserOrRole(arn) {
					continue
				}
				id, err := d.PrincipalID(ctx, arn)
				if err != nil {
					return nil, err
				}
				if id == "" && strict {
					return nil, errf(fault.MalformedPolicyDocument, "Invalid principal in policy: \"AWS\":\"%s\"", arn)
				}
				if ids == nil {
					ids = make(map[string]string)
				}
				ids[arn] = id
			}
		}
	}
	return ids, nil
}

// BindStoredTrust binds the trust policies of roles stored before trust
// policies were bound (roleRecord.TrustBound unset) to the users and roles
// of the names they give that exist now, and one that names no one to no
// one: a best guess, made once, at the first start of a build that binds,
// so that a user or role deleted and made again later is not trusted. It
// returns how many roles it bound. A record that does not decode is
// logged and left as it is.
func (d *Directory) BindStoredTrust(ctx context.Context) (int, error) {
	var names [][]byte
	err := d.view(ctx, func(tx store.Tx) error {
		names = nil
		return store.ScanReadable(tx, []byte("iam/role/"), nil, func(k, v []byte) (bool, error) {
			if !bytes.Contains(v, []byte(`"trustBound":true`)) {
				names = append(names, bytes.Clone(k))
			}
			return true, nil
		}, func(err error) {
			// Changed outside the server: the calls that read it fail.
			d.log.Error("stored role left unbound", "err", err)
		})
	})
	if err != nil {
		return 0, err
	}
	bound := 0
	for _, k := range names {
		var rec roleRecord
		err := d.view(ctx, func(tx store.Tx) error { return getJSON(tx, k, &rec) })
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			d.log.Error("stored role left unbound", "record", string(k), "err", err)
			continue
		}
		if rec.TrustBound {
			continue
		}
		trust, err := policy.ParseStoredTrust(rec.TrustPolicy)
		if err != nil {
			d.log.Error("stored role left unbound", "record", string(k), "err", err)
			continue
		}
		ids, err := d.bindTrust(ctx, trust, false)
		if err != nil {
			return bound, err
		}
		err = d.update(ctx, func(tx store.Tx) error {
			var now roleRecord
			if err := getJSON(tx, k, &now); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return nil
				}
				return err
			}
			if now.TrustBound || now.TrustPolicy != rec.TrustPolicy {
				return nil
			}
			now.TrustIDs, now.TrustBound = ids, true
			return putJSON(tx, k, &now)
		})
		if err != nil {
			return bound, err
		}
		bound++
	}
	return bound, nil
}

// GetRole returns a role.
func (d *Directory) GetRole(ctx context.Context, caller *Principal, name string) (*Role, error) {
	if err := checkName("roleName", name, 64); err != nil {
		return nil, err
	}
	var rec roleRecord
	err := d.view(ctx, func(tx store.Tx) error { return getJSON(tx, roleKey(caller.Account, name), &rec) })
	missing := errors.Is(err, store.ErrNotFound)
	if err != nil && !missing {
		return nil, err
	}
	var r *Role
	arn := ""
	if !missing {
		r = rec.role(caller.Account)
		arn = r.Arn
	}
	if err := d.authorizeNamed(ctx, caller, "iam:GetRole", "role", name, arn); err != nil {
		return nil, err
	}
	if missing {
		return nil, noSuchRole(name)
	}
	return r, nil
}

// ListRoles lists a page of the account's roles, ordered by name, as
// ListUsers lists users.
func (d *Directory) ListRoles(ctx context.Context, caller *Principal, pathPrefix, marker string, max int) (roles []*Role, next string, err error) {
	if err := d.authorize(ctx, caller, "iam:ListRoles", "arn:aws:iam::"+caller.Account+":role/"); err != nil {
		return nil, "", err
	}
	err = d.view(ctx, func(tx store.Tx) error {
		roles = roles[:0]
		var err error
		next, err = scanPageJSON(tx, rolePrefix(caller.Account), marker, max, func(r *roleRecord) bool { return onPath(r.Path, pathPrefix) }, func(r *roleRecord) {
			roles = append(roles, r.role(caller.Account))
		})
		return err
	})
	return roles, next, err
}

// DeleteRole deletes a role that has no inline policies left; its sessions
// end at once.
func (d *Directory) DeleteRole(ctx context.Context, caller *Principal, name string) error {
	if err := checkName("roleName", name, 64); err != nil {
		return err
	}
	err := d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		if _, err := d.named(ctx, tx, caller, "Role", name, "iam:DeleteRole"); err != nil {
			return err
		}
		if n, err := count(tx, rolePolicyPrefix(caller.Account, name)); err != nil || n > 0 {
			if err == nil {
				err = errf(fault.DeleteConflict, "Cannot delete entity, must delete policies first.")
			}
			return err
		}
		return tx.Delete(roleKey(caller.Account, name))
	})
	d.changed(roleOf(caller.Account, name))
	return err
}
