package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/openkms/kms/internal/policy"
)

// Key policies (GetKeyPolicy, PutKeyPolicy, ListKeyPolicies, the Policy of
// CreateKey) and how they, identity policies and conditions authorize
// requests (reference §4.10, §6, §8), through the SDK. IAM users, access
// keys, inline policies and roles are made through the iam and sts SDK
// clients against the same server.

// kpDefaultPolicy is reference §6.1 for account 111122223333, byte for byte.
const kpDefaultPolicy = `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`

const (
	kpRootARN     = "arn:aws:iam::" + e2eAccount + ":root"
	kpMsgLockout  = "The new key policy will not allow you to update the key policy in the future."
	kpMsgBadPrinc = "Policy contains a statement with one or more invalid principals."
	kpDenyRes     = "with an explicit deny in a resource-based policy"
	kpDenyID      = "with an explicit deny in an identity-based policy"
)

func kpNoResource(action string) string {
	return "because no resource-based policy allows the " + action + " action"
}

func kpNoIdentity(action string) string {
	return "because no identity-based policy allows the " + action + " action"
}

// ---- principals ------------------------------------------------------------

// kpPrincipal is an IAM user or role session with a KMS client of its own.
type kpPrincipal struct {
	name string
	arn  string
	kms  *kms.Client
}

// kpIAM is an IAM client of e's server signed as the account root.
func (e *kmsEnv) kpIAM() *iam.Client { return e.iamClient(e.creds.ID, e.creds.Secret, "") }

// kpSTS is an STS client of e's server signed as the account root.
func (e *kmsEnv) kpSTS() *sts.Client { return e.stsClient(e.creds.ID, e.creds.Secret, "") }

// kpUser creates an IAM user with an access key and, unless identityPolicy
// is empty, an inline policy.
func (e *kmsEnv) kpUser(t testing.TB, name, identityPolicy string) kpPrincipal {
	t.Helper()
	ctx := context.Background()
	c := e.kpIAM()
	u, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatalf("iam CreateUser %s: %v", name, err)
	}
	want := "arn:aws:iam::" + e2eAccount + ":user/" + name
	if got := aws.ToString(u.User.Arn); got != want {
		t.Fatalf("user ARN %q, want %q", got, want)
	}
	k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatalf("iam CreateAccessKey %s: %v", name, err)
	}
	if identityPolicy != "" {
		e.kpPutUserPolicy(t, name, "inline", identityPolicy)
	}
	return kpPrincipal{name: name, arn: want,
		kms: e.clientWith(aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey), "")}
}

func (e *kmsEnv) kpPutUserPolicy(t testing.TB, user, name, doc string) {
	t.Helper()
	_, err := e.kpIAM().PutUserPolicy(context.Background(), &iam.PutUserPolicyInput{
		UserName: aws.String(user), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
	if err != nil {
		t.Fatalf("iam PutUserPolicy %s/%s: %v", user, name, err)
	}
}

// kpRoleSession creates a role that the account trusts and starts a session
// of it as the root. It returns the role's ARN and the session.
func (e *kmsEnv) kpRoleSession(t testing.TB, role, session string) (string, kpPrincipal) {
	t.Helper()
	ctx := context.Background()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + kpRootARN + `"},"Action":"sts:AssumeRole"}]}`
	r, err := e.kpIAM().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatalf("iam CreateRole %s: %v", role, err)
	}
	roleARN := aws.ToString(r.Role.Arn)
	if want := "arn:aws:iam::" + e2eAccount + ":role/" + role; roleARN != want {
		t.Fatalf("role ARN %q, want %q", roleARN, want)
	}
	return roleARN, e.kpSession(t, role, session)
}

// kpSession starts a session of an existing role as the root.
func (e *kmsEnv) kpSession(t testing.TB, role, session string) kpPrincipal {
	t.Helper()
	roleARN := "arn:aws:iam::" + e2eAccount + ":role/" + role
	out, err := e.assumerSTS(t).AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String(session)})
	if err != nil {
		t.Fatalf("sts AssumeRole %s: %v", roleARN, err)
	}
	sessionARN := "arn:aws:sts::" + e2eAccount + ":assumed-role/" + role + "/" + session
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != sessionARN {
		t.Fatalf("session ARN %q, want %q", got, sessionARN)
	}
	c := out.Credentials
	return kpPrincipal{name: session, arn: sessionARN,
		kms: e.clientWith(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))}
}

// ---- policy documents ------------------------------------------------------

// kpStmt is one policy statement.
type kpStmt map[string]any

