package e2e_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// regional is e's root client in each region of the tests.
type regional map[string]*kms.Client

func (e *kmsEnv) regions() regional {
	r := regional{}
	for _, name := range e2eRegions {
		r[name] = e.clientIn(name, e.creds.ID, e.creds.Secret, "")
	}
	return r
}

func arnIn(region, id string) string {
	return "arn:aws:kms:" + region + ":" + e2eAccount + ":key/" + id
}

func describeIn(t *testing.T, c *kms.Client, id string) *types.KeyMetadata {
	t.Helper()
	out, err := c.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeKey %s: %v", id, err)
	}
	return out.KeyMetadata
}

// checkConfig checks a key's multi-Region configuration as DescribeKey
// in region shows it.
func checkConfig(t *testing.T, c *kms.Client, region, id, primary string, replicas ...string) {
	t.Helper()
	m := describeIn(t, c, id)
	cfg := m.MultiRegionConfiguration
	if !aws.ToBool(m.MultiRegion) || cfg == nil {
		t.Fatalf("%s: MultiRegion %v, configuration %+v", region, aws.ToBool(m.MultiRegion), cfg)
	}
	wantType := types.MultiRegionKeyTypeReplica
	if region == primary {
		wantType = types.MultiRegionKeyTypePrimary
	}
	if cfg.MultiRegionKeyType != wantType || aws.ToString(m.Arn) != arnIn(region, id) {
		t.Errorf("%s: type %s, ARN %s; want %s, %s", region, cfg.MultiRegionKeyType, aws.ToString(m.Arn), wantType, arnIn(region, id))
	}
	if aws.ToString(cfg.PrimaryKey.Region) != primary || aws.ToString(cfg.PrimaryKey.Arn) != arnIn(primary, id) {
		t.Errorf("%s: primary %s %s, want %s", region, aws.ToString(cfg.PrimaryKey.Region), aws.ToString(cfg.PrimaryKey.Arn), primary)
	}
	var got []string
	for _, r := range cfg.ReplicaKeys {
		got = append(got, aws.ToString(r.Region))
		if aws.ToString(r.Arn) != arnIn(aws.ToString(r.Region), id) {
			t.Errorf("%s: replica ARN %s", region, aws.ToString(r.Arn))
		}
	}
	slices.Sort(got)
	slices.Sort(replicas)
	if !slices.Equal(got, replicas) {
		t.Errorf("%s: replicas %v, want %v", region, got, replicas)
	}
}

