package e2e_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// On AWS a user's or role's ARN holds its path
// (arn:aws:iam::ACCT:role/team/app for a role made with --path /team/),
// and the ARN without it, or with another path, names no one; a role
// session's ARN has no path (arn:aws:sts::ACCT:assumed-role/app/SESSION).
// These tests name users and roles with paths wherever a client gives a
// principal's ARN: key policies, trust policies, grants and the condition
// keys that carry one.

// ppUser makes the user name at path with an access key and, unless doc
// is empty, an inline policy; it returns the user's ARN as IAM gives it,
// with its KMS and STS clients.
func (e *kmsEnv) ppUser(t testing.TB, name, path, doc string) (string, kpPrincipal, *sts.Client) {
	t.Helper()
	ctx := context.Background()
	u, err := e.rootIAM().CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name), Path: aws.String(path)})
	if err != nil {
		t.Fatalf("CreateUser %s%s: %v", path, name, err)
	}
	arn := aws.ToString(u.User.Arn)
	if want := userARNOf(path[1:] + name); arn != want {
		t.Fatalf("user ARN %q, want %q", arn, want)
	}
	if doc != "" {
		e.putUserPolicy(t, name, "p0", doc)
	}
	k, err := e.rootIAM().CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateAccessKey %s: %v", name, err)
	}
	akid, secret := aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey)
	return arn, kpPrincipal{name: name, arn: arn, kms: e.clientWith(akid, secret, "")}, e.stsClient(akid, secret, "")
}

// ppRole makes the role name at path with the trust policy and returns
// its ARN as IAM gives it.
func (e *kmsEnv) ppRole(t testing.TB, name, path, trust string) string {
	t.Helper()
	r, err := e.rootIAM().CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String(name), Path: aws.String(path),
		AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatalf("CreateRole %s%s: %v", path, name, err)
	}
	arn := aws.ToString(r.Role.Arn)
	if want := roleARNOf(path[1:] + name); arn != want {
		t.Fatalf("role ARN %q, want %q", arn, want)
	}
	return arn
}

// ppSession starts a session of the role roleARN as c, and checks that
// its ARN names the role without its path, as AWS's does.
func (e *kmsEnv) ppSession(t testing.TB, c *sts.Client, roleARN, name, session string) (kpPrincipal, *sts.Client) {
	t.Helper()
	out, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String(session)})
	if err != nil {
		t.Fatalf("AssumeRole %s: %v", roleARN, err)
	}
	arn := "arn:aws:sts::" + e2eAccount + ":assumed-role/" + name + "/" + session
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != arn {
		t.Fatalf("session ARN %q, want %q", got, arn)
	}
	cr := out.Credentials
	akid, secret, token := aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken)
	return kpPrincipal{name: session, arn: arn, kms: e.clientWith(akid, secret, token)}, e.stsClient(akid, secret, token)
}

