package identity

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/store"
)

// User is an IAM user as the IAM API shows it.
type User struct {
	Path     string
	UserName string
	UserID   string
	Arn      string
	Created  time.Time
}

var (
	namePattern       = regexp.MustCompile(`^[\w+=,.@-]+$`)
	pathPattern       = regexp.MustCompile(`^/([\x21-\x7e]*/)?$`)
	policyNamePattern = regexp.MustCompile(`^[\w+=,.@-]+$`)
)

// maxPolicyDocBytes bounds the inline policies of a user or role, all
// together: AWS's 10,240 characters for a role, whitespace not counted,
// as IAM counts them (for a user AWS allows 2,048; this server allows a
// user as much as a role).
const maxPolicyDocBytes = 2048 * 5

// maxPolicyDocsStored bounds the same policies with their whitespace, as
// they are stored and read on each of the owner's requests: the largest
// single document IAM's model takes. Past it, LimitExceeded as past
// maxPolicyDocBytes; only a document mostly of whitespace reaches it.
const maxPolicyDocsStored = 131072

// IAM's quotas on the users and roles of an account (UsersPerAccount,
// which AWS does not raise, and RolesPerAccount's default). CreateUser and
// CreateRole past them get LimitExceeded, as on AWS: without them, a
// principal allowed to create users could fill the store.
const (
	DefaultUserQuota = 5000
	DefaultRoleQuota = 1000
)

// maxExistingUserName is IAM's bound on a UserName that names an existing
// user (GetUser, DeleteUser, the access key and user policy calls): 128,
// though CreateUser takes no more than 64.
const maxExistingUserName = 128

