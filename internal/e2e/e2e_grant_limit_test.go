package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/store"
)

// A key holds at most 50,000 grants, counting grants stored before the
// store kept a count; a named grant made again is found among them; and a
// grant made or revoked on a key in use takes effect at once.
func TestE2EGrantLimitCountsStoredGrants(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	grantee := "arn:aws:iam::" + e2eAccount + ":root"
	named := &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(grantee), Name: aws.String("batch/nightly"),
		Operations: grOps(types.GrantOperationDecrypt)}
	namedID, _ := grCreate(t, e.client, named)

	// As a store written before grants were counted: no count, no name
	// index, and 49,998 more grants, one short of the limit.
	e = e.reopenEdited(t, func(path string) {
		editStore(t, path, e.root, func(tx store.Tx) error {
			if err := tx.Delete(keyrepo.GrantCountKey(e2eRegion, id)); err != nil {
				return err
			}
			if err := tx.Delete(keyrepo.GrantNameKey(e2eRegion, id, e2eAccount, "batch/nightly", namedID)); err != nil {
				return err
			}
			for i := range 49998 {
				g := keyrepo.GrantRecord{V: keyrepo.RecordVersion, ID: fmt.Sprintf("%064x", i), KeyID: id, Region: e2eRegion,
					Account: e2eAccount, Name: "batch", Grantee: grantee, Bound: true, Operations: []string{"Encrypt"}, Created: time.Now()}
				if err := store.PutJSON(tx, keyrepo.GrantKey(e2eRegion, id, g.ID), &g); err != nil {
					return err
				}
			}
			return nil
		})
	})

	if again, _ := grCreate(t, e.client, named); again != namedID {
		t.Fatalf("the named grant made again has id %s, want %s", again, namedID)
	}
	other := &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(grantee), Operations: grOps(types.GrantOperationEncrypt)}
	last, _ := grCreate(t, e.client, other)
	_, err := e.client.CreateGrant(ctx, other)
	full := fmt.Sprintf("The key %s already has the maximum of 50000 grants.", e.keyARN(id))
	expectAPIError(t, err, "LimitExceededException", full)
	expectTyped[*types.LimitExceededException](t, err)
	// A dry run is judged as the call would be.
	dry := *other
	dry.DryRun = aws.Bool(true)
	_, err = e.client.CreateGrant(ctx, &dry)
	expectAPIError(t, err, "LimitExceededException", full)

	if _, err := e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(id), GrantId: aws.String(last)}); err != nil {
		t.Fatalf("RevokeGrant: %v", err)
	}
	_, err = e.client.CreateGrant(ctx, &dry)
	expectAPIError(t, err, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
	grCreate(t, e.client, other) // the dry run took no place
	_, err = e.client.CreateGrant(ctx, other)
	expectAPIError(t, err, "LimitExceededException", full)
}

// A grant takes effect, and stops, at once on a key whose material the
// server holds warm.
func TestE2EGrantOnAWarmKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	user := e.kpUser(t, "grantee", "")
	encrypt := func() error {
		_, err := user.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
		return err
	}
	if _, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}); err != nil {
		t.Fatal(err) // the key is cached now
	}
	kpDeniedAny(t, encrypt(), user.arn, "kms:Encrypt", e.keyARN(id))
	gid, _ := grCreate(t, e.client, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(user.arn),
		Operations: grOps(types.GrantOperationEncrypt)})
	if err := encrypt(); err != nil {
		t.Fatalf("Encrypt with a grant just made: %v", err)
	}
	if _, err := e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(id), GrantId: aws.String(gid)}); err != nil {
		t.Fatal(err)
	}
	kpDeniedAny(t, encrypt(), user.arn, "kms:Encrypt", e.keyARN(id))
}