// A key policy names a user or role by its ARN with its path: without it,
// or under another path, the ARN names no one and the policy is refused
// (MalformedPolicyDocumentException, as for a principal that does not
// exist); with it, the user and the role's sessions are named, in
// Principal and in aws:PrincipalArn alike. A session's own ARN has no
// path.
func TestE2EKeyPolicyPrincipalPaths(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	bobARN, bob, _ := e.ppUser(t, "bob", "/eng/", "")
	appARN := e.ppRole(t, "app", "/team/", trustAccount)
	s, _ := e.ppSession(t, e.assumerSTS(t), appARN, "app", "s1")
	k := e.newKey(t)
	arn := e.keyARN(k)

	for _, p := range []string{userARNOf("bob"), userARNOf("team/bob"), userARNOf("eng/sub/bob"), userARNOf("ENG/bob"),
		roleARNOf("app"), roleARNOf("eng/app"), roleARNOf("team/sub/app"), roleARNOf("TEAM/app")} {
		doc := kpDoc(kpRootStmt(), kpAllow(p, "kms:Encrypt"))
		_, err := e.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), Policy: aws.String(doc)})
		expectAPIError(t, err, "MalformedPolicyDocumentException", kpMsgBadPrinc)
		_, err = e.client.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(doc)})
		expectAPIError(t, err, "MalformedPolicyDocumentException", kpMsgBadPrinc)
	}
	if got := e.kpGetKeyPolicy(t, e.client, k); got != kpDefaultPolicy {
		t.Errorf("refused policies changed the key policy to %s", got)
	}

	// By their ARNs with their paths: bob, and the role's sessions.
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpAllow(bobARN, "kms:Encrypt"), kpAllow(appARN, "kms:Encrypt")), false)
	_, err := kpEncrypt(bob.kms, k, nil)
	kpOK(t, "bob Encrypt, named with his path", err)
	_, err = kpEncrypt(s.kms, k, nil)
	kpOK(t, "session Encrypt, its role named with its path", err)
	// A deny naming them so refuses them.
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpAllow(bobARN, "kms:Encrypt"), kpAllow(appARN, "kms:Encrypt"),
		kpDeny(bobARN, "kms:Encrypt"), kpDeny(appARN, "kms:Encrypt")), false)
	_, err = kpEncrypt(bob.kms, k, nil)
	kpDenied(t, err, bobARN, "kms:Encrypt", arn, kpDenyRes)
	_, err = kpEncrypt(s.kms, k, nil)
	kpDenied(t, err, s.arn, "kms:Encrypt", arn, kpDenyRes)

	// aws:PrincipalArn is the user's ARN, and the session's role's ARN,
	// with the path.
	withPath := e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, withPath, kpDoc(kpRootStmt(), kpAllow("*", "kms:Encrypt").
		with(map[string]any{"ArnEquals": map[string]any{"aws:PrincipalArn": []string{bobARN, appARN}}})), false)
	without := e.newKey(t)
	withoutARN := e.keyARN(without)
	e.kpPutKeyPolicy(t, e.client, without, kpDoc(kpRootStmt(), kpAllow("*", "kms:Encrypt").
		with(map[string]any{"ArnEquals": map[string]any{"aws:PrincipalArn": []string{userARNOf("bob"), roleARNOf("app")}}})), false)
	for _, p := range []kpPrincipal{bob, s} {
		_, err = kpEncrypt(p.kms, withPath, nil)
		kpOK(t, p.arn+" Encrypt with aws:PrincipalArn with its path", err)
		_, err = kpEncrypt(p.kms, without, nil)
		kpDeniedAny(t, err, p.arn, "kms:Encrypt", withoutARN)
	}

	// A role session is named by its own ARN, which has no path.
	session := e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, session, kpDoc(kpRootStmt(), kpAllow(s.arn, "kms:Encrypt")), false)
	_, err = kpEncrypt(s.kms, session, nil)
	kpOK(t, "session Encrypt, named by its session ARN", err)
	pathed := e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, pathed, kpDoc(kpRootStmt(), kpAllow("arn:aws:sts::"+e2eAccount+":assumed-role/team/app/s1", "kms:Encrypt")), false)
	_, err = kpEncrypt(s.kms, pathed, nil)
	kpDeniedAny(t, err, s.arn, "kms:Encrypt", e.keyARN(pathed))
}

// A trust policy names a user or role by its ARN with its path: without
// it, or under another, IAM refuses it as a principal that does not
// exist; with it, the user, and a session of the role (role chaining),
// may assume the role.
func TestE2ETrustPolicyPrincipalPaths(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	trustFor := func(arn string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + arn + `"},"Action":"sts:AssumeRole"}]}`
	}
	bobARN, _, bobSTS := e.ppUser(t, "bob", "/eng/", "")
	for _, p := range []string{userARNOf("bob"), userARNOf("other/bob"), userARNOf("eng/sub/bob")} {
		_, err := e.rootIAM().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ops"), Path: aws.String("/team/"), AssumeRolePolicyDocument: aws.String(trustFor(p))})
		expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", `Invalid principal in policy: "AWS":"`+p+`"`)
	}
	opsARN := e.ppRole(t, "ops", "/team/", trustFor(bobARN))
	_, opsSTS := e.ppSession(t, bobSTS, opsARN, "ops", "s1")

	for _, p := range []string{roleARNOf("ops"), roleARNOf("eng/ops")} {
		_, err := e.rootIAM().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("next"), AssumeRolePolicyDocument: aws.String(trustFor(p))})
		expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", `Invalid principal in policy: "AWS":"`+p+`"`)
	}
	nextARN := e.ppRole(t, "next", "/svc/", trustFor(opsARN))
	e.ppSession(t, opsSTS, nextARN, "next", "s2")
	// The user is not the role that the trust policy names.
	_, err := bobSTS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(nextARN), RoleSessionName: aws.String("s3")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "User: "+bobARN+" is not authorized to perform: sts:AssumeRole on resource: "+nextARN)
}

