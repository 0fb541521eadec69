package e2e_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/store"
)

// afterUpdateStore runs its hook once, after the next write transaction
// commits, while armed: a call another caller makes between a change's
// commit and what the changing call does after it.
type afterUpdateStore struct {
	store.Store
	hook atomic.Pointer[func()]
}

func (s *afterUpdateStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	err := s.Store.Update(ctx, fn)
	if h := s.hook.Swap(nil); h != nil {
		(*h)()
	}
	return err
}

// A grant revoked in the instant between its CreateGrant's commit and
// that call's answer (its id read from ListGrants meanwhile) stays
// revoked: the grant's late arrival in the cached key must not bring it
// back for its grantee.
func TestE2EGrantRevokedBeforeItsCreationAnswers(t *testing.T) {
	t.Parallel()
	var st *afterUpdateStore
	e, _ := newAuditedEnvWith(t, func(s store.Store) store.Store {
		st = &afterUpdateStore{Store: s}
		return st
	})
	ctx := context.Background()
	grantee := e.newUser(t, "grantee")
	key := e.newKey(t)
	// The key is cached, with no grant.
	if _, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("warm")}); err != nil {
		t.Fatal(err)
	}
	revoked := ""
	revoke := func() {
		grants := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(key)})
		if len(grants) != 1 {
			t.Errorf("ListGrants right after the grant's commit: %d grants, want 1", len(grants))
			return
		}
		revoked = aws.ToString(grants[0].GrantId)
		if _, err := e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(key), GrantId: aws.String(revoked)}); err != nil {
			t.Errorf("RevokeGrant: %v", err)
		}
	}
	st.hook.Store(&revoke)
	out, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(userARNOf("grantee")),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.GrantId) != revoked {
		t.Fatalf("CreateGrant answered grant %s; %q was revoked", aws.ToString(out.GrantId), revoked)
	}
	_, err = grantee.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
	expectAPIErrorCode(t, err, "AccessDeniedException")
}