// The walkthrough of issue: a multi-Region key created in us-east-1,
// replicated to eu-west-1 and ap-southeast-2, used across regions, its
// primary moved, rotated, and deleted.
func TestE2EMultiRegionKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, eu, ap := c[e2eRegion], c[e2eRegion2], c[e2eRegion3]

	created, err := us.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), Description: aws.String("global orders")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(created.KeyMetadata.KeyId)
	if !strings.HasPrefix(id, "mrk-") || len(id) != 36 {
		t.Fatalf("multi-Region key id %q", id)
	}
	checkConfig(t, us, e2eRegion, id, e2eRegion)

	// Replicate into two regions, each with its own description and tags.
	rep, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2),
		Description: aws.String("eu copy"), Tags: []types.Tag{{TagKey: aws.String("site"), TagValue: aws.String("dublin")}}})
	if err != nil {
		t.Fatal(err)
	}
	rm := rep.ReplicaKeyMetadata
	if aws.ToString(rm.KeyId) != id || aws.ToString(rm.Arn) != arnIn(e2eRegion2, id) || rm.KeyState != types.KeyStateEnabled ||
		aws.ToString(rm.Description) != "eu copy" || rm.MultiRegionConfiguration.MultiRegionKeyType != types.MultiRegionKeyTypeReplica {
		t.Fatalf("ReplicaKeyMetadata %+v", rm)
	}
	if got, want := aws.ToString(rm.CurrentKeyMaterialId), aws.ToString(describeIn(t, eu, id).CurrentKeyMaterialId); got == "" || got != want ||
		got != aws.ToString(created.KeyMetadata.CurrentKeyMaterialId) {
		t.Fatalf("ReplicaKeyMetadata.CurrentKeyMaterialId %q; DescribeKey of the replica says %q, of the primary %q", got, want, aws.ToString(created.KeyMetadata.CurrentKeyMaterialId))
	}
	if aws.ToString(rep.ReplicaPolicy) != kpDefaultPolicy || len(rep.ReplicaTags) != 1 {
		t.Fatalf("ReplicaPolicy %q, ReplicaTags %+v", aws.ToString(rep.ReplicaPolicy), rep.ReplicaTags)
	}
	if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(arnIn(e2eRegion, id)), ReplicaRegion: aws.String(e2eRegion3)}); err != nil {
		t.Fatal(err)
	}
	for region, cl := range map[string]*kms.Client{e2eRegion: us, e2eRegion2: eu, e2eRegion3: ap} {
		checkConfig(t, cl, region, id, e2eRegion, e2eRegion2, e2eRegion3)
	}
	if d := aws.ToString(describeIn(t, us, id).Description); d != "global orders" {
		t.Errorf("primary description %q", d)
	}
	tags, err := us.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)})
	if err != nil || len(tags.Tags) != 0 {
		t.Errorf("the primary has the replica's tags: %+v, %v", tags, err)
	}

	// Ciphertext from one region decrypts in another, both ways, by id
	// or by the key in the blob alone.
	pt := []byte("order 42")
	ec := map[string]string{"order": "42"}
	fromUS, err := us.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt, EncryptionContext: ec})
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*kms.Client{eu, ap} {
		out, err := cl.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: fromUS.CiphertextBlob, EncryptionContext: ec})
		if err != nil || !bytes.Equal(out.Plaintext, pt) {
			t.Fatalf("Decrypt in a replica region: %v", err)
		}
	}
	out, err := eu.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: fromUS.CiphertextBlob, EncryptionContext: ec, KeyId: aws.String(id)})
	if err != nil || aws.ToString(out.KeyId) != arnIn(e2eRegion2, id) {
		t.Fatalf("Decrypt in eu-west-1 names %s, %v; want the replica", aws.ToString(out.KeyId), err)
	}
	fromEU, err := eu.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := us.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: fromEU.CiphertextBlob}); err != nil || !bytes.Equal(out.Plaintext, pt) {
		t.Fatalf("Decrypt of a replica's ciphertext by the primary: %v", err)
	}

	// Aliases and grants belong to their region.
	if _, err := us.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/orders"), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	_, err = eu.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/orders")})
	expectAPIError(t, err, "NotFoundException", "Alias arn:aws:kms:eu-west-1:"+e2eAccount+":alias/orders is not found.")
	if _, err := eu.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/orders"), TargetKeyId: aws.String(id)}); err != nil {
		t.Fatalf("the same alias name in another region: %v", err)
	}
	g, err := us.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String("arn:aws:iam::" + e2eAccount + ":root"),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	if err != nil {
		t.Fatal(err)
	}
	if gs, err := eu.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(id)}); err != nil || len(gs.Grants) != 0 {
		t.Errorf("the replica lists the primary's grants: %+v, %v", gs, err)
	}
	if gs, err := us.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(id)}); err != nil || len(gs.Grants) != 1 || aws.ToString(gs.Grants[0].GrantId) != aws.ToString(g.GrantId) {
		t.Errorf("the primary's grants: %+v, %v", gs, err)
	}

	// Rotation is the primary's, and every replica follows it.
	_, err = eu.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "UnsupportedOperationException", arnIn(e2eRegion2, id)+" is not a multi-region primary key.")
	_, err = eu.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "UnsupportedOperationException", arnIn(e2eRegion2, id)+" is not a multi-region primary key.")
	before := aws.ToString(describeIn(t, eu, id).CurrentKeyMaterialId)
	if _, err := us.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id), RotationPeriodInDays: aws.Int32(90)}); err != nil {
		t.Fatal(err)
	}
	for region, cl := range map[string]*kms.Client{e2eRegion2: eu, e2eRegion3: ap} {
		m := describeIn(t, cl, id)
		if aws.ToString(m.CurrentKeyMaterialId) == before || aws.ToString(m.CurrentKeyMaterialId) != aws.ToString(describeIn(t, us, id).CurrentKeyMaterialId) {
			t.Errorf("%s: material %s after the primary rotated (was %s)", region, aws.ToString(m.CurrentKeyMaterialId), before)
		}
		rots, err := cl.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)})
		if err != nil || len(rots.Rotations) != 1 || rots.Rotations[0].RotationType != types.RotationTypeOnDemand {
			t.Errorf("%s: ListKeyRotations %+v, %v", region, rots, err)
		}
		st, err := cl.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)})
		if err != nil || !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != 90 {
			t.Errorf("%s: GetKeyRotationStatus %+v, %v", region, st, err)
		}
	}
	rotated, err := us.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt})
	if err != nil {
		t.Fatal(err)
	}
	for _, blob := range [][]byte{rotated.CiphertextBlob, fromUS.CiphertextBlob} {
		if out, err := ap.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ecFor(blob, rotated, ec)}); err != nil || !bytes.Equal(out.Plaintext, pt) {
			t.Fatalf("ap-southeast-2 decrypts old and new ciphertexts of the rotated key: %v", err)
		}
	}
	// Automatic rotation runs from the primary and reaches every region.
	e.clock.Advance(91 * 24 * time.Hour)
	if n, err := e.svc.RotateDueKeys(ctx); err != nil || n != 1 {
		t.Fatalf("RotateDueKeys = %d, %v; want the primary only", n, err)
	}
	if rots, err := ap.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)}); err != nil || len(rots.Rotations) != 2 {
		t.Fatalf("after an automatic rotation the replica lists %+v, %v", rots, err)
	}

	// The primary moves to eu-west-1; the old primary is a replica, and
	// only the new primary may replicate.
	if _, err := us.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(id), PrimaryRegion: aws.String(e2eRegion2)}); err != nil {
		t.Fatal(err)
	}
	for region, cl := range map[string]*kms.Client{e2eRegion: us, e2eRegion2: eu, e2eRegion3: ap} {
		checkConfig(t, cl, region, id, e2eRegion2, e2eRegion, e2eRegion3)
	}
	_, err = us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("us-west-2")})
	expectAPIError(t, err, "UnsupportedOperationException", arnIn(e2eRegion, id)+" is not a multi-region primary key.")
	if _, err := eu.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String("us-west-2")}); err != nil {
		t.Fatal(err)
	}
	west := e.clientIn("us-west-2", e.creds.ID, e.creds.Secret, "")
	if out, err := west.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: rotated.CiphertextBlob}); err != nil || !bytes.Equal(out.Plaintext, pt) {
		t.Fatalf("a replica made after rotations decrypts: %v", err)
	}
	if _, err := eu.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}); err != nil {
		t.Fatalf("the new primary rotates: %v", err)
	}
	if _, err := us.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)}); err == nil {
		t.Fatal("the old primary still rotates")
	}

	// Deletion: the primary waits for its replicas.
	sched, err := eu.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
	if err != nil {
		t.Fatal(err)
	}
	if sched.KeyState != types.KeyStatePendingReplicaDeletion || sched.DeletionDate != nil {
		t.Fatalf("ScheduleKeyDeletion of a primary with replicas: %+v", sched)
	}
	if m := describeIn(t, eu, id); m.KeyState != types.KeyStatePendingReplicaDeletion || aws.ToInt32(m.PendingDeletionWindowInDays) != 7 || m.DeletionDate != nil {
		t.Fatalf("DescribeKey of the waiting primary: state %s, window %d, date %v", m.KeyState, aws.ToInt32(m.PendingDeletionWindowInDays), m.DeletionDate)
	}
	_, err = eu.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: pt})
	expectAPIError(t, err, "KMSInvalidStateException", arnIn(e2eRegion2, id)+" is pending replica deletion.")
	// What a key pending deletion refuses, the waiting primary refuses
	// too (reference §4.4: one column for both states).
	other, err := eu.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eu.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/moving"), TargetKeyId: other.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	keyID := aws.String(id)
	rotsBefore, err := eu.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: keyID})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"TagResource": func() error {
			_, err := eu.TagResource(ctx, &kms.TagResourceInput{KeyId: keyID, Tags: []types.Tag{{TagKey: aws.String("a"), TagValue: aws.String("b")}}})
			return err
		},
		"UntagResource": func() error {
			_, err := eu.UntagResource(ctx, &kms.UntagResourceInput{KeyId: keyID, TagKeys: []string{"a"}})
			return err
		},
		"UpdateKeyDescription": func() error {
			_, err := eu.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: keyID, Description: aws.String("x")})
			return err
		},
		"CreateAlias": func() error {
			_, err := eu.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/waiting"), TargetKeyId: keyID})
			return err
		},
		"UpdateAlias": func() error {
			_, err := eu.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/moving"), TargetKeyId: keyID})
			return err
		},
		"EnableKeyRotation": func() error {
			_, err := eu.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: keyID})
			return err
		},
		"DisableKeyRotation": func() error {
			_, err := eu.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: keyID})
			return err
		},
		"RotateKeyOnDemand": func() error {
			_, err := eu.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: keyID})
			return err
		},
	} {
		t.Run("waiting primary refuses "+name, func(t *testing.T) {
			expectAPIError(t, call(), "KMSInvalidStateException", arnIn(e2eRegion2, id)+" is pending replica deletion.")
		})
	}
	if st, err := eu.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: keyID}); err != nil || st.KeyRotationEnabled || st.NextRotationDate != nil {
		t.Fatalf("GetKeyRotationStatus of the waiting primary: %+v, %v; want rotation off while deletion is pending", st, err)
	}
	if rots, err := eu.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: keyID}); err != nil || len(rots.Rotations) != len(rotsBefore.Rotations) {
		t.Fatalf("the waiting primary lists %d rotations, %v; want the %d made before", len(rots.Rotations), err, len(rotsBefore.Rotations))
	}
	if d := describeIn(t, eu, id); aws.ToString(d.Description) == "x" {
		t.Fatal("UpdateKeyDescription changed the waiting primary")
	}
	tagsNow, err := eu.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: keyID})
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tagsNow.Tags {
		if aws.ToString(tag.TagKey) == "a" {
			t.Fatal("TagResource changed the waiting primary")
		}
	}
	al, err := eu.ListAliases(ctx, &kms.ListAliasesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range al.Aliases {
		if name := aws.ToString(a.AliasName); name == "alias/waiting" || name == "alias/moving" && aws.ToString(a.TargetKeyId) != aws.ToString(other.KeyMetadata.KeyId) {
			t.Fatalf("an alias was pointed at the waiting primary: %s", name)
		}
	}
	var lastGone time.Time // the last replica's deletion date
	for _, cl := range []*kms.Client{us, ap, west} {
		out, err := cl.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
		if err != nil {
			t.Fatal(err)
		}
		if d := aws.ToTime(out.DeletionDate); d.After(lastGone) {
			lastGone = d
		}
	}
	e.clock.Advance(7*24*time.Hour + time.Minute)
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 3 {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want the 3 replicas", n, err)
	}
	_, err = us.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "NotFoundException", "Key '"+arnIn(e2eRegion, id)+"' does not exist")
	m := describeIn(t, eu, id)
	if m.KeyState != types.KeyStatePendingDeletion || m.DeletionDate == nil || len(m.MultiRegionConfiguration.ReplicaKeys) != 0 {
		t.Fatalf("the primary after its replicas went: state %s, date %v, replicas %+v", m.KeyState, m.DeletionDate, m.MultiRegionConfiguration.ReplicaKeys)
	}
	if want := lastGone.Add(7 * 24 * time.Hour); !sameInstant(want, m.DeletionDate) {
		t.Errorf("the primary's deletion date %v, want 7 days after its last replica's deletion date (%v)", m.DeletionDate, want)
	}
	e.clock.Advance(7*24*time.Hour + time.Minute)
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want the primary", n, err)
	}
	_, err = eu.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	expectAPIErrorCode(t, err, "NotFoundException")
}

