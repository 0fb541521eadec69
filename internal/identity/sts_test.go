package identity_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/testsupport"
)

var sessionKeyRE = regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`)

func roleARN(account, pathAndName string) string {
	return "arn:aws:iam::" + account + ":role/" + pathAndName
}

func TestAssumeRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	named, _, _ := f.user("named", nil)
	allowed, _, _ := f.user("allowed", map[string]string{"assume": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`})
	nobody, _, _ := f.user("nobody", nil)
	otherAdmin, _, _ := f.userOf(f.root2, "otheradmin", map[string]string{"all": allowAll})
	assumer := f.assumer()
	selfDenied, _, _ := f.user("selfdenied", map[string]string{"all": allowAll, "deny": `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"}]}`})
	roles := map[string]string{
		"account":   trustAccount(acct),
		"named":     trustPrincipal(named.ARN),
		"denynamed": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"sts:AssumeRole"},{"Effect":"Deny","Principal":{"AWS":"` + named.ARN + `"},"Action":"sts:AssumeRole"}]}`,
		"crossacct": trustAccount(other),
	}
	ids := map[string]string{}
	for n, trust := range roles {
		r, err := f.d.CreateRole(f.ctx, f.root1, n, "/path/", trust, "", 7200)
		if err != nil {
			t.Fatal(err)
		}
		ids[n] = r.RoleID
	}
	const invalidSession = "1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
	for _, tc := range []struct {
		name    string
		caller  *identity.Principal
		arn     string
		session string
		dur     int32
		policy  string
		code    fault.Code
		msg     string
	}{
		{"the root, a role trusting its account", f.root1, roleARN(acct, "path/account"), "s-1", 0, "", fault.AccessDenied, "Roles may not be assumed by root accounts."},
		{"a user allowed everything, a role trusting its account", assumer, roleARN(acct, "path/account"), "s-1", 0, "", 0, ""},
		{"the role's name in another case", assumer, roleARN(acct, "path/ACCOUNT"), "s-3", 0, "", 0, ""},
		// A role ARN without the role's path, or with another, names no
		// role, as on AWS; the refusal is that of a role that does not
		// exist, and tells no one the path.
		{"the ARN without the role's path", assumer, roleARN(acct, "account"), "s-2", 0, "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/role-assumer is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::" + acct + ":role/account"},
		{"the ARN with another path", assumer, roleARN(acct, "other/account"), "s-2b", 0, "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/role-assumer is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::" + acct + ":role/other/account"},
		{"the ARN with the path in another case", assumer, roleARN(acct, "PATH/account"), "s-2c", 0, "", fault.AccessDenied, ""},
		{"a user the trust policy names, without identity policy", named, roleARN(acct, "path/named"), "s-4", 900, "", 0, ""},
		{"a user an identity policy allows", allowed, roleARN(acct, "path/account"), "s-5", 7200, "", 0, ""},
		{"a user no identity policy allows", nobody, roleARN(acct, "path/account"), "s-6", 0, "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/nobody is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::" + acct + ":role/path/account"},
		{"a user its identity policy denies", selfDenied, roleARN(acct, "path/account"), "s-7", 0, "", fault.AccessDenied, ""},
		{"a user the trust policy does not name", allowed, roleARN(acct, "path/named"), "s-8", 0, "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/allowed is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::" + acct + ":role/path/named"},
		{"a user the trust policy denies", named, roleARN(acct, "path/denynamed"), "s-9", 0, "", fault.AccessDenied, ""},
		{"another account's user, trusted", otherAdmin, roleARN(acct, "path/crossacct"), "s-10", 0, "", 0, ""},
		{"another account's root, trusted", f.root2, roleARN(acct, "path/crossacct"), "s-10b", 0, "", fault.AccessDenied, "Roles may not be assumed by root accounts."},
		// A refusal names the role as asked for: an outsider learns
		// neither that it exists nor its path.
		{"another account's user, not trusted", otherAdmin, roleARN(acct, "path/account"), "s-11", 0, "", fault.AccessDenied,
			"User: arn:aws:iam::" + other + ":user/otheradmin is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::" + acct + ":role/path/account"},
		{"a user of this account, a role trusting another", assumer, roleARN(acct, "path/crossacct"), "s-12", 0, "", fault.AccessDenied, ""},
		{"another account's user, not trusted, the name in another case", otherAdmin, roleARN(acct, "path/ACCOUNT"), "s-11b", 0, "", fault.AccessDenied,
			"User: arn:aws:iam::" + other + ":user/otheradmin is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::" + acct + ":role/path/ACCOUNT"},
		{"no such role", assumer, roleARN(acct, "path/ghost"), "s-13", 0, "", fault.AccessDenied,
			"User: arn:aws:iam::" + acct + ":user/role-assumer is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::" + acct + ":role/path/ghost"},
		{"the role in another account", assumer, roleARN(other, "account"), "s-14", 0, "", fault.AccessDenied, ""},
		{"a session name too short", assumer, roleARN(acct, "path/account"), "s", 0, "", fault.Validation,
			"1 validation error detected: Value 's' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"},
		{"no session name", assumer, roleARN(acct, "path/account"), "", 0, "", fault.Validation,
			"1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"},
		{"a session name too long", assumer, roleARN(acct, "path/account"), strings.Repeat("s", 65), 0, "", fault.Validation,
			"1 validation error detected: Value '" + strings.Repeat("s", 65) + "' at 'roleSessionName' failed to satisfy constraint: Member must have length less than or equal to 64"},
		{"the shortest session name", assumer, roleARN(acct, "path/account"), "s2", 0, "", 0, ""},
		{"the longest session name", assumer, roleARN(acct, "path/account"), strings.Repeat("l", 64), 0, "", 0, ""},
		{"a session name with a slash", assumer, roleARN(acct, "path/account"), "a/b", 0, "", fault.Validation, strings.Replace(invalidSession, "%s", "a/b", 1)},
		{"a session policy", assumer, roleARN(acct, "path/account"), "s-15", 0, allowAll, fault.Validation, "Session policies are not supported by this server."},
		{"a user's ARN", assumer, "arn:aws:iam::" + acct + ":user/named", "s-16", 0, "", fault.Validation, "arn:aws:iam::" + acct + ":user/named is invalid"},
		{"a short account", assumer, "arn:aws:iam::1234:role/account", "s-17", 0, "", fault.Validation, "arn:aws:iam::1234:role/account is invalid"},
		{"another service", assumer, "arn:aws:sts::" + acct + ":role/path/account", "s-18", 0, "", fault.Validation, ""},
		{"no role name", assumer, roleARN(acct, ""), "s-19", 0, "", fault.Validation, ""},
		{"not an ARN", assumer, "account", "s-20", 0, "", fault.Validation, "account is invalid"},
		{"a session too short", assumer, roleARN(acct, "path/account"), "s-21", 899, "", fault.Validation,
			"1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"},
		{"a negative session", assumer, roleARN(acct, "path/account"), "s-21b", -1, "", fault.Validation,
			"1 validation error detected: Value '-1' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"},
		{"a session longer than any role allows", assumer, roleARN(acct, "path/account"), "s-21c", 43201, "", fault.Validation,
			"1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"},
		{"a session longer than the role allows", assumer, roleARN(acct, "path/account"), "s-22", 7201, "", fault.Validation,
			"The requested DurationSeconds exceeds the MaxSessionDuration set for this role."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ar, err := f.d.AssumeRole(f.ctx, tc.caller, tc.arn, tc.session, tc.dur, tc.policy)
			check(t, err, tc.code, tc.msg)
			if err != nil {
				return
			}
			role := tc.arn[strings.LastIndexByte(tc.arn, '/')+1:]
			role = strings.ToLower(role)
			dur := time.Duration(tc.dur) * time.Second
			if dur == 0 {
				dur = time.Hour
			}
			if !sessionKeyRE.MatchString(c.AccessKeyID) || len(c.SecretAccessKey) != 40 || len(c.SessionToken) != 128 || !c.Expiration.Equal(start.Add(dur)) {
				t.Fatalf("credentials %+v", c)
			}
			wantARN := "arn:aws:sts::" + acct + ":assumed-role/" + role + "/" + tc.session
			if ar.Arn != wantARN || ar.AssumedRoleID != ids[role]+":"+tc.session {
				t.Fatalf("assumed role %+v, want %s", ar, wantARN)
			}
			p := f.auth(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
			want := identity.Principal{Type: identity.TypeAssumedRole, Account: acct, ARN: wantARN, UserID: ar.AssumedRoleID,
				RoleARN: roleARN(acct, "path/"+role), AccessKeyID: c.AccessKeyID}
			if p.Type != want.Type || p.Account != want.Account || p.ARN != want.ARN || p.UserID != want.UserID || p.RoleARN != want.RoleARN ||
				p.AccessKeyID != want.AccessKeyID || p.Username != "" || len(p.Policies) != 0 {
				t.Fatalf("the session authenticates as %+v, want %+v", p, want)
			}
		})
	}
}

// TestSessionCarriesTheRolePolicies: a session may do what its role's
// identity policies allow, and a change to them applies to the session's
// next request.
func TestSessionCarriesTheRolePolicies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "admin", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "admin"), "work", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	session := f.auth(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	_, err = f.d.CreateUser(f.ctx, session, "u1", "")
	wantErr(t, err, fault.AccessDenied, "User: arn:aws:sts::"+acct+":assumed-role/admin/work is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::"+acct+":user/u1 because no identity-based policy allows the iam:CreateUser action")

	if err := f.d.PutPolicy(f.ctx, f.root1, "Role", "admin", "iam", allowIAM); err != nil {
		t.Fatal(err)
	}
	session = f.auth(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	if len(session.Policies) != 1 {
		t.Fatalf("the session has %d policies, want its role's one", len(session.Policies))
	}
	if _, err := f.d.CreateUser(f.ctx, session, "u1", ""); err != nil {
		t.Fatalf("with the role's policy: %v", err)
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "Role", "admin", "deny", denyIAM); err != nil {
		t.Fatal(err)
	}
	session = f.auth(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	_, err = f.d.CreateUser(f.ctx, session, "u2", "")
	wantErr(t, err, fault.AccessDenied, "User: arn:aws:sts::"+acct+":assumed-role/admin/work is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::"+acct+":user/u2 with an explicit deny in an identity-based policy")
}

// TestRoleChainingLastsAnHour: a role session may assume another role,
// for an hour at most, whatever the second role allows a user.
func TestRoleChainingLastsAnHour(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, r := range []struct {
		name string
		max  int32
	}{{"first", 3600}, {"second", 7200}} {
		if _, err := f.d.CreateRole(f.ctx, f.root1, r.name, "", trustAccount(acct), "", r.max); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "Role", "first", "assume", allowIAM); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "first"), "one", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	session := f.auth(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	const chained = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
	for _, tc := range []struct {
		dur  int32
		want time.Duration // 0: refused with chained
	}{{0, time.Hour}, {900, 15 * time.Minute}, {3600, time.Hour}, {3601, 0}, {7200, 0}} {
		c2, _, err := f.d.AssumeRole(f.ctx, session, roleARN(acct, "second"), "two", tc.dur, "")
		if tc.want == 0 {
			wantErr(t, err, fault.Validation, chained)
			continue
		}
		if err != nil {
			t.Fatalf("chaining for %ds: %v", tc.dur, err)
		}
		if !c2.Expiration.Equal(start.Add(tc.want)) {
			t.Errorf("chaining for %ds: expires %v, want %v", tc.dur, c2.Expiration, start.Add(tc.want))
		}
	}
	// A user is held only to the role's own limit.
	if _, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "second"), "two", 7200, ""); err != nil {
		t.Fatalf("a user for the role's two hours: %v", err)
	}
}

// TestChainedSessionEndsWithItsSource: a session started by a session
// ends no later than it, so that a chain cannot renew itself past the
// session its long-term credentials started, nor after their key is
// deleted.
func TestChainedSessionEndsWithItsSource(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "hop", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "Role", "hop", "assume", allowIAM); err != nil {
		t.Fatal(err)
	}
	user, key, _ := f.user("source", map[string]string{"all": allowAll})
	c, _, err := f.d.AssumeRole(f.ctx, user, roleARN(acct, "hop"), "s0", 900, "")
	if err != nil {
		t.Fatal(err)
	}
	end := start.Add(15 * time.Minute)
	if err := f.d.DeleteAccessKey(f.ctx, f.root1, "source", key.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		f.clock.Advance(4 * time.Minute)
		session := f.auth(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
		if !session.SessionExpires.Equal(c.Expiration) {
			t.Fatalf("the session's principal expires %v, want %v", session.SessionExpires, c.Expiration)
		}
		if c, _, err = f.d.AssumeRole(f.ctx, session, roleARN(acct, "hop"), "s"+string(rune('1'+i)), 0, ""); err != nil {
			t.Fatal(err)
		}
		if !c.Expiration.Equal(end) {
			t.Fatalf("hop %d expires %v, want %v, the end of the first session", i+1, c.Expiration, end)
		}
	}
	f.clock.Advance(4 * time.Minute)
	_, err = f.authenticate(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	wantErr(t, err, fault.ExpiredToken, "")
}

// TestTokenIssueTime: a session's requests carry aws:TokenIssueTime, the
// time it was issued, so that AWS's way of revoking sessions (deny when
// aws:TokenIssueTime is before a time) refuses the sessions issued before
// that time and not those after, nor long-term credentials.
func TestTokenIssueTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "Role", "r", "iam", allowIAM); err != nil {
		t.Fatal(err)
	}
	_, key, secret := f.user("u", map[string]string{"all": allowAll})
	old, _, err := f.d.AssumeRole(f.ctx, f.auth(key.ID, secret, ""), roleARN(acct, "r"), "old", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	revoked := start.Add(time.Minute).Format(time.RFC3339)
	revoke := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"` + revoked + `"}}}]}`
	if err := f.d.PutPolicy(f.ctx, f.root1, "Role", "r", "revoke", revoke); err != nil {
		t.Fatal(err)
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "User", "u", "revoke", revoke); err != nil {
		t.Fatal(err)
	}
	user := f.auth(key.ID, secret, "")
	fresh, _, err := f.d.AssumeRole(f.ctx, user, roleARN(acct, "r"), "new", 0, "")
	if err != nil {
		t.Fatalf("long-term credentials are not sessions, and not revoked: %v", err)
	}
	oldP := f.auth(old.AccessKeyID, old.SecretAccessKey, old.SessionToken)
	if got := oldP.PolicyPrincipal().TokenIssueTime; got != start.Format(time.RFC3339) {
		t.Errorf("aws:TokenIssueTime of the old session is %q, want %s", got, start.Format(time.RFC3339))
	}
	_, _, err = f.d.ListUsers(f.ctx, oldP, "", "", 100)
	wantErr(t, err, fault.AccessDenied, "User: arn:aws:sts::"+acct+":assumed-role/r/old is not authorized to perform: iam:ListUsers on resource: arn:aws:iam::"+acct+":user/ with an explicit deny in an identity-based policy")
	if _, _, err := f.d.ListUsers(f.ctx, f.auth(fresh.AccessKeyID, fresh.SecretAccessKey, fresh.SessionToken), "", "", 100); err != nil {
		t.Errorf("a session issued after the revocation: %v", err)
	}
	if got := user.PolicyPrincipal().TokenIssueTime; got != "" {
		t.Errorf("long-term credentials have aws:TokenIssueTime %q", got)
	}

	// A session stored before its issue time was kept is taken to have
	// begun as early as it can have: 12 hours before its expiry.
	err = f.st.Update(f.ctx, func(tx store.Tx) error {
		var rec map[string]any
		if err := store.GetJSON(tx, []byte("iam/session/"+fresh.AccessKeyID), &rec); err != nil {
			return err
		}
		delete(rec, "issued")
		return store.PutJSON(tx, []byte("iam/session/"+fresh.AccessKeyID), rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	f.d.Changed(nil)
	stored := f.auth(fresh.AccessKeyID, fresh.SecretAccessKey, fresh.SessionToken)
	if want := fresh.Expiration.Add(-12 * time.Hour); !stored.SessionIssued.Equal(want) {
		t.Errorf("a stored session without its issue time was issued %v, want %v", stored.SessionIssued, want)
	}
	_, _, err = f.d.ListUsers(f.ctx, stored, "", "", 100)
	wantErr(t, err, fault.AccessDenied, "")
}

func TestSessionCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "r"), "s1", 900, "")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "r"), "s2", 900, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		secret, token string
		code          fault.Code
		msg           string
	}{
		{"as issued", c.SecretAccessKey, c.SessionToken, 0, ""},
		{"without its token", c.SecretAccessKey, "", fault.InvalidClientTokenID, "The security token included in the request is invalid."},
		{"with another session's token", c.SecretAccessKey, other.SessionToken, fault.InvalidClientTokenID, "The security token included in the request is invalid."},
		{"with a wrong secret", other.SecretAccessKey, c.SessionToken, fault.SignatureDoesNotMatch,
			"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.authenticate(c.AccessKeyID, tc.secret, tc.token)
			check(t, err, tc.code, tc.msg)
		})
	}
	// A session token with long-term credentials is refused.
	_, err = f.authenticate(f.rootAK.ID, f.rootAK.Secret, c.SessionToken)
	wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
}