// kpDoc is a policy document of the statements.
func kpDoc(stmts ...kpStmt) string {
	b, err := json.MarshalIndent(map[string]any{"Version": "2012-10-17", "Statement": stmts}, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

// kpKeyStmt is a key policy statement: effect for the AWS principals on
// actions, Resource "*".
func kpKeyStmt(effect string, principals []string, actions ...string) kpStmt {
	var p any = principals
	if len(principals) == 1 {
		p = principals[0]
	}
	return kpStmt{"Effect": effect, "Principal": map[string]any{"AWS": p}, "Action": actions, "Resource": "*"}
}

func kpAllow(principal string, actions ...string) kpStmt {
	return kpKeyStmt("Allow", []string{principal}, actions...)
}

func kpDeny(principal string, actions ...string) kpStmt {
	return kpKeyStmt("Deny", []string{principal}, actions...)
}

// kpRootStmt is the default policy's statement that delegates to IAM.
func kpRootStmt() kpStmt {
	s := kpAllow(kpRootARN, "kms:*")
	s["Sid"] = "Enable IAM User Permissions"
	return s
}

// with returns s with a Condition block.
func (s kpStmt) with(cond map[string]any) kpStmt {
	out := kpStmt{"Condition": cond}
	for k, v := range s {
		out[k] = v
	}
	return out
}

// kpIdentity is an identity policy statement (no principal).
func kpIdentity(effect string, resources []string, actions ...string) kpStmt {
	return kpStmt{"Effect": effect, "Action": actions, "Resource": resources}
}

// ---- calls -----------------------------------------------------------------

func (e *kmsEnv) kpPutKeyPolicy(t testing.TB, c *kms.Client, keyID, doc string, bypass bool) {
	t.Helper()
	_, err := c.PutKeyPolicy(context.Background(), &kms.PutKeyPolicyInput{KeyId: aws.String(keyID), Policy: aws.String(doc),
		BypassPolicyLockoutSafetyCheck: bypass})
	if err != nil {
		t.Fatalf("PutKeyPolicy %s: %v", keyID, err)
	}
}

func (e *kmsEnv) kpGetKeyPolicy(t testing.TB, c *kms.Client, keyID string) string {
	t.Helper()
	out, err := c.GetKeyPolicy(context.Background(), &kms.GetKeyPolicyInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatalf("GetKeyPolicy %s: %v", keyID, err)
	}
	return aws.ToString(out.Policy)
}

func kpEncrypt(c *kms.Client, keyID string, ec map[string]string) ([]byte, error) {
	out, err := c.Encrypt(context.Background(), &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("secret"), EncryptionContext: ec})
	if err != nil {
		return nil, err
	}
	return out.CiphertextBlob, nil
}

func kpDecrypt(c *kms.Client, blob []byte, ec map[string]string) error {
	out, err := c.Decrypt(context.Background(), &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	if err == nil && string(out.Plaintext) != "secret" {
		return fmt.Errorf("Decrypt returned %q", out.Plaintext)
	}
	return err
}

// kpDenied checks an AccessDeniedException with AWS's message shape.
func kpDenied(t testing.TB, err error, caller, action, resource, why string) {
	t.Helper()
	expectAPIError(t, err, "AccessDeniedException", fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", caller, action, resource, why))
}

// kpDeniedAny checks an AccessDeniedException for caller, action and
// resource whatever the reason.
func kpDeniedAny(t testing.TB, err error, caller, action, resource string) {
	t.Helper()
	expectAPIErrorPrefix(t, err, "AccessDeniedException", fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s ", caller, action, resource))
}

func kpOK(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// ---- tests -----------------------------------------------------------------

func TestE2EKeyPolicyDefault(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	k := e.newKey(t)

	for _, in := range []*kms.GetKeyPolicyInput{
		{KeyId: aws.String(k)},
		{KeyId: aws.String(e.keyARN(k)), PolicyName: aws.String("default")},
	} {
		out, err := e.client.GetKeyPolicy(ctx, in)
		if err != nil {
			t.Fatalf("GetKeyPolicy: %v", err)
		}
		if got := aws.ToString(out.Policy); got != kpDefaultPolicy {
			t.Errorf("default key policy:\n%s\nwant (reference §6.1):\n%s", got, kpDefaultPolicy)
		}
		if got := aws.ToString(out.PolicyName); got != "default" {
			t.Errorf("PolicyName %q, want default", got)
		}
	}
	lp, err := e.client.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String(k)})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lp.PolicyNames, []string{"default"}) || lp.Truncated || lp.NextMarker != nil {
		t.Errorf("ListKeyPolicies = %v truncated %v marker %v, want [default] false none", lp.PolicyNames, lp.Truncated, lp.NextMarker)
	}

	// Only "default" exists.
	_, err = e.client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(k), PolicyName: aws.String("other")})
	expectAPIErrorCode(t, err, "NotFoundException")
	_, err = e.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), PolicyName: aws.String("other"), Policy: aws.String(kpDefaultPolicy)})
	expectAPIErrorCode(t, err, "NotFoundException")
	// The name must match [\w]+.
	_, err = e.client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(k), PolicyName: aws.String("de-fault")})
	expectAPIError(t, err, "ValidationException", "1 validation error detected: Value 'de-fault' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+")
	if got := e.kpGetKeyPolicy(t, e.client, k); got != kpDefaultPolicy {
		t.Errorf("refused PutKeyPolicy changed the policy to %s", got)
	}

	// PutKeyPolicy with the name "default" and CreateKey with a Policy: the
	// document is the one returned, in AWS's layout.
	doc := kpDoc(kpRootStmt(), kpDeny(kpRootARN, "kms:GenerateDataKeyWithoutPlaintext"))
	if _, err := e.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), PolicyName: aws.String("default"), Policy: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	if got := e.kpGetKeyPolicy(t, e.client, k); got != kpShown(doc) {
		t.Errorf("GetKeyPolicy after PutKeyPolicy:\n%s\nwant\n%s", got, kpShown(doc))
	}
	k2 := aws.ToString(e.createKey(t, &kms.CreateKeyInput{Policy: aws.String(doc)}).KeyId)
	if got := e.kpGetKeyPolicy(t, e.client, k2); got != kpShown(doc) {
		t.Errorf("GetKeyPolicy of a key created with a policy:\n%s\nwant\n%s", got, kpShown(doc))
	}
	// Both keys now refuse the root GenerateDataKeyWithoutPlaintext.
	for _, id := range []string{k, k2} {
		_, err := e.client.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
		kpDenied(t, err, kpRootARN, "kms:GenerateDataKeyWithoutPlaintext", e.keyARN(id), kpDenyRes)
	}
}

// kpShown is doc as GetKeyPolicy shows it: in AWS's layout.
func kpShown(doc string) string { return policy.Pretty(doc) }

// TestE2EKeyPolicyInAWSLayout: GetKeyPolicy and ReplicateKey's
// ReplicaPolicy return a key policy put in any layout the way AWS does,
// pretty-printed as Jackson does (reference §4.10): members in the order
// put, two spaces per object, arrays on one line, "/" and non-ASCII
// unescaped. What they return can be put back as it is, and comes back
// the same.
func TestE2EKeyPolicyInAWSLayout(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	const put = `{"Id":"key-layout","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow",` +
		`"Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},` +
		`{"Sid":"caf\u00e9 \/ \"tea\"\t","Effect":"Deny","Principal":{"AWS":["arn:aws:iam::111122223333:root"]},` +
		`"Action":["kms:GenerateDataKeyWithoutPlaintext","kms:Sign"],"Resource":"*","Condition":{"Null":{"kms:ViaService":true},"StringEquals":{}}}],` +
		`"Version":"2012-10-17"}`
	const shown = `{
  "Id" : "key-layout",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  }, {
    "Sid" : "café / \"tea\"\t",
    "Effect" : "Deny",
    "Principal" : {
      "AWS" : [ "arn:aws:iam::111122223333:root" ]
    },
    "Action" : [ "kms:GenerateDataKeyWithoutPlaintext", "kms:Sign" ],
    "Resource" : "*",
    "Condition" : {
      "Null" : {
        "kms:ViaService" : true
      },
      "StringEquals" : { }
    }
  } ],
  "Version" : "2012-10-17"
}`
	k := e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, k, put, false)
	if got := e.kpGetKeyPolicy(t, e.client, k); got != shown {
		t.Errorf("GetKeyPolicy after PutKeyPolicy:\n%s\nwant\n%s", got, shown)
	}
	// Put back as shown (aws kms get-key-policy ... > policy.txt, then
	// put-key-policy --policy file://policy.txt), it comes back the same.
	e.kpPutKeyPolicy(t, e.client, k, shown, false)
	if got := e.kpGetKeyPolicy(t, e.client, k); got != shown {
		t.Errorf("GetKeyPolicy after putting back what it showed:\n%s", got)
	}
	k2 := aws.ToString(e.createKey(t, &kms.CreateKeyInput{Policy: aws.String(put)}).KeyId)
	if got := e.kpGetKeyPolicy(t, e.client, k2); got != shown {
		t.Errorf("GetKeyPolicy of a key created with the policy:\n%s", got)
	}

	c := e.regions()
	mrk, err := c[e2eRegion].CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(mrk.KeyMetadata.KeyId)
	rep, err := c[e2eRegion].ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2), Policy: aws.String(put)})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(rep.ReplicaPolicy); got != shown {
		t.Errorf("ReplicaPolicy:\n%s\nwant\n%s", got, shown)
	}
	if got := e.kpGetKeyPolicy(t, c[e2eRegion2], id); got != shown {
		t.Errorf("GetKeyPolicy of the replica:\n%s", got)
	}
}