// ecFor is the encryption context a ciphertext of the test was made with.
func ecFor(blob []byte, plain *kms.EncryptOutput, ec map[string]string) map[string]string {
	if bytes.Equal(blob, plain.CiphertextBlob) {
		return nil
	}
	return ec
}

// Refusals of ReplicateKey and UpdatePrimaryRegion change nothing.
func TestE2EMultiRegionRefusals(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, eu := c[e2eRegion], c[e2eRegion2]
	mrk := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	single := e.newKey(t)
	if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(mrk), ReplicaRegion: aws.String(e2eRegion2)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		client    *kms.Client
		in        *kms.ReplicateKeyInput
		code, msg string
	}{
		{"a single-Region key", us, &kms.ReplicateKeyInput{KeyId: aws.String(single), ReplicaRegion: aws.String(e2eRegion2)},
			"UnsupportedOperationException", arnIn(e2eRegion, single) + " is not a multi-region key."},
		{"a replica", eu, &kms.ReplicateKeyInput{KeyId: aws.String(mrk), ReplicaRegion: aws.String(e2eRegion3)},
			"UnsupportedOperationException", arnIn(e2eRegion2, mrk) + " is not a multi-region primary key."},
		{"into its own region", us, &kms.ReplicateKeyInput{KeyId: aws.String(mrk), ReplicaRegion: aws.String(e2eRegion)},
			"ValidationException", "The replica Region us-east-1 must differ from the primary key's Region."},
		{"into a region that has one", us, &kms.ReplicateKeyInput{KeyId: aws.String(mrk), ReplicaRegion: aws.String(e2eRegion2)},
			"AlreadyExistsException", "The multi-Region key " + arnIn(e2eRegion, mrk) + " already has a replica in eu-west-1: " + arnIn(e2eRegion2, mrk)},
		{"into a region not served", us, &kms.ReplicateKeyInput{KeyId: aws.String(mrk), ReplicaRegion: aws.String("sa-east-1")},
			"UnsupportedOperationException", "This server does not serve the Region sa-east-1."},
		{"a malformed region", us, &kms.ReplicateKeyInput{KeyId: aws.String(mrk), ReplicaRegion: aws.String("Mars")},
			"ValidationException", "1 validation error detected: Value 'Mars' at 'replicaRegion' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\\d+$"},
		{"an unknown key", us, &kms.ReplicateKeyInput{KeyId: aws.String("mrk-0123456789ab0def0123456789abcdef"), ReplicaRegion: aws.String(e2eRegion3)},
			"NotFoundException", "Key '" + arnIn(e2eRegion, "mrk-0123456789ab0def0123456789abcdef") + "' does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.ReplicateKey(ctx, tc.in)
			expectAPIError(t, err, tc.code, tc.msg)
			checkConfig(t, us, e2eRegion, mrk, e2eRegion, e2eRegion2)
			_, err = c[e2eRegion3].DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(mrk)})
			expectAPIErrorCode(t, err, "NotFoundException")
		})
	}
	_, err := us.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(mrk), PrimaryRegion: aws.String(e2eRegion3)})
	expectAPIError(t, err, "NotFoundException", "Key '"+arnIn(e2eRegion3, mrk)+"' does not exist")
	_, err = eu.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(mrk), PrimaryRegion: aws.String(e2eRegion)})
	expectAPIError(t, err, "UnsupportedOperationException", arnIn(e2eRegion2, mrk)+" is not a multi-region primary key.")
	_, err = us.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(single), PrimaryRegion: aws.String(e2eRegion2)})
	expectAPIError(t, err, "UnsupportedOperationException", arnIn(e2eRegion, single)+" is not a multi-region key.")
	checkConfig(t, eu, e2eRegion2, mrk, e2eRegion, e2eRegion2)

	// Both keys must be Enabled: a disabled replica does not become the
	// primary, nor does a disabled primary hand over.
	if _, err := eu.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(mrk)}); err != nil {
		t.Fatal(err)
	}
	_, err = us.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(mrk), PrimaryRegion: aws.String(e2eRegion2)})
	expectAPIError(t, err, "DisabledException", arnIn(e2eRegion2, mrk)+" is disabled.")
	checkConfig(t, us, e2eRegion, mrk, e2eRegion, e2eRegion2)
	if _, err := eu.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(mrk)}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(mrk)}); err != nil {
		t.Fatal(err)
	}
	_, err = us.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: aws.String(mrk), PrimaryRegion: aws.String(e2eRegion2)})
	expectAPIError(t, err, "DisabledException", arnIn(e2eRegion, mrk)+" is disabled.")
	checkConfig(t, eu, e2eRegion2, mrk, e2eRegion, e2eRegion2)
}

