package e2e_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Where the policy language's meaning, as AWS evaluates it, decides a call
// (reference §8): statements AWS refuses to store, and condition keys AWS
// always puts in a request's context.

// A key policy statement without Resource is refused, as AWS KMS refuses
// it: stored, it would apply to no one, and a Deny written without it
// would let through all it was meant to keep out.
func TestE2EKeyPolicyStatementWithoutResource(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	carol := e.kpUser(t, "carol", "")
	k := e.newKey(t)
	deny := kpDeny(carol.arn, "kms:Encrypt")
	delete(deny, "Resource")
	doc := kpDoc(kpRootStmt(), kpAllow(carol.arn, "kms:Encrypt"), deny)
	const msg = "Statement[2] has neither Resource nor NotResource."

	_, err := e.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), Policy: aws.String(doc)})
	expectAPIError(t, err, "MalformedPolicyDocumentException", msg)
	_, err = e.client.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(doc)})
	expectAPIError(t, err, "MalformedPolicyDocumentException", msg)
	if got := e.kpGetKeyPolicy(t, e.client, k); got != kpDefaultPolicy {
		t.Errorf("a refused policy changed the key policy to %s", got)
	}
	_, err = kpEncrypt(carol.kms, k, nil)
	kpDenied(t, err, carol.arn, "kms:Encrypt", e.keyARN(k), kpNoIdentity("kms:Encrypt"))

	// NotResource is a Resource element too.
	deny["NotResource"] = "arn:aws:kms:" + e2eRegion + ":" + e2eAccount + ":key/other"
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpAllow(carol.arn, "kms:Encrypt"), deny), false)
	_, err = kpEncrypt(carol.kms, k, nil)
	kpDenied(t, err, carol.arn, "kms:Encrypt", e.keyARN(k), kpDenyRes)
}

// kms:GrantIsForAWSResource is false in CreateGrant, ListGrants and
// RevokeGrant alike, as AWS sets it for a call no AWS service makes: a
// Deny on it holds for all three, and an Allow on false allows all three.
func TestE2EGrantIsForAWSResourceOnEveryGrantCall(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	carol := e.kpUser(t, "carol", "")
	dave := e.kpUser(t, "dave", "")
	notForAWS := map[string]any{"Bool": map[string]any{"kms:GrantIsForAWSResource": "false"}}
	grantOps := []string{"kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"}
	k := e.newKey(t)
	arn := e.keyARN(k)
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(),
		kpAllow(carol.arn, grantOps...),
		kpDeny(carol.arn, grantOps...).with(notForAWS),
		kpAllow(dave.arn, grantOps...).with(notForAWS)), false)
	g, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(dave.arn),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	if err != nil {
		t.Fatal(err)
	}

	_, err = carol.kms.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(carol.arn),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	kpDenied(t, err, carol.arn, "kms:CreateGrant", arn, kpDenyRes)
	_, err = carol.kms.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(k)})
	kpDenied(t, err, carol.arn, "kms:ListGrants", arn, kpDenyRes)
	_, err = carol.kms.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(k), GrantId: g.GrantId})
	kpDenied(t, err, carol.arn, "kms:RevokeGrant", arn, kpDenyRes)

	_, err = dave.kms.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(k)})
	kpOK(t, "dave ListGrants with kms:GrantIsForAWSResource false", err)
	_, err = dave.kms.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(k), GrantId: g.GrantId})
	kpOK(t, "dave RevokeGrant with kms:GrantIsForAWSResource false", err)
}