// kpConsolePolicy is the console policy of reference §6.2 for symmetric keys
// without its first statement (the account root): identity policies do not
// matter for the key.
func kpConsolePolicy(admins, users []string) string {
	adminStmt := kpKeyStmt("Allow", admins, "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
		"kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
		"kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion")
	adminStmt["Sid"] = "Allow access for Key Administrators"
	useStmt := kpKeyStmt("Allow", users, "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")
	useStmt["Sid"] = "Allow use of the key"
	grantStmt := kpKeyStmt("Allow", users, "kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant").
		with(map[string]any{"Bool": map[string]any{"kms:GrantIsForAWSResource": "true"}})
	grantStmt["Sid"] = "Allow attachment of persistent resources"
	b, err := json.MarshalIndent(map[string]any{"Version": "2012-10-17", "Id": "key-consolepolicy-3",
		"Statement": []kpStmt{adminStmt, useStmt, grantStmt}}, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestE2EKeyPolicyAdminAndUser(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	admin := e.kpUser(t, "keyAdmin", "")
	user := e.kpUser(t, "keyUser", "")
	k := e.newKey(t)
	arn := e.keyARN(k)
	doc := kpConsolePolicy([]string{admin.arn}, []string{user.arn})

	// The root is not in the policy: without the bypass the lockout safety
	// check refuses it; with it, the root is locked out like anyone else.
	_, err := e.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), Policy: aws.String(doc)})
	expectAPIError(t, err, "MalformedPolicyDocumentException", kpMsgLockout)
	e.kpPutKeyPolicy(t, e.client, k, doc, true)
	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k)})
	kpDenied(t, err, kpRootARN, "kms:DescribeKey", arn, kpNoResource("kms:DescribeKey"))
	_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k), Plaintext: []byte("x")})
	kpDenied(t, err, kpRootARN, "kms:Encrypt", arn, kpNoResource("kms:Encrypt"))

	// The key user encrypts; the administrator may not use the key.
	blob, err := kpEncrypt(user.kms, k, map[string]string{"app": "demo"})
	if err != nil {
		t.Fatalf("keyUser Encrypt: %v", err)
	}

	t.Run("admin", func(t *testing.T) {
		a := admin.kms
		kid := aws.String(k)
		kpOK(t, "DescribeKey", func() error { _, err := a.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: kid}); return err }())
		if got := e.kpGetKeyPolicy(t, a, k); got != kpShown(doc) {
			t.Errorf("keyAdmin GetKeyPolicy = %s", got)
		}
		kpOK(t, "ListKeyPolicies", func() error { _, err := a.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: kid}); return err }())
		kpOK(t, "TagResource", func() error {
			_, err := a.TagResource(ctx, &kms.TagResourceInput{KeyId: kid, Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("a")}}})
			return err
		}())
		if tags, err := a.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: kid}); err != nil {
			t.Errorf("ListResourceTags: %v", err)
		} else if len(tags.Tags) != 1 {
			t.Errorf("ListResourceTags = %+v, want one tag", tags.Tags)
		}
		kpOK(t, "UntagResource", func() error {
			_, err := a.UntagResource(ctx, &kms.UntagResourceInput{KeyId: kid, TagKeys: []string{"team"}})
			return err
		}())
		kpOK(t, "UpdateKeyDescription", func() error {
			_, err := a.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: kid, Description: aws.String("managed")})
			return err
		}())
		kpOK(t, "DisableKey", func() error { _, err := a.DisableKey(ctx, &kms.DisableKeyInput{KeyId: kid}); return err }())
		kpOK(t, "EnableKey", func() error { _, err := a.EnableKey(ctx, &kms.EnableKeyInput{KeyId: kid}); return err }())
		kpOK(t, "EnableKeyRotation", func() error { _, err := a.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: kid}); return err }())
		kpOK(t, "GetKeyRotationStatus", func() error {
			_, err := a.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: kid})
			return err
		}())
		kpOK(t, "DisableKeyRotation", func() error {
			_, err := a.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: kid})
			return err
		}())
		kpOK(t, "ListGrants", func() error { _, err := a.ListGrants(ctx, &kms.ListGrantsInput{KeyId: kid}); return err }())
		kpOK(t, "ScheduleKeyDeletion", func() error {
			_, err := a.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: kid, PendingWindowInDays: aws.Int32(7)})
			return err
		}())
		kpOK(t, "CancelKeyDeletion", func() error { _, err := a.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: kid}); return err }())
		kpOK(t, "EnableKey after cancel", func() error { _, err := a.EnableKey(ctx, &kms.EnableKeyInput{KeyId: kid}); return err }())
		// PutKeyPolicy: a policy that keeps the admin passes the lockout
		// check, one that drops it does not.
		kpOK(t, "PutKeyPolicy", func() error {
			_, err := a.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: kid, Policy: aws.String(doc)})
			return err
		}())
		_, err = a.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: kid, Policy: aws.String(kpConsolePolicy([]string{user.arn}, []string{admin.arn}))})
		expectAPIError(t, err, "MalformedPolicyDocumentException", kpMsgLockout)

		// No cryptographic use.
		_, err = a.Encrypt(ctx, &kms.EncryptInput{KeyId: kid, Plaintext: []byte("x")})
		kpDenied(t, err, admin.arn, "kms:Encrypt", arn, kpNoResource("kms:Encrypt"))
		_, err = a.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"app": "demo"}})
		kpDenied(t, err, admin.arn, "kms:Decrypt", arn, kpNoResource("kms:Decrypt"))
		_, err = a.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: kid, KeySpec: types.DataKeySpecAes256})
		kpDenied(t, err, admin.arn, "kms:GenerateDataKey", arn, kpNoResource("kms:GenerateDataKey"))
		_, err = a.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: kid, NumberOfBytes: aws.Int32(16)})
		kpDenied(t, err, admin.arn, "kms:GenerateDataKeyWithoutPlaintext", arn, kpNoResource("kms:GenerateDataKeyWithoutPlaintext"))
		_, err = a.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: map[string]string{"app": "demo"}, DestinationKeyId: kid})
		kpDenied(t, err, admin.arn, "kms:ReEncryptFrom", arn, kpNoResource("kms:ReEncryptFrom"))

		// CreateAlias needs kms:CreateAlias on the alias from an identity
		// policy as well as on the key from the key policy.
		alias := "alias/admin-made"
		_, err = a.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: kid})
		kpDenied(t, err, admin.arn, "kms:CreateAlias", e.aliasARN(alias), kpNoIdentity("kms:CreateAlias"))
		aliasPolicy := kpDoc(kpIdentity("Allow", []string{"arn:aws:kms:" + e2eRegion + ":" + e2eAccount + ":alias/*"}, "kms:CreateAlias"))
		e.kpPutUserPolicy(t, admin.name, "aliases", aliasPolicy)
		kpOK(t, "CreateAlias with an identity policy", func() error {
			_, err := a.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: kid})
			return err
		}())
		// The alias identity policy does not reach the key.
		_, err = a.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(alias), Plaintext: []byte("x")})
		kpDenied(t, err, admin.arn, "kms:Encrypt", arn, kpNoResource("kms:Encrypt"))

		// The documented caveat: an administrator may grant itself use.
		g, err := a.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: kid, GranteePrincipal: aws.String(admin.arn),
			Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
		if err != nil {
			t.Fatalf("keyAdmin CreateGrant to itself: %v", err)
		}
		kpOK(t, "Encrypt through the admin's own grant", func() error { _, err := kpEncrypt(a, k, nil); return err }())
		kpOK(t, "RevokeGrant", func() error {
			_, err := a.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: kid, GrantId: g.GrantId})
			return err
		}())
		_, err = kpEncrypt(a, k, nil)
		kpDenied(t, err, admin.arn, "kms:Encrypt", arn, kpNoResource("kms:Encrypt"))
	})

	t.Run("user", func(t *testing.T) {
		u := user.kms
		kid := aws.String(k)
		ec := map[string]string{"app": "demo"}
		kpOK(t, "Decrypt", kpDecrypt(u, blob, ec))
		re, err := u.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: ec, DestinationKeyId: kid})
		if err != nil {
			t.Fatalf("keyUser ReEncrypt: %v", err)
		}
		kpOK(t, "Decrypt re-encrypted", kpDecrypt(u, re.CiphertextBlob, nil))
		dk, err := u.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: kid, KeySpec: types.DataKeySpecAes128})
		if err != nil {
			t.Errorf("keyUser GenerateDataKey: %v", err)
		} else if len(dk.Plaintext) != 16 {
			t.Errorf("keyUser GenerateDataKey: %d bytes", len(dk.Plaintext))
		}
		kpOK(t, "GenerateDataKeyWithoutPlaintext", func() error {
			_, err := u.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: kid, NumberOfBytes: aws.Int32(8)})
			return err
		}())
		md, err := u.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
		if err != nil {
			t.Errorf("keyUser DescribeKey: %v", err)
		} else if got := aws.ToString(md.KeyMetadata.KeyId); got != k {
			t.Errorf("keyUser DescribeKey KeyId %s, want %s", got, k)
		}

		// No key management.
		_, err = u.DisableKey(ctx, &kms.DisableKeyInput{KeyId: kid})
		kpDenied(t, err, user.arn, "kms:DisableKey", arn, kpNoResource("kms:DisableKey"))
		_, err = u.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: kid, Policy: aws.String(doc)})
		kpDenied(t, err, user.arn, "kms:PutKeyPolicy", arn, kpNoResource("kms:PutKeyPolicy"))
		_, err = u.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: kid, PendingWindowInDays: aws.Int32(7)})
		kpDenied(t, err, user.arn, "kms:ScheduleKeyDeletion", arn, kpNoResource("kms:ScheduleKeyDeletion"))
		_, err = u.TagResource(ctx, &kms.TagResourceInput{KeyId: kid, Tags: []types.Tag{{TagKey: aws.String("a"), TagValue: aws.String("b")}}})
		kpDenied(t, err, user.arn, "kms:TagResource", arn, kpNoResource("kms:TagResource"))
		_, err = u.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: kid})
		kpDenied(t, err, user.arn, "kms:GetKeyPolicy", arn, kpNoResource("kms:GetKeyPolicy"))
		// The grant statement holds only for grants for AWS resources,
		// which a direct call never is.
		_, err = u.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: kid, GranteePrincipal: aws.String(user.arn), Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
		kpDenied(t, err, user.arn, "kms:CreateGrant", arn, kpNoResource("kms:CreateGrant"))
		_, err = u.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: kid})
		kpOK(t, "DescribeKey after denials", err)
	})

	// ReEncrypt needs kms:ReEncryptFrom on the source and kms:ReEncryptTo on
	// the destination.
	t.Run("reencrypt", func(t *testing.T) {
		adminStmt := kpAllow(admin.arn, "kms:*")
		toOnly := e.newKey(t)
		e.kpPutKeyPolicy(t, e.client, toOnly, kpDoc(adminStmt, kpAllow(user.arn, "kms:ReEncryptTo")), true)
		fromOnly := e.newKey(t)
		e.kpPutKeyPolicy(t, e.client, fromOnly, kpDoc(adminStmt, kpAllow(user.arn, "kms:ReEncryptFrom")), true)
		ec := map[string]string{"app": "demo"}

		moved, err := user.kms.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: ec, DestinationKeyId: aws.String(toOnly)})
		if err != nil {
			t.Fatalf("ReEncrypt to a key allowing ReEncryptTo: %v", err)
		}
		if aws.ToString(moved.KeyId) != e.keyARN(toOnly) || aws.ToString(moved.SourceKeyId) != arn {
			t.Errorf("ReEncrypt KeyId %s SourceKeyId %s", aws.ToString(moved.KeyId), aws.ToString(moved.SourceKeyId))
		}
		// Back from it: no ReEncryptFrom there.
		_, err = user.kms.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: moved.CiphertextBlob, DestinationKeyId: aws.String(k)})
		kpDenied(t, err, user.arn, "kms:ReEncryptFrom", e.keyARN(toOnly), kpNoResource("kms:ReEncryptFrom"))
		// Nor Decrypt.
		kpDenied(t, kpDecrypt(user.kms, moved.CiphertextBlob, nil), user.arn, "kms:Decrypt", e.keyARN(toOnly), kpNoResource("kms:Decrypt"))
		// To a key with ReEncryptFrom only: no ReEncryptTo there.
		_, err = user.kms.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: ec, DestinationKeyId: aws.String(fromOnly)})
		kpDenied(t, err, user.arn, "kms:ReEncryptTo", e.keyARN(fromOnly), kpNoResource("kms:ReEncryptTo"))
	})
}

