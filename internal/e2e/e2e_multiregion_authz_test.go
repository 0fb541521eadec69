package e2e_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
)

// aws:RequestedRegion is the region a KMS call is made in: AWS's way of
// keeping a principal to some regions. A principal denied eu-west-1 does
// nothing there to a multi-Region key's replica, nor makes one there with
// ReplicateKey (the replica is a key created in eu-west-1), nor moves the
// primary there; what it may do in us-east-1 it still does.
func TestE2EMultiRegionRequestedRegion(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, eu := c[e2eRegion], c[e2eRegion2]
	notInEU := e.newUser(t, "not-in-eu", kpDoc(
		kpIdentity("Allow", []string{"*"}, "kms:*"),
		kpIdentity("Deny", []string{"*"}, "kms:*").with(map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": e2eRegion2}})))
	userUS := e.clientIn(e2eRegion, notInEU.akid, notInEU.secret, "")
	userEU := e.clientIn(e2eRegion2, notInEU.akid, notInEU.secret, "")

	id := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	if _, err := userUS.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("Encrypt in us-east-1, which the user may use: %v", err)
	}
	_, err := userUS.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	_, err = eu.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "NotFoundException")

	if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2)}); err != nil {
		t.Fatal(err)
	}
	blob, err := us.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = userEU.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	_, err = userEU.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	_, err = userUS.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(id), PrimaryRegion: aws.String(e2eRegion2)})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	checkConfig(t, eu, e2eRegion2, id, e2eRegion, e2eRegion2)
	if m := describeIn(t, eu, id); m.DeletionDate != nil {
		t.Fatalf("the replica is %s after a refused ScheduleKeyDeletion", m.KeyState)
	}
	if _, err := userUS.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob}); err != nil {
		t.Fatalf("Decrypt in us-east-1: %v", err)
	}

	// An allow limited to one region allows there, and nowhere else.
	onlyUS := e.newUser(t, "only-us", kpDoc(
		kpIdentity("Allow", []string{"*"}, "kms:*").with(map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": e2eRegion}})))
	if _, err := e.clientIn(e2eRegion, onlyUS.akid, onlyUS.secret, "").Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob}); err != nil {
		t.Fatalf("Decrypt in the one region allowed: %v", err)
	}
	_, err = e.clientIn(e2eRegion2, onlyUS.akid, onlyUS.secret, "").Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob})
	expectAPIErrorCode(t, err, "AccessDeniedException")
}

// afterReadStore runs its hook once, after the next read transaction,
// while armed: a change another caller commits between a background
// job's scan and its update.
type afterReadStore struct {
	store.Store
	hook atomic.Pointer[func()]
}

func (s *afterReadStore) View(ctx context.Context, fn func(store.Tx) error) error {
	err := s.Store.View(ctx, fn)
	if h := s.hook.Swap(nil); h != nil {
		(*h)()
	}
	return err
}

// A primary that became a replica after the automatic rotation found it
// due does not rotate alone: every region keeps the same material, and
// what the old primary encrypts decrypts in every region, before and
// after the new primary rotates.
func TestE2EMultiRegionRotationRacesPrimaryChange(t *testing.T) {
	t.Parallel()
	var st *afterReadStore
	e, _ := newAuditedEnvWith(t, func(s store.Store) store.Store {
		st = &afterReadStore{Store: s}
		return st
	})
	ctx := context.Background()
	us := e.clientIn(e2eRegion, e.creds.ID, e.creds.Secret, "")
	eu := e.clientIn(e2eRegion2, e.creds.ID, e.creds.Secret, "")
	id := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(90)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(91 * 24 * time.Hour)
	move := func() {
		if _, err := us.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(id), PrimaryRegion: aws.String(e2eRegion2)}); err != nil {
			t.Errorf("UpdatePrimaryRegion: %v", err)
		}
	}
	st.hook.Store(&move)
	if _, err := e.svc.RotateDueKeys(ctx); err != nil {
		t.Fatal(err)
	}
	sameMaterial := func() {
		t.Helper()
		a, b := aws.ToString(describeIn(t, us, id).CurrentKeyMaterialId), aws.ToString(describeIn(t, eu, id).CurrentKeyMaterialId)
		if a != b {
			t.Fatalf("current key material %s in us-east-1, %s in eu-west-1", a, b)
		}
	}
	sameMaterial()
	blob, err := us.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.RotateDueKeys(ctx); err != nil || n != 1 {
		t.Fatalf("RotateDueKeys after the move = %d, %v; want the new primary", n, err)
	}
	sameMaterial()
	for region, c := range map[string]*kms.Client{e2eRegion: us, e2eRegion2: eu} {
		if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob}); err != nil {
			t.Errorf("%s: Decrypt of what us-east-1 encrypted: %v", region, err)
		}
	}
}

// A replica in a region the server no longer serves (--regions narrowed
// since it was made) does not become the primary: no call could reach
// the key's primary then, to rotate, replicate, move or delete it.
func TestE2EMultiRegionPrimaryNotMovedToUnservedRegion(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	if _, err := e.client.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion3)}); err != nil {
		t.Fatal(err)
	}
	e = e.reopenEditedWith(t, nil, func(cfg *service.Config) { cfg.Regions = []string{e2eRegion, e2eRegion2} })
	_, err := e.client.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(id), PrimaryRegion: aws.String(e2eRegion3)})
	expectAPIError(t, err, "UnsupportedOperationException", "This server does not serve the Region "+e2eRegion3+".")
	checkConfig(t, e.client, e2eRegion, id, e2eRegion, e2eRegion3)
	if _, err := e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}); err != nil {
		t.Fatalf("the primary, still in us-east-1, rotates: %v", err)
	}
}

// A ReplicateKey whose caller loses kms:CreateKey in the replica's region
// while the call is under way (between the read of its caller for the
// signature and the transaction that makes the replica) makes no replica:
// like CreateKey, the key it creates is decided on the caller as its
// transaction reads it, though kms:ReplicateKey on the primary is still
// allowed.
func TestE2EMultiRegionReplicateDecidedOnTheCallerNow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		tags []types.Tag
		deny string
	}{
		{"kms:CreateKey", nil, "kms:CreateKey"},
		{"kms:TagResource", []types.Tag{{TagKey: aws.String("site"), TagValue: aws.String("dublin")}}, "kms:TagResource"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, h := newHeldEnv(t)
			allowAll := kpDoc(kpIdentity("Allow", []string{"*"}, "kms:*"))
			u := e.newUser(t, "replicator", allowAll)
			id := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
			// The replicator's credential cached, so that the read held is
			// the one of its signature's check.
			if _, err := u.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}); err != nil {
				t.Fatal(err)
			}
			var err error
			duringHeldRead(t, h, func() error {
				_, err = u.kms.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2), Tags: c.tags})
				return err
			}, func() error {
				_, err := e.rootIAM().PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("replicator"), PolicyName: aws.String("p0"),
					PolicyDocument: aws.String(kpDoc(kpIdentity("Allow", []string{"*"}, "kms:*"),
						kpIdentity("Deny", []string{"*"}, c.deny).with(map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": e2eRegion2}})))})
				return err
			})
			expectAPIError(t, err, "AccessDeniedException", "User: arn:aws:iam::"+e2eAccount+":user/replicator is not authorized to perform: "+
				c.deny+" on resource: * with an explicit deny in an identity-based policy")
			_, err = e.regions()[e2eRegion2].DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
			expectAPIErrorCode(t, err, "NotFoundException")
			checkConfig(t, e.client, e2eRegion, id, e2eRegion)
		})
	}
}
