package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/openkms/kms/internal/store"
)

// afterUpdateStore runs its hook once, after the next write transaction
// commits, while armed: a call another caller makes between a change's
// commit and what the changing call does after it. Its before hook runs
// once ahead of the next write transaction: a call another caller makes
// between a change's authorization and its transaction.
type afterUpdateStore struct {
	store.Store
	hook, before atomic.Pointer[func()]
}

// newAfterUpdateEnv is an audited environment whose store is an
// afterUpdateStore.
func newAfterUpdateEnv(t *testing.T) (*kmsEnv, *afterUpdateStore) {
	t.Helper()
	var st *afterUpdateStore
	e, _ := newAuditedEnvWith(t, func(s store.Store) store.Store {
		st = &afterUpdateStore{Store: s}
		return st
	})
	return e, st
}

func (s *afterUpdateStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if h := s.before.Swap(nil); h != nil {
		(*h)()
	}
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
	e, st := newAfterUpdateEnv(t)
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
// because another moved the alias first (32 at once: more than a change
// tries again), and the alias ends listed under the one key it points
// at, or under none once deleted.
func TestE2EAliasChangesRaced(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	targets := make([]string, 33)
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

// A caller whose access to a key is taken away while its own change to
// the key is under way (authorized, not yet committed) does not keep the
// access through that change: the change is judged again on the key as
// its transaction finds it. Else a principal removed from a key policy
// puts itself back with a PutKeyPolicy authorized a moment before, gives
// itself a grant, or a tag a condition of the policy asks for, and the
// removal, answered, is undone.
func TestE2EKeyChangeRacesRevocationOfItsCaller(t *testing.T) {
	t.Parallel()
	e, st := newAfterUpdateEnv(t)
	ctx := context.Background()
	mallory := e.newUser(t, "mallory")
	me := userARNOf("mallory")
	rootOnly := kpDoc(kpRootStmt())
	revokeFirst := func(key, doc string) {
		h := func() {
			if _, err := e.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(doc)}); err != nil {
				t.Errorf("the revoking PutKeyPolicy: %v", err)
			}
		}
		st.before.Store(&h)
	}
	encrypt := func(key string) error {
		_, err := mallory.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
		return err
	}

	// PutKeyPolicy putting mallory back.
	key := e.newKey(t)
	mine := kpDoc(kpRootStmt(), kpAllow(me, "kms:*"))
	e.kpPutKeyPolicy(t, e.client, key, mine, false)
	revokeFirst(key, rootOnly)
	_, err := mallory.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(mine)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	expectAPIErrorCode(t, encrypt(key), "AccessDeniedException")

	// CreateGrant giving mallory a grant.
	key = e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, key, mine, false)
	revokeFirst(key, rootOnly)
	_, err = mallory.kms.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(me),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	expectAPIErrorCode(t, encrypt(key), "AccessDeniedException")

	// TagResource bringing back the tag the policy's condition asks for.
	key = e.newKey(t)
	tagged := kpDoc(kpRootStmt(), kpAllow(me, "kms:*").with(map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/team": "red"}}))
	e.kpPutKeyPolicy(t, e.client, key, tagged, false)
	if _, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(key), Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("red")}}}); err != nil {
		t.Fatal(err)
	}
	untag := func() {
		if _, err := e.client.UntagResource(ctx, &kms.UntagResourceInput{KeyId: aws.String(key), TagKeys: []string{"team"}}); err != nil {
			t.Errorf("the revoking UntagResource: %v", err)
		}
	}
	st.before.Store(&untag)
	_, err = mallory.kms.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(key), Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("red")}}})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	expectAPIErrorCode(t, encrypt(key), "AccessDeniedException")

	// ReplicateKey making mallory a replica under a policy of her own
	// (which her identity policy lets her create).
	e.putUserPolicy(t, "mallory", "create", allowDoc("*", "kms:CreateKey"))
	key = aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	e.kpPutKeyPolicy(t, e.client, key, mine, false)
	revokeFirst(key, rootOnly)
	_, err = mallory.kms.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(key), ReplicaRegion: aws.String(e2eRegion2), Policy: aws.String(mine)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	_, err = e.regions()[e2eRegion2].DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	expectAPIErrorCode(t, err, "NotFoundException")

	// PutKeyPolicy allowed by an identity policy, deleted meanwhile.
	eve := e.newUser(t, "eve", allowKMS)
	key = e.newKey(t)
	h := func() {
		if _, err := e.rootIAM().DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("eve"), PolicyName: aws.String("p0")}); err != nil {
			t.Errorf("the revoking DeleteUserPolicy: %v", err)
		}
	}
	st.before.Store(&h)
	_, err = eve.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(kpDoc(kpRootStmt(), kpAllow(userARNOf("eve"), "kms:*")))})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	_, err = eve.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
	expectAPIErrorCode(t, err, "AccessDeniedException")

	// RevokeGrant removing a grant the key's owner made.
	key = e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, key, mine, false)
	g, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(userARNOf("mallory")),
		Operations: []types.GrantOperation{types.GrantOperationDescribeKey}})
	if err != nil {
		t.Fatal(err)
	}
	revokeFirst(key, rootOnly)
	_, err = mallory.kms.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(key), GrantId: g.GrantId})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	if l, err := e.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(key), GrantId: g.GrantId}); err != nil || len(l.Grants) != 1 {
		t.Errorf("the grant after the refused RevokeGrant: %d listed (%v), want it still there", len(l.Grants), err)
	}

	// UpdatePrimaryRegion moving the primary away from the key policy
	// that shut mallory out.
	key = aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	e.kpPutKeyPolicy(t, e.client, key, mine, false)
	if _, err := e.client.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(key), ReplicaRegion: aws.String(e2eRegion2), Policy: aws.String(mine)}); err != nil {
		t.Fatal(err)
	}
	revokeFirst(key, rootOnly)
	_, err = mallory.kms.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(key), PrimaryRegion: aws.String(e2eRegion2)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	if m := describeIn(t, e.client, key); m.MultiRegionConfiguration == nil || m.MultiRegionConfiguration.MultiRegionKeyType != types.MultiRegionKeyTypePrimary {
		t.Errorf("the key after the refused UpdatePrimaryRegion: %+v, want it still the primary", m.MultiRegionConfiguration)
	}

	// A change the revocation does not concern goes through: the policy
	// changed, and still allows it.
	key = e.newKey(t)
	e.kpPutKeyPolicy(t, e.client, key, mine, false)
	revokeFirst(key, kpDoc(kpRootStmt(), kpAllow(me, "kms:UpdateKeyDescription", "kms:Encrypt")))
	if _, err := mallory.kms.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(key), Description: aws.String("still mine")}); err != nil {
		t.Fatalf("UpdateKeyDescription still allowed by the new policy: %v", err)
	}
}