func TestE2EKeyPolicyDelegatesToIdentityPolicies(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	k, other := e.newKey(t), e.newKey(t)
	arn := e.keyARN(k)
	alice := e.kpUser(t, "alice", "")

	// Default policy, no identity policy: the key policy delegates to IAM,
	// and IAM allows nothing.
	_, err := kpEncrypt(alice.kms, k, nil)
	kpDenied(t, err, alice.arn, "kms:Encrypt", arn, kpNoIdentity("kms:Encrypt"))
	_, err = alice.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k)})
	kpDenied(t, err, alice.arn, "kms:DescribeKey", arn, kpNoIdentity("kms:DescribeKey"))

	// An identity policy allowing kms:Encrypt on the key ARN.
	e.kpPutUserPolicy(t, "alice", "encrypt", kpDoc(kpIdentity("Allow", []string{arn}, "kms:Encrypt")))
	blob, err := kpEncrypt(alice.kms, k, nil)
	if err != nil {
		t.Fatalf("alice Encrypt with an identity policy: %v", err)
	}
	kpDenied(t, kpDecrypt(alice.kms, blob, nil), alice.arn, "kms:Decrypt", arn, kpNoIdentity("kms:Decrypt"))
	_, err = kpEncrypt(alice.kms, other, nil)
	kpDenied(t, err, alice.arn, "kms:Encrypt", e.keyARN(other), kpNoIdentity("kms:Encrypt"))
	// The root is the account: it needs no identity policy.
	kpOK(t, "root Decrypt", kpDecrypt(e.client, blob, nil))

	// A key policy Deny wins over the identity policy's Allow (and only
	// hits whom it names).
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpDeny(alice.arn, "kms:Encrypt")), false)
	_, err = kpEncrypt(alice.kms, k, nil)
	kpDenied(t, err, alice.arn, "kms:Encrypt", arn, kpDenyRes)
	if _, err := kpEncrypt(e.client, k, nil); err != nil {
		t.Errorf("root Encrypt under a Deny for alice: %v", err)
	}

	// An identity policy Deny wins over a key policy that names the user.
	bob := e.kpUser(t, "bob", "")
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpAllow(bob.arn, "kms:Encrypt", "kms:Decrypt")), false)
	blob, err = kpEncrypt(bob.kms, k, nil)
	if err != nil {
		t.Fatalf("bob Encrypt allowed by the key policy alone: %v", err)
	}
	e.kpPutUserPolicy(t, "bob", "deny", kpDoc(kpIdentity("Deny", []string{"*"}, "kms:Encrypt")))
	_, err = kpEncrypt(bob.kms, k, nil)
	kpDenied(t, err, bob.arn, "kms:Encrypt", arn, kpDenyID)
	kpOK(t, "bob Decrypt (not denied)", kpDecrypt(bob.kms, blob, nil))
	// A Deny in both refuses (which one the message names is not
	// asserted).
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpDeny(bob.arn, "kms:Encrypt")), false)
	_, err = kpEncrypt(bob.kms, k, nil)
	kpDeniedAny(t, err, bob.arn, "kms:Encrypt", arn)

	// Wildcard actions and NotAction in identity policies.
	carol := e.kpUser(t, "carol", kpDoc(kpStmt{"Effect": "Allow", "NotAction": []string{"kms:Decrypt"}, "Resource": "*"}))
	if _, err := kpEncrypt(carol.kms, other, nil); err != nil {
		t.Errorf("carol Encrypt under NotAction: %v", err)
	}
	blob, _ = kpEncrypt(e.client, other, nil)
	kpDenied(t, kpDecrypt(carol.kms, blob, nil), carol.arn, "kms:Decrypt", e.keyARN(other), kpNoIdentity("kms:Decrypt"))
}

