package e2e_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/identity"
)

// The grant decides who retires it, and identity policies still have
// their say (AWS KMS Developer Guide, "Retiring and revoking grants"): an
// explicit deny of kms:RetireGrant refuses even the retiring principal
// and a grantee the grant allows to retire it; an allow delegates retiring
// to the principals of the key's account, and of an account the grant
// names as its retiring principal.
func TestE2EGrantRetireIdentityPolicies(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	deny := kpDoc(kpIdentity("Deny", []string{"*"}, "kms:RetireGrant"))
	allow := kpDoc(kpIdentity("Allow", []string{"*"}, "kms:RetireGrant"))
	rita := e.kpUser(t, "rita", deny) // retiring principal
	gina := e.kpUser(t, "gina", deny) // grantee allowed to retire
	iris := e.kpUser(t, "iris", allow)
	k := e.newKey(t)

	g1, tok1 := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String(rita.arn), Operations: grOps(types.GrantOperationEncrypt, types.GrantOperationRetireGrant)})
	_, err := rita.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok1)})
	kpDenied(t, err, rita.arn, "kms:RetireGrant", e.keyARN(k), "with an explicit deny in an identity-based policy")
	_, err = gina.kms.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(k), GrantId: aws.String(g1)})
	kpDenied(t, err, gina.arn, "kms:RetireGrant", e.keyARN(k), "with an explicit deny in an identity-based policy")
	_, err = gina.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok1), DryRun: aws.Bool(true)})
	kpDenied(t, err, gina.arn, "kms:RetireGrant", e.keyARN(k), "with an explicit deny in an identity-based policy")
	if _, err := kpEncrypt(gina.kms, k, nil); err != nil {
		t.Errorf("the grant should still be in force: %v", err)
	}

	// A principal of the key's account the grant does not name retires
	// it when an identity policy allows kms:RetireGrant.
	if _, err := iris.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok1)}); err != nil {
		t.Fatalf("RetireGrant delegated by an identity policy: %v", err)
	}
	if got := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)}); len(got) != 0 {
		t.Errorf("grants left: %v", grIDs(got))
	}

	// A grant whose retiring principal is another account: that
	// account's users retire it when an identity policy allows.
	bRoot, err := identity.BootstrapRoot(ctx, e.store, e.root, grOtherAccount)
	if err != nil {
		t.Fatal(err)
	}
	bIAM := e.iamClient(bRoot.ID, bRoot.Secret, "")
	bUser := func(name, doc string) kpPrincipal {
		t.Helper()
		if _, err := bIAM.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		ak, err := bIAM.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if doc != "" {
			if _, err := bIAM.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)}); err != nil {
				t.Fatal(err)
			}
		}
		return kpPrincipal{name: name, arn: "arn:aws:iam::" + grOtherAccount + ":user/" + name,
			kms: e.clientWith(aws.ToString(ak.AccessKey.AccessKeyId), aws.ToString(ak.AccessKey.SecretAccessKey), "")}
	}
	bob, bert := bUser("bob", allow), bUser("bert", "")
	_, tok2 := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String("arn:aws:iam::" + grOtherAccount + ":root"), Operations: grOps(types.GrantOperationEncrypt)})
	_, err = bert.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok2)})
	kpDeniedAny(t, err, bert.arn, "kms:RetireGrant", e.keyARN(k))
	_, err = iris.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok2), DryRun: aws.Bool(true)})
	expectAPIError(t, err, "DryRunOperationException", grDryRunMsg)
	if _, err := bob.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(tok2)}); err != nil {
		t.Fatalf("RetireGrant by a user of the retiring account: %v", err)
	}
	if got := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(k)}); len(got) != 0 {
		t.Errorf("grants left: %v", grIDs(got))
	}
}

// ListRetirableGrants lists to an account the grants on other accounts'
// keys whose retiring principal is one of its role sessions, as it lists
// those whose retiring principal is the account itself.
func TestE2EListRetirableGrantsOfAnotherAccountsSession(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	k := e.newKey(t)
	gina := e.kpUser(t, "gina", "")
	session := "arn:aws:sts::" + grOtherAccount + ":assumed-role/retirer/s1"
	account := "arn:aws:iam::" + grOtherAccount + ":root"
	g1, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String(session), Operations: grOps(types.GrantOperationEncrypt)})
	g2, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
		RetiringPrincipal: aws.String(account), Operations: grOps(types.GrantOperationEncrypt)})
	b := e.clientAs(t, grOtherAccount)
	if got := grIDs(grRetirable(t, b, session)); len(got) != 1 || got[0] != g1 {
		t.Errorf("ListRetirableGrants(%s) in its account = %v, want [%s]", session, got, g1)
	}
	if got := grIDs(grRetirable(t, b, account)); len(got) != 1 || got[0] != g2 {
		t.Errorf("ListRetirableGrants(%s) in its account = %v, want [%s]", account, got, g2)
	}
}

// RetireGrant's kms:GrantConstraintType and kms:EncryptionContext:* are
// those of the grant's constraint, as in CreateGrant: an identity policy
// can keep a principal from retiring the grants of one context.
func TestE2EGrantRetireConstraintConditions(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	noProd := kpIdentity("Deny", []string{"*"}, "kms:RetireGrant").with(map[string]any{
		"StringEquals": map[string]any{"kms:EncryptionContext:tenant": "prod", "kms:GrantConstraintType": "EncryptionContextSubset"}})
	rita := e.kpUser(t, "rita", kpDoc(noProd))
	gina := e.kpUser(t, "gina", "")
	k := e.newKey(t)
	grant := func(tenant string) string {
		_, tok := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(gina.arn),
			RetiringPrincipal: aws.String(rita.arn), Operations: grOps(types.GrantOperationDecrypt),
			Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": tenant}}})
		return tok
	}
	prod, dev := grant("prod"), grant("dev")
	_, err := rita.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(prod)})
	kpDenied(t, err, rita.arn, "kms:RetireGrant", e.keyARN(k), "with an explicit deny in an identity-based policy")
	if _, err := rita.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: aws.String(dev)}); err != nil {
		t.Errorf("RetireGrant of the dev grant: %v", err)
	}
}