// checkName refuses a name from a request as IAM does, naming the
// constraint it fails: present, at most max characters, of IAM's name
// alphabet (ASCII letters and digits and _+=,.@-).
func checkName(field, name string, max int) error {
	switch {
	case name == "":
		return errf(fault.Validation, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	case len(name) > max:
		return errf(fault.Validation, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", name, field, max)
	case !namePattern.MatchString(name):
		return errf(fault.Validation, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", name, field)
	}
	return nil
}

func checkPath(path string) (string, error) {
	if path == "" {
		return "/", nil
	}
	if len(path) > 512 || !pathPattern.MatchString(path) {
		return "", errf(fault.Validation, "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.")
	}
	return path, nil
}

func (u *userRecord) user(account string) *User {
	return &User{Path: u.Path, UserName: u.Name, UserID: u.ID, Arn: userARN(account, u.Path, u.Name), Created: u.Created}
}

func noSuchUser(name string) error {
	return errf(fault.NoSuchEntity, "The user with name %s cannot be found.", name)
}

// CreateUser creates an IAM user in the caller's account.
func (d *Directory) CreateUser(ctx context.Context, caller *Principal, name, path string) (*User, error) {
	if err := checkName("userName", name, 64); err != nil {
		return nil, err
	}
	path, err := checkPath(path)
	if err != nil {
		return nil, err
	}
	rec := userRecord{V: 1, Name: name, ID: randomID("AIDA", 17), Path: path, Created: d.now().UTC().Truncate(time.Second)}
	err = d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		// Decided on the caller as this transaction reads it: a
		// permission taken away since the signature was checked holds.
		if err := d.authorize(ctx, caller, "iam:CreateUser", userARN(caller.Account, path, name)); err != nil {
			return err
		}
		if _, err := tx.Get(userKey(caller.Account, name)); err == nil {
			return errf(fault.EntityAlreadyExists, "User with name %s already exists.", name)
		}
		if n, err := count(tx, userPrefix(caller.Account)); err != nil {
			return err
		} else if n >= d.userQuota {
			return errf(fault.LimitExceeded, "Cannot exceed quota for UsersPerAccount: %d", d.userQuota)
		}
		return putJSON(tx, userKey(caller.Account, name), &rec)
	})
	if err != nil {
		return nil, err
	}
	return rec.user(caller.Account), nil
}

// GetUser returns a user, or with an empty name the caller itself (the root
// shows as a user named after nothing, as AWS does). Reading oneself
// needs iam:GetUser like reading another.
func (d *Directory) GetUser(ctx context.Context, caller *Principal, name string) (*User, error) {
	if name == "" {
		switch caller.Type {
		case TypeRoot:
			// The root was made with its account: its CreateDate is the
			// account's, as on AWS (zero for an account stored before
			// its record existed and not started since).
			var acct accountRecord
			err := d.view(ctx, func(tx store.Tx) error { return getJSON(tx, accountKey(caller.Account), &acct) })
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			return &User{UserID: caller.Account, Arn: caller.ARN, Created: acct.Created}, nil
		case TypeIAMUser:
			name = caller.Username
		default:
			return nil, errf(fault.Validation, "Must specify userName when calling with non-User credentials")
		}
	} else if err := checkName("userName", name, maxExistingUserName); err != nil {
		return nil, err
	}
	var rec userRecord
	err := d.view(ctx, func(tx store.Tx) error { return getJSON(tx, userKey(caller.Account, name), &rec) })
	missing := errors.Is(err, store.ErrNotFound)
	if err != nil && !missing {
		return nil, err
	}
	var u *User
	arn := ""
	if !missing {
		u = rec.user(caller.Account)
		arn = u.Arn
	}
	// A user reading itself needs iam:GetUser on its own ARN too, as on
	// AWS: an explicit deny of iam:* shuts it out of itself as well.
	if err := d.authorizeNamed(ctx, caller, "iam:GetUser", "user", name, arn); err != nil {
		return nil, err
	}
	if missing {
		return nil, noSuchUser(name)
	}
	return u, nil
}

// ListUsers lists a page of the account's users whose path begins with
// pathPrefix ("" or "/": all), ordered by name: at most max (> 0), after
// marker (a next of an earlier page; "" from the first). next is the
// marker of the page after, "" after the last. A page reads its own
// users, and those of other paths it passes over, not the account's
// every one.
func (d *Directory) ListUsers(ctx context.Context, caller *Principal, pathPrefix, marker string, max int) (users []*User, next string, err error) {
	if err := d.authorize(ctx, caller, "iam:ListUsers", "arn:aws:iam::"+caller.Account+":user/"); err != nil {
		return nil, "", err
	}
	err = d.view(ctx, func(tx store.Tx) error {
		users = users[:0]
		var err error
		next, err = scanPageJSON(tx, userPrefix(caller.Account), marker, max, func(u *userRecord) bool { return onPath(u.Path, pathPrefix) }, func(u *userRecord) {
			users = append(users, u.user(caller.Account))
		})
		return err
	})
	return users, next, err
}

// DeleteUser deletes a user that has no access keys and no policies left.
func (d *Directory) DeleteUser(ctx context.Context, caller *Principal, name string) error {
	if err := checkName("userName", name, maxExistingUserName); err != nil {
		return err
	}
	err := d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		if _, err := d.named(ctx, tx, caller, "User", name, "iam:DeleteUser"); err != nil {
			return err
		}
		if n, err := count(tx, userKeysPrefix(caller.Account, name)); err != nil || n > 0 {
			if err == nil {
				err = errf(fault.DeleteConflict, "Cannot delete entity, must delete access keys first.")
			}
			return err
		}
		if _, err := tx.Get(loginProfileKey(caller.Account, name)); err == nil {
			return errf(fault.DeleteConflict, "Cannot delete entity, must delete login profile first.")
		}
		if n, err := count(tx, userPolicyPrefix(caller.Account, name)); err != nil || n > 0 {
			if err == nil {
				err = errf(fault.DeleteConflict, "Cannot delete entity, must delete policies first.")
			}
			return err
		}
		return tx.Delete(userKey(caller.Account, name))
	})
	d.changed(userOf(caller.Account, name))
	return err
}