func TestE2EKeyPolicyLockoutAndValidation(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	alice := e.kpUser(t, "alice", "")
	k := e.newKey(t)
	arn := e.keyARN(k)
	put := func(c *kms.Client, doc string, bypass bool) error {
		_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), Policy: aws.String(doc), BypassPolicyLockoutSafetyCheck: bypass})
		return err
	}

	// Policies that would not let the root put a policy again.
	for name, doc := range map[string]string{
		"names only alice":       kpDoc(kpAllow(alice.arn, "kms:*")),
		"root without Put":       kpDoc(kpAllow(kpRootARN, "kms:Encrypt", "kms:Decrypt", "kms:GetKeyPolicy")),
		"root denied Put":        kpDoc(kpRootStmt(), kpDeny(kpRootARN, "kms:PutKeyPolicy")),
		"root denied everything": kpDoc(kpRootStmt(), kpDeny("*", "kms:*")),
		// Conditions on the key itself match the later PutKeyPolicy too.
		"denied Put on this key's spec": kpDoc(kpRootStmt(), kpDeny("*", "kms:PutKeyPolicy").with(map[string]any{"StringEquals": map[string]any{"kms:KeySpec": "SYMMETRIC_DEFAULT"}})),
		"denied Put on its origin":      kpDoc(kpRootStmt(), kpDeny("*", "kms:PutKeyPolicy").with(map[string]any{"StringEquals": map[string]any{"kms:KeyOrigin": "AWS_KMS"}})),
	} {
		expectAPIError(t, put(e.client, doc, false), "MalformedPolicyDocumentException", kpMsgLockout)
		_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(doc)})
		expectAPIError(t, err, "MalformedPolicyDocumentException", kpMsgLockout)
		if t.Failed() {
			t.Logf("policy %q", name)
		}
	}
	if got := e.kpGetKeyPolicy(t, e.client, k); got != kpDefaultPolicy {
		t.Errorf("refused policies changed the key policy to %s", got)
	}

	// Principals must exist (even with the bypass).
	for _, p := range []string{
		"arn:aws:iam::" + e2eAccount + ":user/nobody",
		"arn:aws:iam::" + e2eAccount + ":role/norole",
	} {
		doc := kpDoc(kpRootStmt(), kpAllow(p, "kms:Encrypt"))
		expectAPIError(t, put(e.client, doc, false), "MalformedPolicyDocumentException", kpMsgBadPrinc)
		expectAPIError(t, put(e.client, doc, true), "MalformedPolicyDocumentException", kpMsgBadPrinc)
	}
	// NotPrincipal only with Deny: an Allow with it would let everyone but
	// those named in directly, alice too, since her account is not named.
	notAlice := kpDoc(kpRootStmt(), kpStmt{"Effect": "Allow", "NotPrincipal": map[string]any{"AWS": alice.arn}, "Action": "kms:*", "Resource": "*"})
	for _, bypass := range []bool{false, true} {
		expectAPIError(t, put(e.client, notAlice, bypass), "MalformedPolicyDocumentException",
			"Statement[1] has NotPrincipal with Effect Allow: NotPrincipal may be used only with Deny.")
	}
	// Syntax.
	for _, doc := range []string{`{"Version":"2012-10-17","Statement":[`, `not json`, `[]`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Perhaps","Principal":{"AWS":"` + kpRootARN + `"},"Action":"kms:*","Resource":"*"}]}`} {
		expectAPIErrorCode(t, put(e.client, doc, false), "MalformedPolicyDocumentException")
	}
	// Characters: up to U+00FF, tab, LF and CR only, as the model's
	// pattern for a policy says: others fail request validation.
	latin1 := kpDoc(kpRootStmt(), kpAllow(alice.arn, "kms:Encrypt").with(map[string]any{"StringEquals": map[string]any{"kms:EncryptionContext:place": "café"}}))
	if err := put(e.client, latin1, false); err != nil {
		t.Errorf("PutKeyPolicy with a Latin-1 character: %v", err)
	}
	for _, c := range []string{"€", "\u0001"} {
		doc := strings.Replace(latin1, "café", "caf"+c, 1)
		expectAPIError(t, put(e.client, doc, false), "ValidationException", "1 validation error detected: Value '"+doc+
			"' at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+")
	}

	// Size: 32768 bytes are accepted, one more is not.
	base := kpDoc(kpRootStmt())
	pad := func(n int) string { return base[:len(base)-1] + strings.Repeat(" ", n-len(base)) + "}" }
	if err := put(e.client, pad(32768), false); err != nil {
		t.Errorf("PutKeyPolicy of 32768 bytes: %v", err)
	}
	expectAPIErrorCode(t, put(e.client, pad(32769), false), "LimitExceededException")

	// The bypass stores a policy that locks the root out.
	locked := kpDoc(kpAllow(alice.arn, "kms:*"))
	if err := put(e.client, locked, true); err != nil {
		t.Fatalf("PutKeyPolicy with BypassPolicyLockoutSafetyCheck: %v", err)
	}
	_, err := e.client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(k)})
	kpDenied(t, err, kpRootARN, "kms:GetKeyPolicy", arn, kpNoResource("kms:GetKeyPolicy"))
	expectAPIErrorCode(t, put(e.client, kpDefaultPolicy, false), "AccessDeniedException")
	// alice, named in it, manages the key now; her own lockout check
	// applies to her.
	if got := e.kpGetKeyPolicy(t, alice.kms, k); got != kpShown(locked) {
		t.Errorf("alice GetKeyPolicy = %s", got)
	}
	expectAPIError(t, put(alice.kms, kpDefaultPolicy, false), "MalformedPolicyDocumentException", kpMsgLockout)
	if err := put(alice.kms, kpDoc(kpRootStmt(), kpAllow(alice.arn, "kms:*")), false); err != nil {
		t.Fatalf("alice restores the root statement: %v", err)
	}
	if _, err := kpEncrypt(e.client, k, nil); err != nil {
		t.Errorf("root Encrypt after alice restored the root statement: %v", err)
	}

	// CreateKey with a Policy applies the same checks, and creates nothing
	// when they fail.
	before := len(e.listAllKeys(t))
	create := func(doc string, bypass bool) error {
		_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(doc), BypassPolicyLockoutSafetyCheck: bypass})
		return err
	}
	expectAPIError(t, create(kpDoc(kpAllow(alice.arn, "kms:*")), false), "MalformedPolicyDocumentException", kpMsgLockout)
	expectAPIError(t, create(kpDoc(kpRootStmt(), kpAllow("arn:aws:iam::"+e2eAccount+":user/nobody", "kms:*")), false), "MalformedPolicyDocumentException", kpMsgBadPrinc)
	expectAPIErrorCode(t, create(`{"Statement":`, false), "MalformedPolicyDocumentException")
	expectAPIErrorCode(t, create(pad(32769), false), "LimitExceededException")
	if n := len(e.listAllKeys(t)); n != before {
		t.Errorf("%d keys after refused CreateKey calls, want %d", n, before)
	}
	out, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(locked), BypassPolicyLockoutSafetyCheck: true})
	if err != nil {
		t.Fatalf("CreateKey with a locking policy and the bypass: %v", err)
	}
	_, err = e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: out.KeyMetadata.KeyId})
	kpDenied(t, err, kpRootARN, "kms:DescribeKey", aws.ToString(out.KeyMetadata.Arn), kpNoResource("kms:DescribeKey"))
	if _, err := kpEncrypt(alice.kms, aws.ToString(out.KeyMetadata.Arn), nil); err != nil {
		t.Errorf("alice Encrypt with the key created for her: %v", err)
	}
	// A user creating a key must keep PutKeyPolicy rights too.
	e.kpPutUserPolicy(t, "alice", "create", kpDoc(kpIdentity("Allow", []string{"*"}, "kms:CreateKey")))
	_, err = alice.kms.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(kpDoc(kpRootStmt()))})
	expectAPIError(t, err, "MalformedPolicyDocumentException", kpMsgLockout)
	if _, err := alice.kms.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(kpDoc(kpRootStmt(), kpAllow(alice.arn, "kms:PutKeyPolicy")))}); err != nil {
		t.Errorf("alice CreateKey with a policy that keeps her PutKeyPolicy: %v", err)
	}
}