// A grantee or retiring principal is a user or role named by its ARN with
// its path: without it, or under another, CreateGrant refuses it as no
// principal (InvalidArnException); with it, the user and the role's
// sessions use, list and retire the grant, and nothing names them
// otherwise. A role made again under another path is not the grantee.
func TestE2EGrantPrincipalPaths(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	bobARN, bob, _ := e.ppUser(t, "bob", "/eng/", "")
	appARN := e.ppRole(t, "app", "/team/", trustAccount)
	s, _ := e.ppSession(t, e.assumerSTS(t), appARN, "app", "s1")
	k := e.newKey(t)
	arn := e.keyARN(k)
	encrypt := grOps(types.GrantOperationEncrypt)

	for _, p := range []string{userARNOf("bob"), userARNOf("team/bob"), roleARNOf("app"), roleARNOf("eng/app"), roleARNOf("team/sub/app")} {
		_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(p), Operations: encrypt})
		expectAPIError(t, err, "InvalidArnException", "ARN does not refer to a valid principal: "+p)
		_, err = e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(bobARN),
			RetiringPrincipal: aws.String(p), Operations: encrypt})
		expectAPIError(t, err, "InvalidArnException", "ARN does not refer to a valid principal: "+p)
	}
	if n := len(grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)})); n != 0 {
		t.Fatalf("%d grants after refused CreateGrant calls", n)
	}

	// kms:GranteePrincipal and kms:RetiringPrincipal are the ARNs as given.
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpAllow(bobARN, "kms:CreateGrant").with(map[string]any{
		"StringEquals": map[string]any{"kms:GranteePrincipal": appARN, "kms:RetiringPrincipal": bobARN}})), false)
	_, err := bob.kms.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(bobARN),
		RetiringPrincipal: aws.String(bobARN), Operations: encrypt})
	kpDeniedAny(t, err, bobARN, "kms:CreateGrant", arn)
	toApp, _ := grCreate(t, bob.kms, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(appARN),
		RetiringPrincipal: aws.String(bobARN), Operations: encrypt})
	toBob, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(bobARN),
		RetiringPrincipal: aws.String(appARN), Operations: encrypt})

	_, err = kpEncrypt(s.kms, k, nil)
	kpOK(t, "session Encrypt with a grant to its role", err)
	_, err = kpEncrypt(bob.kms, k, nil)
	kpOK(t, "bob Encrypt with a grant to him", err)

	for _, tc := range []struct {
		principal string
		grantee   []string // ListGrants by GranteePrincipal
		retiring  []string // ListRetirableGrants
	}{
		{appARN, []string{toApp}, []string{toBob}},
		{bobARN, []string{toBob}, []string{toApp}},
		{roleARNOf("app"), nil, nil},
		{userARNOf("bob"), nil, nil},
	} {
		if got := grIDs(grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k), GranteePrincipal: aws.String(tc.principal)})); !slices.Equal(got, grSorted(tc.grantee...)) {
			t.Errorf("ListGrants of grantee %s: %v, want %v", tc.principal, got, tc.grantee)
		}
		if got := grIDs(grRetirable(t, e.client, tc.principal)); !slices.Equal(got, grSorted(tc.retiring...)) {
			t.Errorf("ListRetirableGrants of %s: %v, want %v", tc.principal, got, tc.retiring)
		}
	}

	// Each retires the grant it is the retiring principal of.
	if _, err := s.kms.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: aws.String(toBob)}); err != nil {
		t.Errorf("session RetireGrant of a grant its role retires: %v", err)
	}
	if _, err := bob.kms.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(arn), GrantId: aws.String(toApp)}); err != nil {
		t.Errorf("bob RetireGrant of a grant he retires: %v", err)
	}

	// A grant to role/team/app is not one to the role app made again at
	// the root path, nor the other way.
	svcARN := e.ppRole(t, "svc", "/", trustAccount)
	grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(appARN), Operations: encrypt})
	grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(svcARN), Operations: encrypt})
	for _, name := range []string{"app", "svc"} {
		if _, err := e.rootIAM().DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	again := map[string]string{"app": e.ppRole(t, "app", "/", trustAccount), "svc": e.ppRole(t, "svc", "/team/", trustAccount)}
	for name, roleARN := range again {
		p, _ := e.ppSession(t, e.assumerSTS(t), roleARN, name, "s2")
		_, err := kpEncrypt(p.kms, k, nil)
		kpDeniedAny(t, err, p.arn, "kms:Encrypt", arn)
	}
}

