package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

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

// concurrently makes n calls of call at once and counts those that
// succeeded, and the others by error code.
func concurrently(n int, call func(i int) error) (wins int, codes map[string]int) {
	codes = map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := call(i)
			mu.Lock()
			defer mu.Unlock()
			var ae smithy.APIError
			switch {
			case err == nil:
				wins++
			case errors.As(err, &ae):
				codes[ae.ErrorCode()]++
			default:
				codes[err.Error()]++
			}
		}()
	}
	close(start)
	wg.Wait()
	return wins, codes
}

// Calls that change one alias at once all go through, as on AWS, each
// judged on the key the alias points at when it commits: none fails
// because another moved the alias first, and the alias ends listed
// under the one key it points at, or under none once deleted.
func TestE2EAliasChangesRaced(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	targets := make([]string, 8)
	for i := range targets {
		targets[i] = e.newKey(t)
	}
	for round := range 6 {
		alias := fmt.Sprintf("alias/raced-%d", round)
		if _, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(targets[0])}); err != nil {
			t.Fatal(err)
		}
		deleting := round%2 == 0 // every other round, one call deletes the alias
		wins, codes := concurrently(len(targets)-1, func(i int) error {
			if deleting && i == 0 {
				_, err := e.client.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(alias)})
				return err
			}
			_, err := e.client.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(targets[i+1])})
			return err
		})
		if wins+codes["NotFoundException"] != len(targets)-1 || (!deleting && wins != len(targets)-1) {
			t.Errorf("round %d: %d calls succeeded, errors %v", round, wins, codes)
		}
		var listed []string
		for _, k := range targets {
			for _, a := range e.listAllAliases(t, &kms.ListAliasesInput{KeyId: aws.String(k)}) {
				if aws.ToString(a.AliasName) == alias {
					listed = append(listed, k)
				}
			}
		}
		out, err := e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
		switch {
		case err != nil && (!deleting || len(listed) != 0):
			t.Errorf("round %d: DescribeKey %s: %v; listed under %v", round, alias, err, listed)
		case err == nil && (len(listed) != 1 || listed[0] != aws.ToString(out.KeyMetadata.KeyId)):
			t.Errorf("round %d: %s points at %s, listed under %v", round, alias, aws.ToString(out.KeyMetadata.KeyId), listed)
		}
	}
}