func TestE2EKeyPolicyConditions(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	carol := e.kpUser(t, "carol", "")
	dave := e.kpUser(t, "dave", "")
	// keyWith creates a key whose policy keeps the root statement and adds
	// stmts.
	keyWith := func(t *testing.T, stmts ...kpStmt) (string, string) {
		t.Helper()
		k := e.newKey(t)
		e.kpPutKeyPolicy(t, e.client, k, kpDoc(append([]kpStmt{kpRootStmt()}, stmts...)...), false)
		return k, e.keyARN(k)
	}

	t.Run("EncryptionContext", func(t *testing.T) {
		t.Parallel()
		k, arn := keyWith(t, kpAllow(carol.arn, "kms:Encrypt", "kms:Decrypt").
			with(map[string]any{"StringEquals": map[string]any{"kms:EncryptionContext:purpose": "backup"}}))
		blob, err := kpEncrypt(carol.kms, k, map[string]string{"purpose": "backup"})
		if err != nil {
			t.Fatalf("Encrypt with the right context: %v", err)
		}
		kpOK(t, "Decrypt with the right context", kpDecrypt(carol.kms, blob, map[string]string{"purpose": "backup"}))
		// The context key in the condition key name ignores case.
		_, err = kpEncrypt(carol.kms, k, map[string]string{"Purpose": "backup", "other": "x"})
		kpOK(t, "Encrypt with Purpose=backup and another pair", err)
		for _, ec := range []map[string]string{nil, {"purpose": "other"}, {"purpose": "Backup"}, {"purposes": "backup"}} {
			_, err := kpEncrypt(carol.kms, k, ec)
			kpDeniedAny(t, err, carol.arn, "kms:Encrypt", arn)
		}
	})

	t.Run("EncryptionContextKeys", func(t *testing.T) {
		t.Parallel()
		k, arn := keyWith(t,
			kpAllow(carol.arn, "kms:Encrypt").with(map[string]any{"ForAllValues:StringEquals": map[string]any{"kms:EncryptionContextKeys": []string{"purpose", "team"}}}),
			kpAllow(carol.arn, "kms:GenerateDataKey").with(map[string]any{"ForAnyValue:StringEquals": map[string]any{"kms:EncryptionContextKeys": "purpose"}}))
		for _, ec := range []map[string]string{nil, {"purpose": "a"}, {"team": "b"}, {"purpose": "a", "team": "b"}} {
			_, err := kpEncrypt(carol.kms, k, ec)
			kpOK(t, fmt.Sprintf("ForAllValues Encrypt with %v", ec), err)
		}
		for _, ec := range []map[string]string{{"purpose": "a", "other": "c"}, {"other": "c"}} {
			_, err := kpEncrypt(carol.kms, k, ec)
			kpDeniedAny(t, err, carol.arn, "kms:Encrypt", arn)
		}
		gdk := func(ec map[string]string) error {
			_, err := carol.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k), NumberOfBytes: aws.Int32(16), EncryptionContext: ec})
			return err
		}
		kpOK(t, "ForAnyValue GenerateDataKey with purpose", gdk(map[string]string{"purpose": "a", "other": "c"}))
		kpDeniedAny(t, gdk(nil), carol.arn, "kms:GenerateDataKey", arn)
		kpDeniedAny(t, gdk(map[string]string{"other": "c"}), carol.arn, "kms:GenerateDataKey", arn)
	})

	t.Run("CallerAccount", func(t *testing.T) {
		t.Parallel()
		ours, _ := keyWith(t, kpAllow("*", "kms:Encrypt").with(map[string]any{"StringEquals": map[string]any{"kms:CallerAccount": e2eAccount}}))
		theirs, theirsARN := keyWith(t, kpAllow("*", "kms:Encrypt").with(map[string]any{"StringEquals": map[string]any{"kms:CallerAccount": "444455556666"}}))
		for _, p := range []kpPrincipal{carol, dave} {
			_, err := kpEncrypt(p.kms, ours, nil)
			kpOK(t, p.name+" Encrypt, kms:CallerAccount = ours", err)
			_, err = kpEncrypt(p.kms, theirs, nil)
			kpDenied(t, err, p.arn, "kms:Encrypt", theirsARN, kpNoIdentity("kms:Encrypt"))
		}
	})

	t.Run("SourceIp", func(t *testing.T) {
		t.Parallel()
		local, _ := keyWith(t, kpAllow(carol.arn, "kms:Encrypt").with(map[string]any{"IpAddress": map[string]any{"aws:SourceIp": "127.0.0.1/32"}}))
		private, privateARN := keyWith(t, kpAllow(carol.arn, "kms:Encrypt").with(map[string]any{"IpAddress": map[string]any{"aws:SourceIp": "10.0.0.0/8"}}))
		notPrivate, _ := keyWith(t, kpAllow(carol.arn, "kms:Encrypt").with(map[string]any{"NotIpAddress": map[string]any{"aws:SourceIp": "10.0.0.0/8"}}))
		_, err := kpEncrypt(carol.kms, local, nil)
		kpOK(t, "Encrypt from 127.0.0.1 with 127.0.0.1/32", err)
		_, err = kpEncrypt(carol.kms, private, nil)
		kpDeniedAny(t, err, carol.arn, "kms:Encrypt", privateARN)
		_, err = kpEncrypt(carol.kms, notPrivate, nil)
		kpOK(t, "Encrypt from 127.0.0.1 with NotIpAddress 10.0.0.0/8", err)
	})

	t.Run("RequestAlias", func(t *testing.T) {
		t.Parallel()
		k, arn := keyWith(t, kpAllow(carol.arn, "kms:Encrypt", "kms:DescribeKey").with(map[string]any{"StringEquals": map[string]any{"kms:RequestAlias": "alias/carol-app"}}))
		e.createAlias(t, "alias/carol-app", k)
		e.createAlias(t, "alias/carol-other", k)
		_, err := kpEncrypt(carol.kms, "alias/carol-app", nil)
		kpOK(t, "Encrypt via the alias", err)
		_, err = carol.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/carol-app")})
		kpOK(t, "DescribeKey via the alias", err)
		for _, id := range []string{k, arn, "alias/carol-other"} {
			_, err := kpEncrypt(carol.kms, id, nil)
			kpDeniedAny(t, err, carol.arn, "kms:Encrypt", arn)
		}
	})

	t.Run("ViaService", func(t *testing.T) {
		t.Parallel()
		via, viaARN := keyWith(t, kpAllow(carol.arn, "kms:Encrypt").with(map[string]any{"StringEquals": map[string]any{"kms:ViaService": "ec2." + e2eRegion + ".amazonaws.com"}}))
		direct, _ := keyWith(t, kpAllow(carol.arn, "kms:Encrypt").with(map[string]any{"Null": map[string]any{"kms:ViaService": "true"}}))
		// A direct call has no kms:ViaService.
		_, err := kpEncrypt(carol.kms, via, nil)
		kpDeniedAny(t, err, carol.arn, "kms:Encrypt", viaARN)
		_, err = kpEncrypt(carol.kms, direct, nil)
		kpOK(t, "Encrypt with Null kms:ViaService", err)
	})

	t.Run("PrincipalArn", func(t *testing.T) {
		t.Parallel()
		k, arn := keyWith(t, kpAllow("*", "kms:Encrypt").with(map[string]any{"ArnLike": map[string]any{"aws:PrincipalArn": "arn:aws:iam::" + e2eAccount + ":user/car*"}}))
		_, err := kpEncrypt(carol.kms, k, nil)
		kpOK(t, "carol Encrypt with aws:PrincipalArn user/car*", err)
		_, err = kpEncrypt(dave.kms, k, nil)
		kpDeniedAny(t, err, dave.arn, "kms:Encrypt", arn)
	})

	t.Run("EncryptionContextInDeny", func(t *testing.T) {
		t.Parallel()
		// A Deny with a condition: encrypting for "prod" is refused even
		// to the root.
		k, arn := keyWith(t, kpDeny("*", "kms:Encrypt").with(map[string]any{"StringEquals": map[string]any{"kms:EncryptionContext:stage": "prod"}}))
		_, err := kpEncrypt(e.client, k, map[string]string{"stage": "prod"})
		kpDenied(t, err, kpRootARN, "kms:Encrypt", arn, kpDenyRes)
		_, err = kpEncrypt(e.client, k, map[string]string{"stage": "dev"})
		kpOK(t, "root Encrypt for dev", err)
	})
}