// A single-Region key exists in its own region only, by id or ARN, and
// its ciphertexts do not decrypt elsewhere.
func TestE2ESingleRegionKeyIsInvisibleElsewhere(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, eu := c[e2eRegion], c[e2eRegion2]
	id := e.newKey(t)
	blob := e.encrypt(t, id, []byte("local"), nil).CiphertextBlob
	_, err := eu.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "NotFoundException", "Key '"+arnIn(e2eRegion2, id)+"' does not exist")
	_, err = eu.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arnIn(e2eRegion, id))})
	expectAPIError(t, err, "NotFoundException", "Invalid arn us-east-1")
	_, err = eu.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
	expectAPIErrorCode(t, err, "NotFoundException")
	if _, err = eu.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob}); err == nil {
		t.Fatal("a ciphertext of a us-east-1 key decrypts in eu-west-1")
	}
	keys, err := eu.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil || len(keys.Keys) != 0 {
		t.Fatalf("eu-west-1 lists %+v, %v", keys, err)
	}
	keys, err = us.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil || len(keys.Keys) != 1 || aws.ToString(keys.Keys[0].KeyArn) != arnIn(e2eRegion, id) {
		t.Fatalf("us-east-1 lists %+v, %v", keys, err)
	}
	// A key created in eu-west-1 is eu-west-1's.
	created, err := eu.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if arn := aws.ToString(created.KeyMetadata.Arn); !strings.HasPrefix(arn, "arn:aws:kms:eu-west-1:") || aws.ToBool(created.KeyMetadata.MultiRegion) || created.KeyMetadata.MultiRegionConfiguration != nil {
		t.Fatalf("a key created in eu-west-1: %+v", created.KeyMetadata)
	}
}