// A user's or role's ARN has no region, and this server's are all in the
// aws partition: an ARN that differs from the user's in either names no
// one, as one under another path does. Such an ARN is refused where a
// principal must exist, rather than stored bound to the user whose name
// it ends with and then matching no request: a Deny naming it would deny
// nothing.
func TestE2EPrincipalARNWithRegionOrPartition(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	bobARN, _, _ := e.ppUser(t, "bob", "/eng/", "")
	appARN := e.ppRole(t, "app", "/team/", trustAccount)
	k := e.newKey(t)
	for _, p := range []string{
		"arn:aws:iam:" + e2eRegion + ":" + e2eAccount + ":user/eng/bob",
		"arn:aws:iam:" + e2eRegion + ":" + e2eAccount + ":role/team/app",
		"arn:aws-cn:iam::" + e2eAccount + ":user/eng/bob",
		"arn:aws-us-gov:iam::" + e2eAccount + ":role/team/app",
		// IAM and STS ARNs have no region, the account's and a session's
		// no more than a user's.
		"arn:aws:iam:" + e2eRegion + ":" + e2eAccount + ":root",
		"arn:aws:sts:" + e2eRegion + ":" + e2eAccount + ":assumed-role/app/s1",
		// Nor are the account and its sessions principals of another
		// partition.
		"arn:aws-cn:iam::" + e2eAccount + ":root",
		"arn:aws-us-gov:sts::" + e2eAccount + ":assumed-role/app/s1",
	} {
		doc := kpDoc(kpRootStmt(), kpDeny(p, "kms:Encrypt"))
		_, err := e.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), Policy: aws.String(doc)})
		expectAPIError(t, err, "MalformedPolicyDocumentException", kpMsgBadPrinc)
		_, err = e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(p), Operations: grOps(types.GrantOperationEncrypt)})
		expectAPIError(t, err, "InvalidArnException", "ARN does not refer to a valid principal: "+p)
		trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + e2eAccount + `:root"},"Action":"sts:AssumeRole"},` +
			`{"Effect":"Deny","Principal":{"AWS":"` + p + `"},"Action":"sts:AssumeRole"}]}`
		_, err = e.rootIAM().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ops"), AssumeRolePolicyDocument: aws.String(trust)})
		expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", `Invalid principal in policy: "AWS":"`+p+`"`)
	}
	if got := e.kpGetKeyPolicy(t, e.client, k); got != kpDefaultPolicy {
		t.Errorf("refused policies changed the key policy to %s", got)
	}
	if n := len(grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)})); n != 0 {
		t.Errorf("%d grants after refused CreateGrant calls", n)
	}
	// The ARNs as IAM gives them are principals.
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpDeny(bobARN, "kms:Encrypt"), kpDeny(appARN, "kms:Encrypt")), false)
}