func TestE2EKeyPolicyAssumedRole(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	roleARN, s := e.kpRoleSession(t, "app-role", "worker-1")
	k := e.newKey(t)
	arn := e.keyARN(k)

	// The session is the STS ARN in messages.
	_, err := kpEncrypt(s.kms, k, nil)
	kpDenied(t, err, s.arn, "kms:Encrypt", arn, kpNoIdentity("kms:Encrypt"))

	// A key policy naming the role allows its sessions.
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpAllow(roleARN, "kms:Encrypt", "kms:Decrypt")), false)
	blob, err := kpEncrypt(s.kms, k, nil)
	if err != nil {
		t.Fatalf("session Encrypt with the role in the key policy: %v", err)
	}
	kpOK(t, "session Decrypt", kpDecrypt(s.kms, blob, nil))
	_, err = s.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k), NumberOfBytes: aws.Int32(16)})
	kpDenied(t, err, s.arn, "kms:GenerateDataKey", arn, kpNoIdentity("kms:GenerateDataKey"))

	// aws:PrincipalArn of a session is the role's ARN.
	k2 := e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, k2, kpDoc(kpRootStmt(), kpAllow("*", "kms:Encrypt").
		with(map[string]any{"ArnEquals": map[string]any{"aws:PrincipalArn": roleARN}})), false)
	_, err = kpEncrypt(s.kms, k2, nil)
	kpOK(t, "session Encrypt with aws:PrincipalArn = role", err)

	// The role's identity policy counts when the key policy delegates to
	// the account.
	if _, err := e.kpIAM().PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("app-role"), PolicyName: aws.String("gdk"),
		PolicyDocument: aws.String(kpDoc(kpIdentity("Allow", []string{arn}, "kms:GenerateDataKey")))}); err != nil {
		t.Fatal(err)
	}
	_, err = s.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k), NumberOfBytes: aws.Int32(16)})
	kpOK(t, "session GenerateDataKey with a role policy", err)

	// A key policy naming another role does not.
	_, s2 := e.kpRoleSession(t, "other-role", "worker-2")
	_, err = kpEncrypt(s2.kms, k, nil)
	kpDenied(t, err, s2.arn, "kms:Encrypt", arn, kpNoIdentity("kms:Encrypt"))
}