// Imported material into a multi-Region key: the replica has none until
// the same material is imported into it.
func TestE2EMultiRegionImportedMaterial(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, eu := c[e2eRegion], c[e2eRegion2]
	out, err := us.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), Origin: types.OriginTypeExternal})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.KeyMetadata.KeyId)
	_, err = us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2)})
	expectAPIError(t, err, "KMSInvalidStateException", arnIn(e2eRegion, id)+" is pending import.")
	material := mustRandom(t, 32)
	importInto(t, us, id, material)
	if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2)}); err != nil {
		t.Fatal(err)
	}
	if m := describeIn(t, eu, id); m.KeyState != types.KeyStatePendingImport || m.Origin != types.OriginTypeExternal {
		t.Fatalf("the replica of an EXTERNAL key: state %s, origin %s", m.KeyState, m.Origin)
	}
	blob, err := us.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("imported")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eu.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob}); err == nil {
		t.Fatal("a replica without material decrypts")
	}
	if err := tryImport(t, eu, id, mustRandom(t, 32)); err == nil {
		t.Fatal("other material was imported into the replica")
	} else {
		expectAPIErrorCode(t, err, "IncorrectKeyMaterialException")
	}
	importInto(t, eu, id, material)
	if dec, err := eu.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob}); err != nil || string(dec.Plaintext) != "imported" {
		t.Fatalf("the replica with its material: %v", err)
	}
}