// The global condition keys AWS puts in every signed request's context
// are in this server's too, with the values they have for an IAM
// principal calling for itself: a condition on them holds, or fails, as
// on AWS, rather than as on a key that is absent.
func TestE2EAlwaysPresentGlobalConditionKeys(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	carol := e.kpUser(t, "carol", "")
	roleARN, session := e.kpRoleSession(t, "mfa-role", "s1")
	keyWith := func(stmts ...kpStmt) (string, string) {
		k := e.newKey(t)
		e.kpPutKeyPolicy(t, e.client, k, kpDoc(append([]kpStmt{kpRootStmt(), kpAllow(carol.arn, "kms:Encrypt"), kpAllow(roleARN, "kms:Encrypt")}, stmts...)...), false)
		return k, e.keyARN(k)
	}
	boolean := func(key, value string) map[string]any {
		return map[string]any{"Bool": map[string]any{key: value}}
	}

	// A data perimeter's "deny unless an AWS service asks" holds for
	// every caller here.
	for _, key := range []string{"aws:PrincipalIsAWSService", "aws:ViaAWSService"} {
		k, arn := keyWith(kpDeny("*", "kms:Encrypt").with(boolean(key, "false")))
		_, err := kpEncrypt(carol.kms, k, nil)
		kpDenied(t, err, carol.arn, "kms:Encrypt", arn, kpDenyRes)
		_, err = kpEncrypt(e.client, k, nil)
		kpDenied(t, err, kpRootARN, "kms:Encrypt", arn, kpDenyRes)
		k, _ = keyWith(kpDeny("*", "kms:Encrypt").with(boolean(key, "true")))
		_, err = kpEncrypt(carol.kms, k, nil)
		kpOK(t, "carol Encrypt with a deny on "+key+" true", err)
	}

	// aws:MultiFactorAuthPresent is in a session's context, false, and in
	// none signed with long-term keys.
	k, arn := keyWith(kpDeny("*", "kms:Encrypt").with(boolean("aws:MultiFactorAuthPresent", "false")))
	_, err := kpEncrypt(session.kms, k, nil)
	kpDenied(t, err, session.arn, "kms:Encrypt", arn, kpDenyRes)
	_, err = kpEncrypt(carol.kms, k, nil)
	kpOK(t, "carol Encrypt with a deny on aws:MultiFactorAuthPresent false", err)
	k, _ = keyWith(kpDeny("*", "kms:Encrypt").with(map[string]any{"Null": map[string]any{"aws:MultiFactorAuthPresent": "true"}}))
	_, err = kpEncrypt(session.kms, k, nil)
	kpOK(t, "session Encrypt with a deny on aws:MultiFactorAuthPresent absent", err)

	// aws:ResourceAccount is the key's account: "only keys of my own
	// account" allows, and "deny keys of other accounts" does not deny.
	k, _ = keyWith(
		kpAllow("*", "kms:DescribeKey").with(map[string]any{"StringEquals": map[string]any{"aws:ResourceAccount": "${aws:PrincipalAccount}"}}),
		kpDeny("*", "kms:Encrypt").with(map[string]any{"StringNotEquals": map[string]any{"aws:ResourceAccount": e2eAccount}}))
	_, err = kpEncrypt(carol.kms, k, nil)
	kpOK(t, "carol Encrypt with a deny of keys outside her account", err)
	_, err = carol.kms.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(k)})
	kpOK(t, "carol DescribeKey allowed on aws:ResourceAccount", err)
}

// sts:RoleSessionName is in AssumeRole's context, for the trust policy and
// the caller's own policies: AWS's way of making each user name its
// session after itself works, and a deny of a session name holds.
func TestE2EAssumeRoleSessionNameCondition(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	u := e.newUser(t, "erin", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*",`+
		`"Condition":{"StringNotLike":{"sts:RoleSessionName":"*break-glass*"}}}]}`)
	e.createRole(t, "named", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+e2eAccount+`:root"},`+
		`"Action":"sts:AssumeRole","Condition":{"StringLike":{"sts:RoleSessionName":"${aws:username}"}}},`+
		`{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:RoleSessionName":"erin"}}}]}`)
	e.createRole(t, "open", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+e2eAccount+`:root"},`+
		`"Action":"sts:AssumeRole","Condition":{"StringLike":{"sts:RoleSessionName":"${aws:username}*"}}}]}`)
	assume := func(role, session string) error {
		_, err := u.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf(role)), RoleSessionName: aws.String(session)})
		return err
	}
	if err := assume("open", "erin-1"); err != nil {
		t.Errorf("AssumeRole with the session named after the user: %v", err)
	}
	expectIAMError(t, assume("open", "bob"), http.StatusForbidden, "AccessDenied", "")
	// The trust policy denies the name its allow asks for.
	expectIAMError(t, assume("named", "erin"), http.StatusForbidden, "AccessDenied", "")
	// The caller's own policy denies a name the trust policy allows.
	expectIAMError(t, assume("open", "erin-break-glass"), http.StatusForbidden, "AccessDenied", "")
}