func count(tx store.Tx, prefix []byte) (int, error) {
	n := 0
	err := tx.Scan(prefix, nil, func(_, _ []byte) (bool, error) { n++; return true, nil })
	return n, err
}

// Inline policies of users and roles.

type policyOwner struct {
	kind     string // "user" or "role"
	name     string
	arn      string
	prefix   []byte
	notFound error
}

func (d *Directory) userOwner(tx store.Tx, account, name string) (*policyOwner, error) {
	var rec userRecord
	if err := getJSON(tx, userKey(account, name), &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, noSuchUser(name)
		}
		return nil, err
	}
	return &policyOwner{kind: "User", name: rec.Name, arn: userARN(account, rec.Path, rec.Name), prefix: userPolicyPrefix(account, name)}, nil
}

func (d *Directory) roleOwner(tx store.Tx, account, name string) (*policyOwner, error) {
	var rec roleRecord
	if err := getJSON(tx, roleKey(account, name), &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, noSuchRole(name)
		}
		return nil, err
	}
	return &policyOwner{kind: "Role", name: rec.Name, arn: roleARN(account, rec.Path, rec.Name), prefix: rolePolicyPrefix(account, name)}, nil
}

// checkPolicyNames checks the owner's name of a policy call of kind and,
// unless the call names no policy (List), the policy's.
func checkPolicyNames(kind, owner, policyName string, named bool) error {
	max := maxExistingUserName
	if kind == "Role" {
		max = 64
	}
	if err := checkName(lowerKind(kind)+"Name", owner, max); err != nil {
		return err
	}
	if !named {
		return nil
	}
	return checkName("policyName", policyName, 128)
}

