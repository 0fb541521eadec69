package e2e_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
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