// TestSessionExpiry moves the clock past a session's end: the session is
// refused as expired from its expiry on, by a server that reads it anew
// too, until DeleteExpiredSessions removes it a day later, and it only.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	short, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "r"), "short", 900, "")
	if err != nil {
		t.Fatal(err)
	}
	long, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "r"), "long", 3600, "")
	if err != nil {
		t.Fatal(err)
	}
	f.auth(short.AccessKeyID, short.SecretAccessKey, short.SessionToken) // cached from here on

	f.clock.Set(short.Expiration.Add(-time.Second))
	f.auth(short.AccessKeyID, short.SecretAccessKey, short.SessionToken)
	if err := f.d.DeleteExpiredSessions(f.ctx); err != nil {
		t.Fatal(err)
	}
	fresh := identity.New(f.cfg) // reads the store, with no cache
	if _, err := authenticateSession(f, fresh, short); err != nil {
		t.Fatalf("DeleteExpiredSessions removed a session a second before its end: %v", err)
	}

	f.clock.Set(short.Expiration)
	_, err = f.authenticate(short.AccessKeyID, short.SecretAccessKey, short.SessionToken)
	wantErr(t, err, fault.ExpiredToken, "The security token included in the request is expired")
	f.auth(long.AccessKeyID, long.SecretAccessKey, long.SessionToken)

	if err := f.d.DeleteExpiredSessions(f.ctx); err != nil {
		t.Fatal(err)
	}
	_, err = authenticateSession(f, identity.New(f.cfg), short)
	wantErr(t, err, fault.ExpiredToken, "The security token included in the request is expired")

	f.clock.Set(short.Expiration.Add(24*time.Hour - time.Second))
	if err := f.d.DeleteExpiredSessions(f.ctx); err != nil {
		t.Fatal(err)
	}
	_, err = authenticateSession(f, identity.New(f.cfg), short)
	wantErr(t, err, fault.ExpiredToken, "The security token included in the request is expired")

	f.clock.Set(short.Expiration.Add(24 * time.Hour))
	if err := f.d.DeleteExpiredSessions(f.ctx); err != nil {
		t.Fatal(err)
	}
	fresh = identity.New(f.cfg)
	_, err = authenticateSession(f, fresh, short)
	wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
	_, err = authenticateSession(f, fresh, long)
	wantErr(t, err, fault.ExpiredToken, "The security token included in the request is expired")

	f.clock.Set(long.Expiration.Add(24*time.Hour + time.Hour))
	if err := f.d.DeleteExpiredSessions(f.ctx); err != nil {
		t.Fatal(err)
	}
	_, err = authenticateSession(f, identity.New(f.cfg), long)
	wantErr(t, err, fault.InvalidClientTokenID, "")
	if err := f.d.DeleteExpiredSessions(f.ctx); err != nil {
		t.Fatalf("with nothing to delete: %v", err)
	}
}