// kms:ReEncryptOnSameKey is in both of ReEncrypt's decisions: a policy
// that denies kms:ReEncryptFrom alone onto the same key holds.
func TestE2EReEncryptOnSameKeyInReEncryptFrom(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	carol := e.kpUser(t, "carol", "")
	sameKey := func(v string) map[string]any {
		return map[string]any{"Bool": map[string]any{"kms:ReEncryptOnSameKey": v}}
	}
	k := e.newKey(t)
	arn := e.keyARN(k)
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(),
		kpAllow(carol.arn, "kms:Encrypt", "kms:ReEncryptTo", "kms:ReEncryptFrom"),
		kpDeny(carol.arn, "kms:ReEncryptFrom").with(sameKey("true"))), false)
	other := e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, other, kpDoc(kpRootStmt(),
		kpAllow(carol.arn, "kms:Encrypt", "kms:ReEncryptTo"),
		kpAllow(carol.arn, "kms:ReEncryptFrom").with(sameKey("false"))), false)
	reEncrypt := func(blob []byte, to string) error {
		_, err := carol.kms.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyId: aws.String(to)})
		return err
	}
	blob, err := kpEncrypt(carol.kms, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	kpDenied(t, reEncrypt(blob, k), carol.arn, "kms:ReEncryptFrom", arn, kpDenyRes)
	kpOK(t, "ReEncrypt onto another key", reEncrypt(blob, other))
	// An allow of kms:ReEncryptFrom onto other keys only.
	blob, err = kpEncrypt(carol.kms, other, nil)
	if err != nil {
		t.Fatal(err)
	}
	kpOK(t, "ReEncrypt from a key allowing it onto other keys", reEncrypt(blob, k))
	kpDenied(t, reEncrypt(blob, other), carol.arn, "kms:ReEncryptFrom", e.keyARN(other), kpNoIdentity("kms:ReEncryptFrom"))
}

// A trust policy with Resource or NotResource is refused, with IAM's
// words: a trust policy applies to its role alone, and a Resource naming
// the role otherwise than by its full ARN (without its path, say) would
// leave the statement, a Deny too, applying to no one.
func TestE2ETrustPolicyWithResource(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	u := e.newUser(t, "bob", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	allow := `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + e2eAccount + `:root"},"Action":"sts:AssumeRole"}`
	for field, msg := range map[string]string{"Resource": "Has prohibited field Resource", "NotResource": "Has prohibited field NotResource"} {
		deny := `{"Effect":"Deny","Principal":{"AWS":"` + userARNOf("bob") + `"},"Action":"sts:AssumeRole","` + field + `":"` + roleARNOf("ops") + `"}`
		_, err := e.rootIAM().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ops"), Path: aws.String("/team/"),
			AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[` + allow + `,` + deny + `]}`)})
		expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", msg)
	}
	_, err := u.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + e2eAccount + ":role/team/ops"), RoleSessionName: aws.String("s1")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
}

// aws:ResourceAccount is the account of the resource a call is on, in IAM
// and STS decisions as in KMS ones: the usual "no roles of other accounts"
// deny lets a user assume its own account's roles, and a deny naming an
// account holds.
func TestE2EResourceAccountInAssumeRole(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	allowAssume := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`
	ownOnly := e.newUser(t, "own-only", allowAssume, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*",`+
		`"Condition":{"StringNotEquals":{"aws:ResourceAccount":"${aws:PrincipalAccount}"}}}]}`)
	notOurs := e.newUser(t, "not-ours", allowAssume, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*",`+
		`"Condition":{"StringEquals":{"aws:ResourceAccount":"`+e2eAccount+`"}}}]}`)
	e.createRole(t, "app", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+e2eAccount+`:root"},"Action":"sts:AssumeRole"}]}`)
	assume := func(u *testUser) error {
		_, err := u.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("app")), RoleSessionName: aws.String("s1")})
		return err
	}
	if err := assume(ownOnly); err != nil {
		t.Errorf("AssumeRole of a role of the caller's own account: %v", err)
	}
	expectIAMError(t, assume(notOurs), http.StatusForbidden, "AccessDenied", "")
}

