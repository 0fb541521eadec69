package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/store"
)

// Credentials are temporary credentials of an assumed-role session.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// AssumedRole describes the session AssumeRole started.
type AssumedRole struct {
	AssumedRoleID string // AROA...:session
	Arn           string // arn:aws:sts::ACCT:assumed-role/ROLE/SESSION
}

var sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)

// checkSessionName refuses a role session name as AWS does, naming the
// constraint it fails: present, 2 to 64 characters, of IAM's name alphabet.
func checkSessionName(name string) error {
	const prefix = "1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: "
	switch {
	case name == "":
		return errf(fault.Validation, "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
	case len(name) < 2:
		return errf(fault.Validation, prefix+"Member must have length greater than or equal to 2", name)
	case len(name) > 64:
		return errf(fault.Validation, prefix+"Member must have length less than or equal to 64", name)
	case !sessionNamePattern.MatchString(name):
		return errf(fault.Validation, prefix+"Member must satisfy regular expression pattern: [\\w+=,.@-]*", name)
	}
	return nil
}

// AssumeRole starts a session of the role named by roleArn, if the role's
// trust policy lets the caller in: directly, or by naming the caller's
// account when an identity policy of the caller allows sts:AssumeRole. An
// account's root may not assume roles, as on AWS. A session lasts
// durationSeconds (an hour when 0), at most the role's MaxSessionDuration,
// and at most an hour when the caller is itself a role session, ending no
// later than the caller's session then.
func (d *Directory) AssumeRole(ctx context.Context, caller *Principal, roleArn, sessionName string, durationSeconds int32, sessionPolicy string) (*Credentials, *AssumedRole, error) {
	if err := checkSessionName(sessionName); err != nil {
		return nil, nil, err
	}
	if durationSeconds != 0 && durationSeconds < 900 {
		return nil, nil, errf(fault.Validation, "1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900", durationSeconds)
	}
	if durationSeconds > 43200 {
		return nil, nil, errf(fault.Validation, "1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200", durationSeconds)
	}
	if sessionPolicy != "" {
		return nil, nil, errf(fault.Validation, "Session policies are not supported by this server.")
	}
	account, path, name, ok := parseRoleARN(roleArn)
	if !ok {
		return nil, nil, errf(fault.Validation, "%s is invalid", roleArn)
	}
	if caller.Type == TypeRoot {
		// AWS refuses this whatever the role's trust policy says.
		return nil, nil, errf(fault.AccessDenied, "Roles may not be assumed by root accounts.")
	}
	if strings.SplitN(roleArn, ":", 5)[3] != "" {
		// A region, which IAM's ARNs never have: it names no role, as it
		// names no one in a policy (PrincipalID).
		return nil, nil, denied(caller, "sts:AssumeRole", roleArn)
	}
	var role roleRecord
	err := d.view(ctx, func(tx store.Tx) error { return getJSON(tx, roleKey(account, name), &role) })
	if errors.Is(err, store.ErrNotFound) || err == nil && path != role.Path {
		// A role ARN names its role with its path, as on AWS: under
		// another path (none given for a role that has one, or one
		// given for a role that has none) it names no role, and is
		// refused as one that does not exist.
		return nil, nil, denied(caller, "sts:AssumeRole", roleArn)
	}
	if err != nil {
		return nil, nil, err
	}
	arn := roleARN(account, role.Path, role.Name)
	trust, err := policy.ParseStoredTrust(role.TrustPolicy)
	if err != nil {
		return nil, nil, err
	}
	if role.TrustBound {
		trust.Bind(role.TrustIDs)
	}
	ctx = withRoleSessionName(ctx, sessionName)
	decide := func(caller *Principal) error {
		req := &policy.Request{Principal: caller.PolicyPrincipal(), Action: "sts:AssumeRole", Resource: arn, Context: d.contextOf(ctx)}
		dec := trust.EvaluateResource(req)
		// An explicit deny in the caller's own identity policies refuses,
		// whoever the trust policy names.
		own := policy.EvaluateIdentities(caller.Policies, req)
		// A refusal names the role as the caller did, as one for a role
		// that does not exist does: it tells no one what roles an account
		// has, nor their paths.
		switch {
		case dec.Deny || own.Deny || !(dec.Allow || dec.AccountAllow):
			return denied(caller, "sts:AssumeRole", roleArn)
		case dec.AccountAllow && !dec.Allow, caller.Account != account:
			// The trust policy trusts the account (or the caller is in
			// another account): the caller's own identity policies must
			// allow it too.
			if err := d.authorize(ctx, caller, "sts:AssumeRole", arn); err != nil {
				return denied(caller, "sts:AssumeRole", roleArn)
			}
		}
		return nil
	}
	if err := decide(caller); err != nil {
		return nil, nil, err
	}
	if durationSeconds == 0 {
		durationSeconds = 3600
	}
	if caller.Type == TypeAssumedRole && durationSeconds > 3600 {
		// Role chaining: a session may start another of at most an hour,
		// whatever the role allows, as on AWS.
		return nil, nil, errf(fault.Validation, "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	if durationSeconds > role.MaxSession {
		return nil, nil, errf(fault.Validation, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	now := d.now().UTC().Truncate(time.Second)
	expiration := now.Add(time.Duration(durationSeconds) * time.Second)
	if caller.Type == TypeAssumedRole && expiration.After(caller.SessionExpires) {
		// A chained session ends with the session that started it: else
		// a session could renew itself, an hour at a time, forever after
		// the access key it came from was deleted. So no session outlives
		// the first of its chain, which long-term credentials started.
		expiration = caller.SessionExpires
	}
	tok := make([]byte, 96)
	rand.Read(tok)
	c := &Credentials{
		AccessKeyID:     randomID("ASIA", accessKeyIDLength),
		SecretAccessKey: newSecret(),
		SessionToken:    base64.StdEncoding.EncodeToString(tok),
		Expiration:      expiration,
	}
	sum := sha256.Sum256([]byte(c.SessionToken))
	rec := sessionRecord{V: 1, ID: c.AccessKeyID, Account: account, RoleName: role.Name, RoleID: role.ID, SessionName: sessionName,
		Issued: now, Expiration: c.Expiration, TokenHash: sum[:], Sealed: d.root.Seal(sessionKey(c.AccessKeyID), []byte(c.SecretAccessKey))}
	// Decided again on the caller as the session's transaction reads it:
	// a session must not outlast the caller's access, taken away since.
	err = d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		if err := decide(caller); err != nil {
			return err
		}
		if err := tx.Put(sessionExpiryKey(rec.Expiration, rec.ID), nil); err != nil {
			return err
		}
		return putJSON(tx, sessionKey(c.AccessKeyID), &rec)
	})
	if err != nil {
		return nil, nil, err
	}
	return c, &AssumedRole{AssumedRoleID: role.ID + ":" + sessionName, Arn: "arn:aws:sts::" + account + ":assumed-role/" + role.Name + "/" + sessionName}, nil
}

// parseRoleARN splits arn:aws:iam:REGION:ACCT:role/[path/]NAME (REGION
// is read as anything, and should be empty); path is "/" or "/path/".
func parseRoleARN(arn string) (account, path, name string, ok bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "iam" || len(parts[4]) != 12 || !strings.HasPrefix(parts[5], "role/") {
		return "", "", "", false
	}
	res := parts[5]
	slash := strings.LastIndexByte(res, '/')
	path, name = res[len("role"):slash+1], res[slash+1:]
	return parts[4], path, name, namePattern.MatchString(name)
}

// expiredSessionKept is how long a session's record outlives the session:
// until then its requests are refused as expired (ExpiredToken), as AWS
// refuses an expired token, rather than as made by no one
// (InvalidClientTokenId), which SDKs do not take as a cue to get new
// credentials.
const expiredSessionKept = 24 * time.Hour

// sessionSweepEvery is how often DeleteExpiredSessions reads every
// session, not only the index: a server of an earlier version (a node of
// a cluster not yet upgraded, or a server rolled back) stores sessions
// without their index records, even in a store marked as indexed, and
// those would never be removed.
const sessionSweepEvery = 7 * 24 * time.Hour

// DeleteExpiredSessions removes the records of sessions that ended more
// than a day ago (expiredSessionKept). It reads the expiry index up to
// the first session not yet due, not every session. A store whose
// sessions are not all indexed (stored before the index), or whose last
// reading of every session is a week old (sessionSweepEvery) or dated
// after now, is read whole, indexing the sessions it keeps that lack
// their index record, and marked with the date: a session stored without
// one after that is removed up to a week late. A session record changed
// outside the server is logged and left: it must not keep the others in
// the store.
func (d *Directory) DeleteExpiredSessions(ctx context.Context) error {
	now := d.now()
	cutoff := now.Add(-expiredSessionKept) // a session that expired at or before it is stale
	var stale [][]byte                     // session records and their index records
	var unindexed [][]byte                 // index records of sessions kept, missing
	indexed := false
	err := d.view(ctx, func(tx store.Tx) error {
		stale, unindexed, indexed = stale[:0], unindexed[:0], false
		if v, err := tx.Get(sessionIndexRecord); err == nil && !sessionSweepDue(v, now) {
			indexed = true
			prefix := []byte(sessionExpiryPrefix)
			return store.ScanReadable(tx, prefix, nil, func(k, _ []byte) (bool, error) {
				at, id, _ := strings.Cut(string(k[len(prefix):]), "/")
				expires, err := time.Parse(sessionExpiryLayout, at)
				if err != nil {
					// Changed outside the server: removed, as a
					// session's index record is, with its session.
					stale = append(stale, bytes.Clone(k))
					return true, nil
				}
				if expires.After(cutoff) {
					return false, nil // and so are all after it
				}
				stale = append(stale, sessionKey(id), bytes.Clone(k))
				return true, nil
			}, func(err error) {
				d.log.Error("a session's expiry index record left in the store: it was changed outside the server", "err", err)
			})
		}
		// The index records there are, so that only the missing are
		// written: the transaction that writes them holds the store's
		// write lock.
		have := make(map[string]bool)
		if err := tx.Scan([]byte(sessionExpiryPrefix), nil, func(k, _ []byte) (bool, error) {
			have[string(k)] = true
			return true, nil
		}); err != nil {
			return err
		}
		return store.ScanReadable(tx, []byte("iam/session/"), nil, func(k, v []byte) (bool, error) {
			var s sessionRecord
			if err := json.Unmarshal(v, &s); err != nil {
				return false, fmt.Errorf("record %s is corrupt: %w", k, err)
			}
			if s.Expiration.After(cutoff) {
				if ik := sessionExpiryKey(s.Expiration, s.ID); !have[string(ik)] {
					unindexed = append(unindexed, ik)
				}
			} else {
				stale = append(stale, sessionKey(s.ID), sessionExpiryKey(s.Expiration, s.ID))
			}
			return true, nil
		}, func(err error) {
			d.log.Error("a session record left in the store: it was changed outside the server", "err", err)
		})
	})
	if err != nil || (indexed && len(stale) == 0) {
		return err
	}
	return d.update(ctx, func(tx store.Tx) error {
		for _, k := range stale {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		if indexed {
			return nil
		}
		for _, k := range unindexed {
			if err := tx.Put(k, nil); err != nil {
				return err
			}
		}
		// Sessions made since the scan were indexed as they were made
		// (by this version).
		return tx.Put(sessionIndexRecord, []byte(sessionIndexDone+" "+now.UTC().Format(time.RFC3339Nano)))
	})
}

// sessionIndexDone begins the value of sessionIndexRecord, followed by
// a space and the date of the last reading of every session.
const sessionIndexDone = "v1"

// sessionSweepDue reports whether the session index mark v calls for a
// reading of every session at now: a mark without a date (written before
// marks held one), or one whose date is a week old, or after now (a
// node whose clock is ahead wrote it), or that does not read.
func sessionSweepDue(v []byte, now time.Time) bool {
	done, date, ok := strings.Cut(string(v), " ")
	if !ok || done != sessionIndexDone {
		return true
	}
	last, err := time.Parse(time.RFC3339Nano, date)
	return err != nil || now.Before(last) || now.Sub(last) >= sessionSweepEvery
}
