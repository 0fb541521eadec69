package identity

import (
	"strings"
	"time"
)

// A cached credential is read from the records of its access key or role
// session and of its owner: the IAM user (its record and inline
// policies) or the role (likewise) it acts as. A change to those records
// drops the credentials read from them, and refuses what a read of them
// that began before the change found (changelog); a change to another
// user's records, or to another access key, leaves them be. On a cluster
// the last would otherwise throw away every read in the background under
// way each time any access key or policy changed anywhere.

// subject is what a credential is read from and a change is to: an
// access key or session (by its id), or the IAM user or role that owns it
// (by account and lowercased name, as it is stored).
type subject struct {
	kind          subjectKind
	account, name string
}

type subjectKind uint8

const (
	accessKeySubject subjectKind = iota + 1 // an access key or role session
	userSubject
	roleSubject
)

func accessKeyOf(id string) subject       { return subject{kind: accessKeySubject, name: id} }
func userOf(account, name string) subject { return subject{userSubject, account, lower(name)} }
func roleOf(account, name string) subject { return subject{roleSubject, account, lower(name)} }
func (s subject) owns(c *credential) bool { return c.owner == s }
func (s subject) ownsMiss(m miss) bool    { return m.owner == s }
func ownerOf(kind, account, name string) subject {
	if kind == "Role" {
		return roleOf(account, name)
	}
	return userOf(account, name)
}

// miss is an access key found unknown or inactive: when, and the owner
// its record names, if any.
type miss struct {
	at    time.Time
	owner subject
}

// invalidate drops every cached credential, and refuses what every read
// under way found: for a change that may concern any of them.
func (d *Directory) invalidate() {
	d.mu.Lock()
	d.changes.Flushed()
	d.clearCredentials()
	clear(d.misses)
	d.mu.Unlock()
}

// changed drops what is cached of subjects, changed (committed) before
// it is called, and refuses what the reads of them under way found.
func (d *Directory) changed(subjects ...subject) {
	d.mu.Lock()
	defer d.mu.Unlock()
	owners := false
	for _, s := range subjects {
		d.changes.Changed(s)
		if s.kind == accessKeySubject {
			d.dropCredential(s.name)
			delete(d.misses, s.name)
		} else {
			owners = true
		}
	}
	if !owners {
		return
	}
	// IAM changes are rare beside the calls; the caches hold at most
	// cacheLimit entries each.
	for id, c := range d.creds {
		for _, s := range subjects {
			if s.owns(c) {
				d.dropCredential(id)
			}
		}
	}
	for id, m := range d.misses {
		for _, s := range subjects {
			if s.ownsMiss(m) {
				delete(d.misses, id)
			}
		}
	}
}

// staleSince reports whether a change to the access key akid or its owner
// (none if zero), or a flush, came since generation gen. d.mu is held.
func (d *Directory) staleSince(gen uint64, akid string, owner subject) bool {
	return d.changes.ChangedSince(accessKeyOf(akid), gen) || owner.kind != 0 && d.changes.ChangedSince(owner, gen)
}

// Changed tells the directory that other processes sharing its store
// changed the records named (store keys); nil means anything may have
// changed. A changed record of an access key or role session drops that
// credential; of a user or role, or of one of their inline policies, the
// credentials of that user or role. Records that no credential is read
// from (login profiles, the indexes of access keys, accounts) drop
// nothing; an IAM record not known here drops every cached credential.
func (d *Directory) Changed(records [][]byte) {
	if records == nil {
		d.invalidate()
		return
	}
	var subjects []subject
	for _, r := range records {
		name, ok := strings.CutPrefix(string(r), "iam/")
		if !ok {
			continue
		}
		kind, rest, _ := strings.Cut(name, "/")
		switch kind {
		case "accesskey", "session": // <kind>/<access-key-id>
			subjects = append(subjects, accessKeyOf(rest))
		case "user", "userpolicy", "role", "rolepolicy": // <kind>/<account>/<name>[/<policy>]
			account, rest, _ := strings.Cut(rest, "/")
			owner, _, _ := strings.Cut(rest, "/")
			if strings.HasPrefix(kind, "user") {
				subjects = append(subjects, userOf(account, owner))
			} else {
				subjects = append(subjects, roleOf(account, owner))
			}
		case "loginprofile", "userkey", "rootkey", "rootkeys", "account":
		default:
			d.invalidate()
			return
		}
	}
	if len(subjects) > 0 {
		d.changed(subjects...)
	}
}