// The deprecated condition keys kms:CustomerMasterKeySpec and
// kms:CustomerMasterKeyUsage work as kms:KeySpec and kms:KeyUsage do (AWS
// KMS Developer Guide, "AWS KMS condition keys": "Only the names differ"):
// a denial written with them holds, on CreateKey and on a key's
// operations alike.
func TestE2EDeprecatedKeySpecConditionKeys(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	noSigningKeys := kpIdentity("Deny", []string{"*"}, "kms:CreateKey").with(map[string]any{
		"StringEquals": map[string]any{"kms:CustomerMasterKeyUsage": "SIGN_VERIFY"}})
	carol := e.kpUser(t, "carol", kpDoc(kpIdentity("Allow", []string{"*"}, "kms:*"), noSigningKeys))
	_, err := carol.kms.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	kpDenied(t, err, carol.arn, "kms:CreateKey", "*", "with an explicit deny in an identity-based policy")
	if _, err := carol.kms.CreateKey(ctx, &kms.CreateKeyInput{}); err != nil {
		t.Errorf("CreateKey of a symmetric key: %v", err)
	}

	k := e.newKey(t)
	noSymmetricEncrypt := kpDeny(carol.arn, "kms:Encrypt").with(map[string]any{
		"StringEquals": map[string]any{"kms:CustomerMasterKeySpec": "SYMMETRIC_DEFAULT"}})
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), noSymmetricEncrypt), false)
	_, err = kpEncrypt(carol.kms, k, nil)
	kpDenied(t, err, carol.arn, "kms:Encrypt", e.keyARN(k), kpDenyRes)
	if _, err := carol.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(k), NumberOfBytes: aws.Int32(16)}); err != nil {
		t.Errorf("GenerateDataKey, which the key policy does not deny: %v", err)
	}
}

// kms:TrailingDaysWithoutKeyUsage is, in DisableKey and
// ScheduleKeyDeletion, the whole days since the key's last cryptographic
// use, or since its creation if it has none (AWS KMS Developer Guide,
// "AWS KMS condition keys"; the guard AWS recommends against deleting a
// key in use): a Deny while it is at most 30 holds for a new key and for a
// key used lately, and lets go of one left unused for longer.
func TestE2ETrailingDaysWithoutKeyUsage(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	guard := kpIdentity("Deny", []string{"*"}, "kms:DisableKey", "kms:ScheduleKeyDeletion").with(map[string]any{
		"NumericLessThanEquals": map[string]any{"kms:TrailingDaysWithoutKeyUsage": "30"}})
	carol := e.kpUser(t, "carol", kpDoc(kpIdentity("Allow", []string{"*"}, "kms:*"), guard))
	k := e.newKey(t)
	const why = "with an explicit deny in an identity-based policy"

	// Created now and never used: 0 days.
	_, err := carol.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(k)})
	kpDenied(t, err, carol.arn, "kms:DisableKey", e.keyARN(k), why)
	_, err = carol.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(k), PendingWindowInDays: aws.Int32(7)})
	kpDenied(t, err, carol.arn, "kms:ScheduleKeyDeletion", e.keyARN(k), why)

	// Used on day 20: still 30 days on from that use, not from creation.
	e.clock.Advance(20 * 24 * time.Hour)
	if _, err := kpEncrypt(carol.kms, k, nil); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(15 * 24 * time.Hour)
	_, err = carol.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(k)})
	kpDenied(t, err, carol.arn, "kms:DisableKey", e.keyARN(k), why)
	if err := e.svc.FlushKeyUsage(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(15*24*time.Hour + time.Hour)
	_, err = carol.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(k), PendingWindowInDays: aws.Int32(7)})
	kpDenied(t, err, carol.arn, "kms:ScheduleKeyDeletion", e.keyARN(k), why)

	// 31 days without a use.
	e.clock.Advance(24 * time.Hour)
	if _, err := carol.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(k)}); err != nil {
		t.Fatalf("DisableKey of a key unused for 31 days: %v", err)
	}
	if _, err := carol.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(k), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatalf("ScheduleKeyDeletion of a key unused for 31 days: %v", err)
	}
}