func TestE2EKeyPolicyCrossAccount(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	const otherAccount = "444455556666"
	otherRoot := "arn:aws:iam::" + otherAccount + ":root"
	other := e.clientAs(t, otherAccount)
	k := e.newKey(t)
	arn := e.keyARN(k)

	// The default policy trusts only 111122223333.
	_, err := kpEncrypt(other, arn, nil)
	kpDenied(t, err, otherRoot, "kms:Encrypt", arn, kpNoResource("kms:Encrypt"))
	// A bare key id names a key of the caller's own account.
	_, err = kpEncrypt(other, k, nil)
	expectAPIError(t, err, "NotFoundException", "Key 'arn:aws:kms:"+e2eRegion+":"+otherAccount+":key/"+k+"' does not exist")

	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpAllow(otherRoot, "kms:Encrypt")), false)
	blob, err := kpEncrypt(other, arn, nil)
	if err != nil {
		t.Errorf("Encrypt by %s with the key ARN after PutKeyPolicy allowed it: %v", otherRoot, err)
	} else {
		// The owner decrypts; the other account may not, and is not told
		// the key's ARN (and so its account) when the blob alone names it.
		kpOK(t, "owner Decrypt", kpDecrypt(e.client, blob, nil))
		expectAPIError(t, kpDecrypt(other, blob, nil), "AccessDeniedException", ciphertextKeyMsg)
	}
	_, err = kpEncrypt(other, k, nil)
	expectAPIErrorCode(t, err, "NotFoundException")
	// Operations the policy does not allow stay refused.
	_, err = other.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
	kpDenied(t, err, otherRoot, "kms:DescribeKey", arn, kpNoResource("kms:DescribeKey"))
}

func TestE2EKeyPolicyTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	erin := e.kpUser(t, "erin", "")
	k := e.newKey(t)
	arn := e.keyARN(k)
	allow := kpDoc(kpRootStmt(), kpAllow(erin.arn, "kms:Encrypt"))
	deny := kpDoc(kpRootStmt(), kpAllow(erin.arn, "kms:Encrypt"), kpDeny(erin.arn, "kms:Encrypt"))

	for round := 0; round < 3; round++ {
		// Each check right after the change; the key is cached by then.
		_, err := kpEncrypt(erin.kms, k, nil)
		kpDenied(t, err, erin.arn, "kms:Encrypt", arn, kpNoIdentity("kms:Encrypt"))

		e.kpPutKeyPolicy(t, e.client, k, allow, false)
		if _, err := kpEncrypt(erin.kms, k, nil); err != nil {
			t.Errorf("round %d: Encrypt right after the policy allowed it: %v", round, err)
		}
		if _, err := kpEncrypt(erin.kms, arn, nil); err != nil {
			t.Errorf("round %d: second Encrypt: %v", round, err)
		}

		e.kpPutKeyPolicy(t, e.client, k, deny, false)
		_, err = kpEncrypt(erin.kms, k, nil)
		kpDenied(t, err, erin.arn, "kms:Encrypt", arn, kpDenyRes)
		if got := e.kpGetKeyPolicy(t, e.client, k); got != kpShown(deny) {
			t.Errorf("round %d: GetKeyPolicy is not the policy just put", round)
		}

		e.kpPutKeyPolicy(t, e.client, k, kpDefaultPolicy, false)
	}

	// And after a restart, from the store.
	e.kpPutKeyPolicy(t, e.client, k, allow, false)
	r := e.reopen(t)
	if got := r.kpGetKeyPolicy(t, r.client, k); got != kpShown(allow) {
		t.Errorf("policy after restart = %s", got)
	}
}