// tryImport imports material into key id through c, under a fresh
// RSAES_OAEP_SHA_256 token, without an expiry.
func tryImport(t *testing.T, c *kms.Client, id string, material []byte) error {
	t.Helper()
	ctx := context.Background()
	p, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: aws.String(id),
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	if err != nil {
		t.Fatalf("GetParametersForImport: %v", err)
	}
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(id), ImportToken: p.ImportToken,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, material), ExpirationModel: notExpiring})
	return err
}

func importInto(t *testing.T, c *kms.Client, id string, material []byte) {
	t.Helper()
	if err := tryImport(t, c, id, material); err != nil {
		t.Fatalf("ImportKeyMaterial %s: %v", id, err)
	}
}

// New imported material for a multi-Region key, and on-demand rotation to
// it, are refused, and change nothing.
func TestE2EMultiRegionNewImportedMaterialRefused(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	us := e.regions()[e2eRegion]
	out, err := us.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), Origin: types.OriginTypeExternal})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.KeyMetadata.KeyId)
	importInto(t, us, id, mustRandom(t, 32))
	before := aws.ToString(describeIn(t, us, id).CurrentKeyMaterialId)
	msg := "New key material for the multi-Region key " + arnIn(e2eRegion, id) + " is not supported by this server: re-import its current key material."
	p, err := us.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: aws.String(id),
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	if err != nil {
		t.Fatal(err)
	}
	_, err = us.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(id), ImportToken: p.ImportToken,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, mustRandom(t, 32)),
		ExpirationModel:      notExpiring, ImportType: types.ImportTypeNewKeyMaterial})
	expectAPIError(t, err, "UnsupportedOperationException", msg)
	_, err = us.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	expectAPIError(t, err, "UnsupportedOperationException", msg)
	if after := aws.ToString(describeIn(t, us, id).CurrentKeyMaterialId); after != before {
		t.Fatalf("the material changed from %s to %s", before, after)
	}
}