// The same for IAM: a caller whose identity policy or access key is taken
// away while its own IAM or STS call is under way does not keep its
// access through that call. Its transaction reads the caller again, so a
// PutUserPolicy putting back the policy just deleted is refused, and so
// are an access key made, and a role session started, by a caller whose
// access key was deleted meanwhile.
func TestE2EIAMChangeRacesRevocationOfItsCaller(t *testing.T) {
	t.Parallel()
	e, st := newAfterUpdateEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	first := func(change func() error) {
		h := func() {
			if err := change(); err != nil {
				t.Errorf("the revoking call: %v", err)
			}
		}
		st.before.Store(&h)
	}
	everything := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`

	u := e.newUser(t, "policy-back", everything)
	first(func() error {
		_, err := root.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(u.name), PolicyName: aws.String("p0")})
		return err
	})
	_, err := u.iam.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(u.name), PolicyName: aws.String("back"), PolicyDocument: aws.String(everything)})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	if l, err := root.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String(u.name)}); err != nil || len(l.PolicyNames) != 0 {
		t.Errorf("policies of %s after the refusal: %v (%v)", u.name, l.PolicyNames, err)
	}

	u = e.newUser(t, "key-after", everything)
	first(func() error {
		_, err := root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.name), AccessKeyId: aws.String(u.akid)})
		return err
	})
	_, err = u.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(u.name)})
	expectIAMError(t, err, http.StatusForbidden, "InvalidClientTokenId", "")
	if l, err := root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(u.name)}); err != nil || len(l.AccessKeyMetadata) != 0 {
		t.Errorf("access keys of %s after the refusal: %v (%v)", u.name, l.AccessKeyMetadata, err)
	}

	u = e.newUser(t, "key-maker", allowKMS)
	first(func() error {
		_, err := root.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(u.name), PolicyName: aws.String("p0")})
		return err
	})
	keys := e.keyCount(t)
	_, err = u.kms.CreateKey(ctx, &kms.CreateKeyInput{Policy: aws.String(kpDoc(kpRootStmt(), kpAllow(userARNOf(u.name), "kms:*")))})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	e.expectKeyCount(t, keys)

	// An alias moved, or made, by a caller whose identity policy was
	// deleted meanwhile.
	u = e.newUser(t, "alias-mover", allowKMS)
	from, to := e.newKey(t), e.newKey(t)
	if _, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(from)}); err != nil {
		t.Fatal(err)
	}
	first(func() error {
		_, err := root.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(u.name), PolicyName: aws.String("p0")})
		return err
	})
	_, err = u.kms.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(to)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	if m := describeIn(t, e.client, "alias/app"); aws.ToString(m.KeyId) != from {
		t.Errorf("alias/app points at %s after the refusal, want %s", aws.ToString(m.KeyId), from)
	}
	e.putUserPolicy(t, u.name, "p0", allowKMS)
	first(func() error {
		_, err := root.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(u.name), PolicyName: aws.String("p0")})
		return err
	})
	_, err = u.kms.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/new"), TargetKeyId: aws.String(to)})
	expectAPIErrorCode(t, err, "AccessDeniedException")

	// A grant retired by its retiring principal, whose access key was
	// deleted meanwhile: the grant decides who retires it, but not for a
	// caller who is no longer anyone.
	u = e.newUser(t, "retirer", everything)
	key := e.newKey(t)
	g, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(userARNOf(u.name)),
		RetiringPrincipal: aws.String(userARNOf(u.name)), Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	if err != nil {
		t.Fatal(err)
	}
	first(func() error {
		_, err := root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.name), AccessKeyId: aws.String(u.akid)})
		return err
	})
	_, err = u.kms.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: g.GrantToken})
	expectAPIErrorCode(t, err, "UnrecognizedClientException")
	if l, err := e.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(key), GrantId: g.GrantId}); err != nil || len(l.Grants) != 1 {
		t.Errorf("the grant after the refused RetireGrant: %d listed (%v), want it still there", len(l.Grants), err)
	}

	e.createRole(t, "racer", trustAccount)
	u = e.newUser(t, "session-after", everything)
	first(func() error {
		_, err := root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.name), AccessKeyId: aws.String(u.akid)})
		return err
	})
	_, err = u.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("racer")), RoleSessionName: aws.String("after")})
	expectIAMError(t, err, http.StatusForbidden, "InvalidClientTokenId", "")
}

// A replica made while a change to its primary that every region shares
// is under way (authorized, not yet committed) is not left in the cache
// as it was before that change: the change writes the replica too, and
// must drop it. Else a server keeps encrypting under the replica's old
// material after an on-demand rotation, and reports automatic rotation
// off after EnableKeyRotation, until it restarts.
func TestE2EReplicaMadeDuringASharedChange(t *testing.T) {
	t.Parallel()
	e, st := newAfterUpdateEnv(t)
	ctx := context.Background()
	replica := e.regions()[e2eRegion2]
	replicateFirst := func(key string) {
		h := func() {
			if _, err := e.client.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(key), ReplicaRegion: aws.String(e2eRegion2)}); err != nil {
				t.Errorf("ReplicateKey: %v", err)
			}
			describeIn(t, replica, key) // the replica cached as it is then
		}
		st.before.Store(&h)
	}

	key := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	replicateFirst(key)
	if _, err := e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	want := aws.ToString(describeIn(t, e.client, key).CurrentKeyMaterialId)
	if got := aws.ToString(describeIn(t, replica, key).CurrentKeyMaterialId); got != want {
		t.Errorf("the replica's current material after the rotation: %s, want the primary's %s", got, want)
	}

	key = aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	replicateFirst(key)
	if _, err := e.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	status, err := replica.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if !status.KeyRotationEnabled {
		t.Error("the replica's automatic rotation after EnableKeyRotation of its primary: off, want on")
	}
}
