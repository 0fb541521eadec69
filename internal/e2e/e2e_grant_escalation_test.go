package e2e_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// A grant that allows CreateGrant lets its grantee create grants only for
// operations it holds itself, with constraints at least as strict as its
// own: a grantee can never hand on more than it was given.
func TestGrantCannotEscalate(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	bob, mallory := e.newUser(t, "bob"), e.newUser(t, "mallory")
	bobARN, malloryARN := "arn:aws:iam::"+e2eAccount+":user/bob", "arn:aws:iam::"+e2eAccount+":user/mallory"
	key := e.createKey(t, &kms.CreateKeyInput{})
	keyID := aws.ToString(key.KeyId)
	secret, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("root's secret"),
		EncryptionContext: map[string]string{"app": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	grant := func(t *testing.T, as *kms.Client, grantee string, c *types.GrantConstraints, ops ...types.GrantOperation) error {
		t.Helper()
		_, err := as.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: aws.String(grantee), Operations: ops, Constraints: c})
		return err
	}
	decryptAs := func(c *kms.Client) error {
		_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: secret.CiphertextBlob, EncryptionContext: map[string]string{"app": "a"}})
		return err
	}

	t.Run("operations beyond the parent's", func(t *testing.T) {
		grCreate(t, e.client, &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: aws.String(bobARN),
			Operations: grOps(types.GrantOperationEncrypt, types.GrantOperationCreateGrant)})
		for _, tc := range []struct {
			grantee string
			ops     []types.GrantOperation
		}{
			{malloryARN, grOps(types.GrantOperationDecrypt)},
			{bobARN, grOps(types.GrantOperationDecrypt)},
			{malloryARN, grOps(types.GrantOperationEncrypt, types.GrantOperationDecrypt)},
			{malloryARN, grOps(types.GrantOperationReEncryptFrom)},
			{malloryARN, grOps(types.GrantOperationRetireGrant)},
		} {
			err := grant(t, bob.kms, tc.grantee, nil, tc.ops...)
			expectAPIErrorPrefix(t, err, "AccessDeniedException", "User: "+bobARN+" is not authorized to perform: kms:CreateGrant on resource: "+aws.ToString(key.Arn))
		}
		expectAPIErrorPrefix(t, decryptAs(mallory.kms), "AccessDeniedException", "User: ")
		expectAPIErrorPrefix(t, decryptAs(bob.kms), "AccessDeniedException", "User: ")

		// A subset of the parent's operations is allowed, and works.
		if err := grant(t, bob.kms, malloryARN, nil, types.GrantOperationEncrypt); err != nil {
			t.Fatalf("a grant for a subset of the parent's operations: %v", err)
		}
		if _, err := mallory.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("x")}); err != nil {
			t.Fatalf("Encrypt through the child grant: %v", err)
		}
		// The child cannot pass on CreateGrant it was not given.
		expectAPIErrorPrefix(t, grant(t, mallory.kms, bobARN, nil, types.GrantOperationEncrypt), "AccessDeniedException", "User: ")
	})

	t.Run("constraints at least as strict", func(t *testing.T) {
		carol, dave := e.newUser(t, "carol"), e.newUser(t, "dave")
		carolARN, daveARN := "arn:aws:iam::"+e2eAccount+":user/carol", "arn:aws:iam::"+e2eAccount+":user/dave"
		_ = dave
		grCreate(t, e.client, &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: aws.String(carolARN),
			Operations:  grOps(types.GrantOperationDecrypt, types.GrantOperationCreateGrant, types.GrantOperationDescribeKey),
			Constraints: &types.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "a"}}})
		for _, tc := range []struct {
			name  string
			c     *types.GrantConstraints
			allow bool
		}{
			{"no constraints", nil, false},
			{"a subset of another pair", &types.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "b"}}, false},
			{"a subset without the parent's pair", &types.GrantConstraints{EncryptionContextSubset: map[string]string{"team": "x"}}, false},
			{"the same subset", &types.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "a"}}, true},
			{"a larger subset", &types.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "a", "team": "x"}}, true},
			{"an exact context holding the pair", &types.GrantConstraints{EncryptionContextEquals: map[string]string{"APP": "a"}}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := grant(t, carol.kms, daveARN, tc.c, types.GrantOperationDecrypt)
				if tc.allow && err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !tc.allow {
					expectAPIErrorPrefix(t, err, "AccessDeniedException", "User: ")
				}
			})
		}
		// The constrained grant still works for its own context, and for
		// an operation that takes none.
		if err := decryptAs(carol.kms); err != nil {
			t.Errorf("Decrypt within the constraint: %v", err)
		}
		if _, err := carol.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)}); err != nil {
			t.Errorf("DescribeKey through a constrained grant: %v", err)
		}
		_, err := carol.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: secret.CiphertextBlob})
		expectAPIErrorPrefix(t, err, "AccessDeniedException", "User: ")
	})

	t.Run("an exact parent", func(t *testing.T) {
		erin := e.newUser(t, "erin")
		erinARN := "arn:aws:iam::" + e2eAccount + ":user/erin"
		grCreate(t, e.client, &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: aws.String(erinARN),
			Operations:  grOps(types.GrantOperationDecrypt, types.GrantOperationCreateGrant),
			Constraints: &types.GrantConstraints{EncryptionContextEquals: map[string]string{"app": "a"}}})
		for _, c := range []*types.GrantConstraints{nil,
			{EncryptionContextSubset: map[string]string{"app": "a"}},
			{EncryptionContextEquals: map[string]string{"app": "a", "x": "y"}}} {
			expectAPIErrorPrefix(t, grant(t, erin.kms, malloryARN, c, types.GrantOperationDecrypt), "AccessDeniedException", "User: ")
		}
		if err := grant(t, erin.kms, malloryARN, &types.GrantConstraints{EncryptionContextEquals: map[string]string{"app": "a"}}, types.GrantOperationDecrypt); err != nil {
			t.Fatalf("the same exact context: %v", err)
		}
	})

	// A grant may carry both constraints, and then allows only a context
	// that meets both: an exact context without its required pair meets
	// neither, and the grant allows no context at all. Its grantee can
	// hand on no more than that.
	t.Run("a parent whose constraints no context meets", func(t *testing.T) {
		gina := e.newUser(t, "gina")
		ginaARN := "arn:aws:iam::" + e2eAccount + ":user/gina"
		hal := e.newUser(t, "hal")
		halARN := "arn:aws:iam::" + e2eAccount + ":user/hal"
		grCreate(t, e.client, &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: aws.String(ginaARN),
			Operations: grOps(types.GrantOperationDecrypt, types.GrantOperationCreateGrant),
			Constraints: &types.GrantConstraints{EncryptionContextEquals: map[string]string{"app": "a"},
				EncryptionContextSubset: map[string]string{"team": "x"}}})
		expectAPIErrorPrefix(t, decryptAs(gina.kms), "AccessDeniedException", "User: ")
		err := grant(t, gina.kms, halARN, &types.GrantConstraints{EncryptionContextEquals: map[string]string{"app": "a"}}, types.GrantOperationDecrypt)
		expectAPIErrorPrefix(t, err, "AccessDeniedException", "User: "+ginaARN+" is not authorized to perform: kms:CreateGrant")
		expectAPIErrorPrefix(t, decryptAs(hal.kms), "AccessDeniedException", "User: ")
	})
}