// What one region hands out does not work in another region of the same
// multi-Region key: an import token, or a grant token.
func TestE2EMultiRegionTokensStayInTheirRegion(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, eu := c[e2eRegion], c[e2eRegion2]
	out, err := us.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), Origin: types.OriginTypeExternal})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.KeyMetadata.KeyId)
	material := mustRandom(t, 32)
	importInto(t, us, id, material)
	if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2)}); err != nil {
		t.Fatal(err)
	}
	// An import token of the primary's region, used for the replica.
	p, err := us.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: aws.String(id),
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eu.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(id), ImportToken: p.ImportToken,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, material), ExpirationModel: notExpiring})
	expectAPIErrorCode(t, err, "InvalidImportTokenException")
	if m := describeIn(t, eu, id); m.KeyState != types.KeyStatePendingImport {
		t.Fatalf("the replica is %s after a refused import", m.KeyState)
	}

	// A grant token of the primary gives nothing on the replica.
	importInto(t, eu, id, material)
	user := e.newUser(t, "grantee")
	g, err := us.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String("arn:aws:iam::" + e2eAccount + ":user/grantee"),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	if err != nil {
		t.Fatal(err)
	}
	inUS := e.clientIn(e2eRegion, user.akid, user.secret, "")
	inEU := e.clientIn(e2eRegion2, user.akid, user.secret, "")
	if _, err := inUS.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x"), GrantTokens: []string{aws.ToString(g.GrantToken)}}); err != nil {
		t.Fatalf("the grantee in the grant's region: %v", err)
	}
	_, err = inEU.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arnIn(e2eRegion2, id)), Plaintext: []byte("x"), GrantTokens: []string{aws.ToString(g.GrantToken)}})
	expectAPIErrorCode(t, err, "AccessDeniedException")
}

