package e2e_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/openkms/kms/internal/audit"
)

// TestAuditRoleSessionsTraceToTheirSource: a call made with role session
// credentials is recorded with the role that issued the session
// (sessionContext), and the AssumeRole record that started the session
// names its access key id (responseElements), so that an auditor can
// follow a chain of sessions back to the long-term credentials that began
// it. No session token or secret reaches the trail.
func TestAuditRoleSessionsTraceToTheirSource(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	alice := e.newUser(t, "alice", allowDoc("*", "sts:AssumeRole"))

	roleIDs := map[string]string{}
	for _, name := range []string{"first", "second"} {
		out, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), Path: aws.String("/team/"),
			AssumeRolePolicyDocument: aws.String(trustAccount)})
		if err != nil {
			t.Fatalf("CreateRole %s: %v", name, err)
		}
		roleIDs[name] = aws.ToString(out.Role.RoleId)
	}
	if _, err := root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("first"), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(allowDoc("*", "sts:AssumeRole"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("second"), PolicyName: aws.String("kms"),
		PolicyDocument: aws.String(allowKMS)}); err != nil {
		t.Fatal(err)
	}
	roleARN := func(name string) string { return "arn:aws:iam::" + e2eAccount + ":role/team/" + name }

	s1, err := alice.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("first")), RoleSessionName: aws.String("one")})
	if err != nil {
		t.Fatalf("AssumeRole first: %v", err)
	}
	c1 := s1.Credentials
	s1STS := e.stsClient(aws.ToString(c1.AccessKeyId), aws.ToString(c1.SecretAccessKey), aws.ToString(c1.SessionToken))
	s2, err := s1STS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("second")), RoleSessionName: aws.String("two"),
		DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatalf("AssumeRole second, chained: %v", err)
	}
	c2 := s2.Credentials
	// Refused: the first role's session may not use KMS. Its record names
	// the session's role, and has no responseElements.
	if _, err := s1STS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("nope")), RoleSessionName: aws.String("x")}); err == nil {
		t.Fatal("AssumeRole of a role that does not exist succeeded")
	}
	s2KMS := e.clientWith(aws.ToString(c2.AccessKeyId), aws.ToString(c2.SecretAccessKey), aws.ToString(c2.SessionToken))
	if _, err := s2KMS.ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys as the chained session: %v", err)
	}

	recs, raws := auditRecords(t, logPath)
	for i, raw := range raws {
		for _, secret := range []string{aws.ToString(c1.SessionToken), aws.ToString(c1.SecretAccessKey), aws.ToString(c2.SessionToken), aws.ToString(c2.SecretAccessKey)} {
			if strings.Contains(string(raw), secret) {
				t.Fatalf("record %d holds a session's token or secret: %s", i, raw)
			}
		}
	}
	type elements struct {
		Credentials struct {
			AccessKeyID string `json:"accessKeyId"`
			Expiration  string `json:"expiration"`
		} `json:"credentials"`
		AssumedRoleUser struct {
			AssumedRoleID string `json:"assumedRoleId"`
			ARN           string `json:"arn"`
		} `json:"assumedRoleUser"`
	}
	// started maps a session's access key id to the record of the
	// AssumeRole call that returned it.
	started := map[string]*audit.Record{}
	var listKeys, refused *audit.Record
	for _, r := range recs {
		switch {
		case r.EventName == "AssumeRole" && r.ErrorCode == "":
			var el elements
			if err := json.Unmarshal(r.ResponseElements, &el); err != nil || el.Credentials.AccessKeyID == "" {
				t.Fatalf("AssumeRole record's responseElements %s: %v", r.ResponseElements, err)
			}
			started[el.Credentials.AccessKeyID] = r
		case r.EventName == "AssumeRole":
			refused = r
		case r.EventName == "ListKeys":
			listKeys = r
		}
	}
	if listKeys == nil || refused == nil || len(started) != 2 {
		t.Fatalf("records: ListKeys %v, refused AssumeRole %v, %d AssumeRole", listKeys != nil, refused != nil, len(started))
	}
	if string(refused.ResponseElements) != "null" {
		t.Errorf("refused AssumeRole has responseElements %s", refused.ResponseElements)
	}

	// The session's call names its role, as CloudTrail's sessionContext.
	checkSession := func(what string, u audit.UserIdentity, role, session string, c *sessionCreds, duration time.Duration) {
		t.Helper()
		if u.Type != "AssumedRole" || u.AccessKeyID != c.id || u.ARN != "arn:aws:sts::"+e2eAccount+":assumed-role/"+role+"/"+session ||
			u.PrincipalID != roleIDs[role]+":"+session {
			t.Errorf("%s: userIdentity %+v", what, u)
		}
		sc := u.SessionContext
		if sc == nil {
			t.Fatalf("%s: no sessionContext", what)
		}
		want := audit.SessionIssuer{Type: "Role", PrincipalID: roleIDs[role], ARN: roleARN(role), AccountID: e2eAccount, UserName: role}
		if sc.SessionIssuer != want {
			t.Errorf("%s: sessionIssuer %+v, want %+v", what, sc.SessionIssuer, want)
		}
		issued, err := time.Parse(audit.TimeFormat, sc.Attributes.CreationDate)
		if err != nil || !issued.Add(duration).Equal(c.expiration) || sc.Attributes.MFAAuthenticated != "false" {
			t.Errorf("%s: attributes %+v, session expires %v after %v", what, sc.Attributes, c.expiration, duration)
		}
	}
	cred := func(c *ststypes.Credentials) *sessionCreds {
		return &sessionCreds{id: aws.ToString(c.AccessKeyId), expiration: aws.ToTime(c.Expiration).UTC()}
	}
	checkSession("ListKeys", listKeys.UserIdentity, "second", "two", cred(c2), 900*time.Second)
	checkSession("refused AssumeRole", refused.UserIdentity, "first", "one", cred(c1), time.Hour)

	// Follow the chain back from the call to the user who began it.
	var path []string
	akid := listKeys.UserIdentity.AccessKeyID
	for {
		r, ok := started[akid]
		if !ok {
			break
		}
		var el elements
		json.Unmarshal(r.ResponseElements, &el)
		path = append(path, el.AssumedRoleUser.ARN)
		akid = r.UserIdentity.AccessKeyID
		if r.UserIdentity.Type == "AssumedRole" {
			checkSession("chained AssumeRole", r.UserIdentity, "first", "one", cred(c1), time.Hour)
		}
	}
	wantPath := []string{aws.ToString(s2.AssumedRoleUser.Arn), aws.ToString(s1.AssumedRoleUser.Arn)}
	if strings.Join(path, " <- ") != strings.Join(wantPath, " <- ") || akid != alice.akid {
		t.Errorf("traced %v back to access key %s, want %v back to alice's %s", path, akid, wantPath, alice.akid)
	}
	if r := started[aws.ToString(c1.AccessKeyId)]; r.UserIdentity.ARN != userARNOf("alice") || r.UserIdentity.SessionContext != nil {
		t.Errorf("the first AssumeRole's caller %+v", r.UserIdentity)
	}
}

// sessionCreds is what a record can be checked against of a session's
// credentials.
type sessionCreds struct {
	id         string
	expiration time.Time
}