// authenticateSession has d authenticate an STS request signed now with c.
func authenticateSession(f *fixture, d *identity.Directory, c *identity.Credentials) (*identity.Principal, error) {
	r, body := f.request("sts", c.AccessKeyID, c.SecretAccessKey, c.SessionToken, f.clock.Now(), "Action=GetCallerIdentity&Version=2011-06-15")
	p, _, err := d.Authenticate(f.ctx, r, body, "sts")
	return p, err
}

// TestRoleDeletionEndsSessions: a session ends with its role, and a role
// made again under the same name does not bring it back.
func TestRoleDeletionEndsSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "r"), "s1", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	f.auth(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	if err := f.d.DeleteRole(f.ctx, f.root1, "r"); err != nil {
		t.Fatal(err)
	}
	_, err = f.authenticate(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	_, err = f.authenticate(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
}

// TestCallerIdentity checks the principal Authenticate returns for each
// kind of caller: what GetCallerIdentity reports and authorization reads.
func TestCallerIdentity(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateUser(f.ctx, f.root1, "Alice", "/team/"); err != nil {
		t.Fatal(err)
	}
	if err := f.d.PutPolicy(f.ctx, f.root1, "User", "alice", "p", allowAll); err != nil {
		t.Fatal(err)
	}
	k, secret, err := f.d.CreateAccessKey(f.ctx, f.root1, "alice")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := f.d.GetUser(f.ctx, f.root1, "alice")
	r, err := f.d.CreateRole(f.ctx, f.root1, "Ops", "/svc/", trustAccount(acct), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := f.d.AssumeRole(f.ctx, f.assumer(), r.Arn, "deploy", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                  string
		id, secret, token     string
		want                  identity.Principal
		wantPolicies          int
		wantPolicyPrincipalID string
	}{
		{"root", f.rootAK.ID, f.rootAK.Secret, "", identity.Principal{Type: identity.TypeRoot, Account: acct, ARN: "arn:aws:iam::" + acct + ":root", UserID: acct, AccessKeyID: f.rootAK.ID}, 0, acct},
		{"user", k.ID, secret, "", identity.Principal{Type: identity.TypeIAMUser, Account: acct, ARN: "arn:aws:iam::" + acct + ":user/team/Alice", UserID: u.UserID, Username: "Alice", AccessKeyID: k.ID}, 1, u.UserID},
		{"assumed role", c.AccessKeyID, c.SecretAccessKey, c.SessionToken, identity.Principal{Type: identity.TypeAssumedRole, Account: acct, ARN: "arn:aws:sts::" + acct + ":assumed-role/Ops/deploy", UserID: r.RoleID + ":deploy", RoleARN: "arn:aws:iam::" + acct + ":role/svc/Ops", AccessKeyID: c.AccessKeyID,
			SessionIssued: start, SessionExpires: start.Add(time.Hour)}, 0, r.RoleID + ":deploy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := f.auth(tc.id, tc.secret, tc.token)
			got := *p
			pols := got.Policies
			got.Policies = nil
			if !reflect.DeepEqual(got, tc.want) || len(pols) != tc.wantPolicies {
				t.Fatalf("got %+v with %d policies, want %+v with %d", p, len(pols), tc.want, tc.wantPolicies)
			}
			pp := p.PolicyPrincipal()
			if pp.ARN != tc.want.ARN || pp.Account != acct || pp.UserID != tc.wantPolicyPrincipalID || pp.RoleARN != tc.want.RoleARN || pp.Username != tc.want.Username {
				t.Fatalf("as the policy engine sees it: %+v", pp)
			}
		})
	}
	if got := identity.RootARN(other); got != "arn:aws:iam::"+other+":root" {
		t.Fatalf("RootARN = %q", got)
	}
}

// A role stored before trust policies were bound is bound at start to the
// users its trust policy names that exist then: one deleted and made again
// later, or one that did not exist, is not trusted.
func TestBindStoredTrust(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	keep, keepKey, _ := f.user("keep", nil)
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["` + keep.ARN + `","arn:aws:iam::` + acct + `:user/ghost"]},"Action":"sts:AssumeRole"}]}`
	rec, _ := json.Marshal(map[string]any{"v": 1, "name": "legacy", "id": "AROAEXAMPLELEGACY1", "path": "/", "created": start,
		"trustPolicy": trust, "maxSessionDuration": 3600})
	if err := f.st.Update(f.ctx, func(tx store.Tx) error { return tx.Put([]byte("iam/role/"+acct+"/legacy"), rec) }); err != nil {
		t.Fatal(err)
	}
	if n, err := f.d.BindStoredTrust(f.ctx); err != nil || n != 1 {
		t.Fatalf("BindStoredTrust = %d, %v; want the legacy role", n, err)
	}
	if n, err := f.d.BindStoredTrust(f.ctx); err != nil || n != 0 {
		t.Fatalf("BindStoredTrust again = %d, %v; want nothing left to bind", n, err)
	}
	assume := func(p *identity.Principal) error {
		_, _, err := f.d.AssumeRole(f.ctx, p, roleARN(acct, "legacy"), "s1", 0, "")
		return err
	}
	if err := assume(keep); err != nil {
		t.Fatalf("keep, trusted when bound: %v", err)
	}
	ghost, _, _ := f.user("ghost", nil)
	wantErr(t, assume(ghost), fault.AccessDenied, "")
	if err := f.d.DeleteAccessKey(f.ctx, f.root1, "keep", keepKey.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.d.DeleteUser(f.ctx, f.root1, "keep"); err != nil {
		t.Fatal(err)
	}
	again, _, _ := f.user("keep", nil)
	wantErr(t, assume(again), fault.AccessDenied, "")
}

// TestExpiredSessionsGoPastAMadeUpRecord: a session record made up outside
// the server, which does not read in a store whose records are
// authenticated, does not keep the sessions past their expiry in the
// store.
func TestExpiredSessionsGoPastAMadeUpRecord(t *testing.T) {
	t.Parallel()
	raw, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	k := make([]byte, 32)
	rand.Read(k)
	root, err := keys.NewRootKey(k)
	if err != nil {
		t.Fatal(err)
	}
	st := authstore.Wrap(raw, authstore.NewKey(root))
	f := &fixture{t: t, ctx: context.Background(), st: st, root: root, clock: testsupport.NewClock(start)}
	f.cfg = identity.Config{Store: st, RootKey: root, Region: region, Now: f.clock.Now}
	f.d = identity.New(f.cfg)
	if f.rootAK, err = identity.BootstrapRoot(f.ctx, st, root, acct); err != nil {
		t.Fatal(err)
	}
	f.root1 = f.auth(f.rootAK.ID, f.rootAK.Secret, "")
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "r"), "made-up", 900, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Update(f.ctx, func(tx store.Tx) error { return tx.Put([]byte("iam/session/!"), []byte("{}")) }); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(c.Expiration.Add(25 * time.Hour))
	f.d.DeleteExpiredSessions(f.ctx) // its error names the made-up record
	var left []string
	err = st.View(f.ctx, func(tx store.Tx) error {
		left = nil
		return store.ScanReadable(tx, []byte("iam/session/"), nil, func(k, _ []byte) (bool, error) {
			left = append(left, string(k))
			return true, nil
		}, func(error) {})
	})
	if err != nil || len(left) != 0 {
		t.Errorf("session records that read after DeleteExpiredSessions: %q (%v), want none", left, err)
	}
}