// Multi-Region signing and HMAC keys: a signature or MAC made in one
// region verifies in another, and the replica's public key is the
// primary's.
func TestE2EMultiRegionSigningAndMACKeys(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.regions()
	us, ap := c[e2eRegion], c[e2eRegion3]
	msg := []byte("shipment 7")

	sig, err := us.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	mac, err := us.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*types.KeyMetadata{sig.KeyMetadata, mac.KeyMetadata} {
		if _, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: k.KeyId, ReplicaRegion: aws.String(e2eRegion3)}); err != nil {
			t.Fatal(err)
		}
	}
	signed, err := us.Sign(ctx, &kms.SignInput{KeyId: sig.KeyMetadata.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	if err != nil {
		t.Fatal(err)
	}
	v, err := ap.Verify(ctx, &kms.VerifyInput{KeyId: sig.KeyMetadata.KeyId, Message: msg, Signature: signed.Signature, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	if err != nil || !v.SignatureValid {
		t.Fatalf("Verify in the replica's region: %+v, %v", v, err)
	}
	pubUS, err := us.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: sig.KeyMetadata.KeyId})
	if err != nil {
		t.Fatal(err)
	}
	pubAP, err := ap.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: sig.KeyMetadata.KeyId})
	if err != nil || !bytes.Equal(pubUS.PublicKey, pubAP.PublicKey) {
		t.Fatalf("the replica's public key differs from the primary's: %v", err)
	}
	tag, err := ap.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: mac.KeyMetadata.KeyId, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	if err != nil {
		t.Fatal(err)
	}
	vm, err := us.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: mac.KeyMetadata.KeyId, Message: msg, Mac: tag.Mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	if err != nil || !vm.MacValid {
		t.Fatalf("VerifyMac in the primary's region of a MAC made in the replica's: %+v, %v", vm, err)
	}
}

// The condition keys of creating and replicating a multi-Region key: a
// primary is created with kms:MultiRegionKeyType PRIMARY, and AWS's
// guardrail against the lockout bypass (deny kms:CreateKey and
// kms:PutKeyPolicy when kms:BypassPolicyLockoutSafetyCheck is true) holds
// for ReplicateKey too, whose replica is a key created in its Region.
func TestE2EMultiRegionCreateConditions(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()

	primaryOnly := e.kpUser(t, "pat", kpDoc(kpIdentity("Allow", []string{"*"}, "kms:CreateKey").with(
		map[string]any{"StringEquals": map[string]any{"kms:MultiRegionKeyType": "PRIMARY"}})))
	if _, err := primaryOnly.kms.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}); err != nil {
		t.Errorf("CreateKey of a multi-Region primary allowed by kms:MultiRegionKeyType: %v", err)
	}
	_, err := primaryOnly.kms.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIErrorCode(t, err, "AccessDeniedException")

	guarded := e.kpUser(t, "mallory", kpDoc(
		kpIdentity("Allow", []string{"*"}, "kms:*"),
		kpIdentity("Deny", []string{"*"}, "kms:CreateKey", "kms:PutKeyPolicy").with(
			map[string]any{"Bool": map[string]any{"kms:BypassPolicyLockoutSafetyCheck": "true"}})))
	out, err := guarded.kms.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.KeyMetadata.KeyId)
	onlyMallory := kpDoc(kpAllow(guarded.arn, "kms:Decrypt"))
	_, err = guarded.kms.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2),
		Policy: aws.String(onlyMallory), BypassPolicyLockoutSafetyCheck: true})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	if _, err := e.regions()[e2eRegion2].DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}); err == nil {
		t.Fatal("a refused ReplicateKey made the replica")
	}
	// Without the bypass, the lockout check refuses the same policy, and
	// a policy the account can manage is accepted.
	_, err = guarded.kms.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2),
		Policy: aws.String(onlyMallory)})
	expectAPIError(t, err, "MalformedPolicyDocumentException", kpMsgLockout)
	if _, err := guarded.kms.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: aws.String(id), ReplicaRegion: aws.String(e2eRegion2),
		Policy: aws.String(kpDoc(kpRootStmt()))}); err != nil {
		t.Fatalf("ReplicateKey with a policy the account manages: %v", err)
	}
}