// PutPolicy adds or replaces an inline identity policy of a user ("User")
// or role ("Role").
func (d *Directory) PutPolicy(ctx context.Context, caller *Principal, kind, owner, policyName, document string) error {
	if err := checkPolicyNames(kind, owner, policyName, true); err != nil {
		return err
	}
	if policySize(document) > maxPolicyDocBytes || len(document) > maxPolicyDocsStored {
		return errf(fault.LimitExceeded, "Maximum policy size of %d bytes exceeded for %s %s", maxPolicyDocBytes, lowerKind(kind), owner)
	}
	doc, err := policy.ParseIdentity(document)
	if err == nil {
		err = policy.CheckIdentitySids(doc)
	}
	if pe := (*policy.Error)(nil); errors.As(err, &pe) && pe.Syntax {
		return errf(fault.MalformedPolicyDocument, "Syntax errors in policy.") // IAM's words
	}
	if err != nil {
		return errf(fault.MalformedPolicyDocument, "%s", err.Error())
	}
	err = d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		o, err := d.named(ctx, tx, caller, kind, owner, "iam:Put"+kind+"Policy")
		if err != nil {
			return err
		}
		// The limit is on all of an owner's inline policies together, as
		// on AWS: every request of the owner reads and evaluates them all.
		// IAM counts their characters but whitespace; their stored
		// size is bounded too.
		total, stored := policySize(document), len(document)
		err = scanJSON(tx, o.prefix, func(p *policyRecord) error {
			if p.Name != policyName {
				total += policySize(p.Document)
				stored += len(p.Document)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if total > maxPolicyDocBytes || stored > maxPolicyDocsStored {
			return errf(fault.LimitExceeded, "Maximum policy size of %d bytes exceeded for %s %s", maxPolicyDocBytes, lowerKind(kind), owner)
		}
		return putJSON(tx, append(o.prefix, policyName...), &policyRecord{V: 1, Name: policyName, Document: document})
	})
	d.changed(ownerOf(kind, caller.Account, owner))
	return err
}

// GetPolicy returns an inline policy document.
func (d *Directory) GetPolicy(ctx context.Context, caller *Principal, kind, owner, policyName string) (string, string, error) {
	if err := checkPolicyNames(kind, owner, policyName, true); err != nil {
		return "", "", err
	}
	var rec policyRecord
	var ownerName string
	err := d.view(ctx, func(tx store.Tx) error {
		o, err := d.named(ctx, tx, caller, kind, owner, "iam:Get"+kind+"Policy")
		if err != nil {
			return err
		}
		ownerName = o.name
		if err := getJSON(tx, append(o.prefix, policyName...), &rec); errors.Is(err, store.ErrNotFound) {
			return errf(fault.NoSuchEntity, "The %s policy with name %s cannot be found.", lowerKind(kind), policyName)
		} else if err != nil {
			return err
		}
		return nil
	})
	return ownerName, rec.Document, err
}

// ListPolicies lists a page of the names of an owner's inline policies,
// in order, as ListUsers lists users: at most max (> 0), after marker
// (a next of an earlier page; "" from the first). next is the marker of
// the page after, "" after the last.
func (d *Directory) ListPolicies(ctx context.Context, caller *Principal, kind, owner, marker string, max int) (names []string, next string, err error) {
	if err := checkPolicyNames(kind, owner, "", false); err != nil {
		return nil, "", err
	}
	err = d.view(ctx, func(tx store.Tx) error {
		names = names[:0]
		o, err := d.named(ctx, tx, caller, kind, owner, "iam:List"+kind+"Policies")
		if err != nil {
			return err
		}
		next, err = scanPageJSON(tx, o.prefix, marker, max, nil, func(p *policyRecord) { names = append(names, p.Name) })
		return err
	})
	return names, next, err
}

// DeletePolicy deletes an inline policy.
func (d *Directory) DeletePolicy(ctx context.Context, caller *Principal, kind, owner, policyName string) error {
	if err := checkPolicyNames(kind, owner, policyName, true); err != nil {
		return err
	}
	err := d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		o, err := d.named(ctx, tx, caller, kind, owner, "iam:Delete"+kind+"Policy")
		if err != nil {
			return err
		}
		k := append(o.prefix, policyName...)
		if _, err := tx.Get(k); errors.Is(err, store.ErrNotFound) {
			return errf(fault.NoSuchEntity, "The %s policy with name %s cannot be found.", lowerKind(kind), policyName)
		}
		return tx.Delete(k)
	})
	d.changed(ownerOf(kind, caller.Account, owner))
	return err
}

// named returns the user ("User") or role ("Role") a request names, once
// caller may perform action on it: whether it exists is told only to a
// caller who may (authorizeNamed).
func (d *Directory) named(ctx context.Context, tx store.Tx, caller *Principal, kind, name, action string) (*policyOwner, error) {
	o, err := d.owner(tx, caller.Account, kind, name)
	missing := errors.Is(err, &fault.Error{Code: fault.NoSuchEntity})
	if err != nil && !missing {
		return nil, err
	}
	arn := ""
	if o != nil {
		arn = o.arn
	}
	if err := d.authorizeNamed(ctx, caller, action, lowerKind(kind), name, arn); err != nil {
		return nil, err
	}
	return o, err
}

func (d *Directory) owner(tx store.Tx, account, kind, name string) (*policyOwner, error) {
	if kind == "Role" {
		return d.roleOwner(tx, account, name)
	}
	return d.userOwner(tx, account, name)
}

func lowerKind(kind string) string {
	if kind == "Role" {
		return "role"
	}
	return "user"
}

func (d *Directory) view(ctx context.Context, fn func(store.Tx) error) error {
	return d.st.View(ctx, fn)
}

func (d *Directory) update(ctx context.Context, fn func(store.Tx) error) error {
	return d.st.Update(ctx, fn)
}

