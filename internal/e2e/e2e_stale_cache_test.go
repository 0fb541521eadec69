package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/store"
)

// A change the caches have not heard of, as another node's when the
// notifications are lost (written here to the store behind the service's
// back), does not let a caller whose access it revoked make a change that
// outlasts the caches' lag: the operations that change IAM, keys and
// grants read the caller and the key from the store.
func TestE2EWritesReadPastTheCaches(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	x := e.newUser(t, "xuser", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:*","iam:*"],"Resource":"*"}]}`)
	key := e.newKey(t)
	// Warm the caches: x's credential and policies, and the key.
	if _, err := x.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("warm")}); err != nil {
		t.Fatal(err)
	}
	// Another node removes x's policy; this one is not told.
	err := e.store.Update(ctx, func(tx store.Tx) error {
		return tx.Delete([]byte("iam/userpolicy/" + e2eAccount + "/xuser/p0"))
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.kms.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(userARNOf("xuser")),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt}})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	_, err = x.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(kpDoc(kpRootStmt(), kpAllow(userARNOf("xuser"), "kms:*")))})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	_, err = x.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("xuser")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	_, err = x.iam.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("xuser"), PolicyName: aws.String("back"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	if grants := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(key)}); len(grants) != 0 {
		t.Fatalf("grants after the refusals: %+v", grants)
	}

	// The same for a key policy: y may use k by its policy alone, and
	// another node takes y out of it.
	y := e.newUser(t, "yuser")
	k := e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpAllow(userARNOf("yuser"), "kms:*")), false)
	if _, err := y.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k), Plaintext: []byte("warm")}); err != nil {
		t.Fatal(err)
	}
	recKey := []byte("key/" + e2eRegion + "/" + k)
	err = e.store.Update(ctx, func(tx store.Tx) error {
		b, err := tx.Get(recKey)
		if err != nil {
			return err
		}
		var rec map[string]any
		if err := json.Unmarshal(b, &rec); err != nil {
			return err
		}
		rec["policy"] = kpDoc(kpRootStmt())
		delete(rec, "policyPrincipalIds")
		b, _ = json.Marshal(rec)
		return tx.Put(recKey, b)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = y.kms.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(k), GranteePrincipal: aws.String(userARNOf("yuser")),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	_, err = y.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k), Policy: aws.String(kpDoc(kpRootStmt(), kpAllow(userARNOf("yuser"), "kms:*")))})
	expectAPIErrorCode(t, err, "AccessDeniedException")
}