// updateAs runs fn in one write transaction, for a change caller makes,
// with caller as that transaction reads it (callerNow).
func (d *Directory) updateAs(ctx context.Context, caller *Principal, fn func(tx store.Tx, caller *Principal) error) error {
	return d.st.Update(ctx, func(tx store.Tx) error {
		now, err := d.callerNow(tx, caller)
		if err != nil {
			return err
		}
		return fn(tx, now)
	})
}

// PoliciesNow returns a function that reads p again in a transaction of
// the store (callerNow) and returns its identity policies as stored then,
// or the error that refuses a caller whose access key, session or user is
// gone: for a change another package makes in its own transaction, which
// must be decided on the caller as that transaction reads it.
func (d *Directory) PoliciesNow(p *Principal) func(tx store.Tx) ([]*policy.Policy, error) {
	return func(tx store.Tx) ([]*policy.Policy, error) {
		now, err := d.callerNow(tx, p)
		if err != nil {
			return nil, err
		}
		return now.Policies, nil
	}
}

// callerNow reads caller again in tx, the transaction of a change it
// makes: its access key (or role session) must still be valid, and it
// has the policies stored now. Else a change that took the caller's
// access away, committed between the caller's authentication and this
// transaction, would be undone by a change authorized a moment before it
// (a PutUserPolicy putting back the policy just deleted, an access key or
// role session made once the caller's key was deleted). A principal that
// signed in to the console with a password is read as its user; one with
// neither (made up by a test) is taken as it is.
func (d *Directory) callerNow(tx store.Tx, caller *Principal) (*Principal, error) {
	var c *credential
	var owner subject
	var err error
	switch {
	case strings.HasPrefix(caller.AccessKeyID, "ASIA"):
		c, err = d.loadSession(tx, caller.AccessKeyID, &owner)
	case caller.AccessKeyID != "":
		c, err = d.loadAccessKey(tx, caller.AccessKeyID, &owner)
	case caller.Type == TypeIAMUser:
		var p *Principal
		if p, err = userPrincipal(tx, caller.Account, caller.Username); err == nil {
			p.passwordSalt = caller.passwordSalt
			c = &credential{principal: p}
		}
	default:
		return caller, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidToken
	}
	if err != nil {
		return nil, err
	}
	if c.principal.ARN != caller.ARN || c.principal.UserID != caller.UserID {
		return nil, errInvalidToken // deleted and made again
	}
	return c.principal, nil
}

// PrincipalID returns the unique id (AIDA... for a user, AROA... for a
// role) of the existing IAM user or role that arn names
// (arn:aws:iam::ACCT:user/[path/]NAME or :role/[path/]NAME), and whether
// there is one. A user or role deleted and made again under the same name
// has another id. Only the user's or role's own ARN names it: under
// another path, with a region, in another partition or service it names
// no one, as it matches no request. An ARN that names none gives "" and
// no error; the error is the store's.
func (d *Directory) PrincipalID(ctx context.Context, arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "iam" || parts[3] != "" {
		return "", nil
	}
	account, res := parts[4], parts[5]
	kind, rest, ok := strings.Cut(res, "/")
	if !ok {
		return "", nil
	}
	name := rest[strings.LastIndexByte(rest, '/')+1:]
	path := "/" + strings.TrimSuffix(rest, name)
	var key []byte
	switch kind {
	case "user":
		key = userKey(account, name)
	case "role":
		key = roleKey(account, name)
	default:
		return "", nil
	}
	id := ""
	err := d.view(ctx, func(tx store.Tx) error {
		var rec struct {
			Name string `json:"name"`
			ID   string `json:"id"`
			Path string `json:"path"`
		}
		err := getJSON(tx, key, &rec)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err == nil && rec.Name == name && rec.Path == path {
			id = rec.ID
		}
		return err
	})
	return id, err
}

// onPath reports whether an IAM path begins with prefix, as IAM's
// PathPrefix filters: "" (no filter) and "/" take every path.
func onPath(path, prefix string) bool {
	if path == "" {
		path = "/"
	}
	return strings.HasPrefix(path, prefix)
}
