package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/testsupport"
)

// raceRevocation runs use in several goroutines, over and over, while
// revoke runs, and fails the test if a use that began once revoke had
// answered succeeded. It stops once every goroutine has made a few
// calls after the answer.
func raceRevocation(t *testing.T, round int, use func() error, revoke func() error) {
	t.Helper()
	const workers, after = 4, 3
	var answered atomic.Bool
	var wg sync.WaitGroup
	var late atomic.Int32
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < after; {
				began := answered.Load()
				err := use()
				if !began {
					continue
				}
				n++
				if err == nil {
					late.Add(1)
				}
			}
		}()
	}
	err := revoke()
	answered.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("round %d: the revoking call: %v", round, err)
	}
	if n := late.Load(); n > 0 {
		t.Errorf("round %d: %d calls begun after the revoking call answered succeeded", round, n)
	}
}

// Whatever takes a permission away takes it away for every call begun
// after its answer, however many calls race it on the way: none of them
// leaves what it read before the change in a cache.
func TestE2ERevocationRacesUse(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	const rounds = 3
	encrypt := func(c *kms.Client, key string) func() error {
		return func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
			return err
		}
	}
	name := func(what string, round int) string { return fmt.Sprintf("%s-%d", what, round) }
	for round := range rounds {
		key := e.newKey(t)
		raceRevocation(t, round, encrypt(e.client, key), func() error {
			_, err := e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(key)})
			return err
		})
		key = e.newKey(t)
		raceRevocation(t, round, encrypt(e.client, key), func() error {
			_, err := e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(key), PendingWindowInDays: aws.Int32(7)})
			return err
		})

		// A key policy that no longer names the user.
		u := e.newUser(t, name("policy", round))
		key = e.newKey(t)
		e.kpPutKeyPolicy(t, e.client, key, kpDoc(kpRootStmt(), kpAllow(userARNOf(u.name), "kms:Encrypt")), false)
		raceRevocation(t, round, encrypt(u.kms, key), func() error {
			_, err := e.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(key), Policy: aws.String(kpDoc(kpRootStmt()))})
			return err
		})

		// A grant revoked, and one retired.
		u = e.newUser(t, name("grantee", round))
		key = e.newKey(t)
		for _, retire := range []bool{false, true} {
			g, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(userARNOf(u.name)),
				Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
			if err != nil {
				t.Fatal(err)
			}
			// The retired grant's grantee carries its token.
			use := encrypt(u.kms, key)
			if retire {
				use = func() error {
					_, err := u.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x"), GrantTokens: []string{aws.ToString(g.GrantToken)}})
					return err
				}
			}
			raceRevocation(t, round, use, func() error {
				if retire {
					_, err := e.client.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(key), GrantId: g.GrantId})
					return err
				}
				_, err := e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(key), GrantId: g.GrantId})
				return err
			})
		}

		// An access key deleted or made inactive, an identity policy
		// deleted.
		key = e.newKey(t)
		u = e.newUser(t, name("deleted-key", round), allowKMS)
		raceRevocation(t, round, encrypt(u.kms, key), func() error {
			_, err := root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.name), AccessKeyId: aws.String(u.akid)})
			return err
		})
		u = e.newUser(t, name("inactive-key", round), allowKMS)
		raceRevocation(t, round, encrypt(u.kms, key), func() error {
			_, err := root.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(u.name), AccessKeyId: aws.String(u.akid), Status: iamtypes.StatusTypeInactive})
			return err
		})
		u = e.newUser(t, name("policy-deleted", round), allowKMS)
		raceRevocation(t, round, encrypt(u.kms, key), func() error {
			_, err := root.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(u.name), PolicyName: aws.String("p0")})
			return err
		})

		// A role's policy deleted under its session.
		out := e.assumeKMSRole(t, name("role", round), "session")
		session := e.clientWith(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
		raceRevocation(t, round, encrypt(session, key), func() error {
			_, err := root.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name("role", round)), PolicyName: aws.String("kms")})
			return err
		})

		// An alias deleted, and one moved: a call through it begun after
		// the answer uses the new key.
		alias := "alias/" + name("race", round)
		if _, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
		other := e.newKey(t)
		raceRevocation(t, round, func() error {
			out, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(alias), Plaintext: []byte("x")})
			if err == nil && strings.HasSuffix(aws.ToString(out.KeyId), other) {
				return errors.New("the new target")
			}
			return err
		}, func() error {
			_, err := e.client.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(other)})
			return err
		})
		raceRevocation(t, round, encrypt(e.client, alias), func() error {
			_, err := e.client.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(alias)})
			return err
		})
	}
}

// Quotas hold against calls that race for their last places: of the
// calls made at once, as many succeed as there are places left, and the
// rest get LimitExceededException. A named grant made at once by many
// calls is one grant.
func TestE2EQuotasRaced(t *testing.T) {
	t.Parallel()
	e := openKMSEnvWith(t, filepath.Join(t.TempDir(), "kms.db"), mustRandom(t, 32), testsupport.NewClock(e2eStart),
		func(c *service.Config) { c.KeyQuota = 20 })
	ctx := context.Background()
	const n = 10
	expect := func(what string, wins int, codes map[string]int, want int) {
		t.Helper()
		if wins != want || codes["LimitExceededException"] != n-want {
			t.Errorf("%s: %d calls succeeded, errors %v; want %d and %d LimitExceededException", what, wins, codes, want, n-want)
		}
	}

	// Keys: 15 of 20 made, 10 more asked for at once.
	for range 15 {
		e.newKey(t)
	}
	wins, codes := concurrently(n, func(int) error { _, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{}); return err })
	expect("CreateKey", wins, codes, 5)
	key := e.listAllKeys(t)
	if len(key) != 20 {
		t.Errorf("%d keys, want 20", len(key))
	}
	id := aws.ToString(key[0].KeyId)

	// Aliases of one key: 45 of 50.
	for i := range 45 {
		if _, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/a%d", i)), TargetKeyId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
	}
	wins, codes = concurrently(n, func(i int) error {
		_, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/b%d", i)), TargetKeyId: aws.String(id)})
		return err
	})
	expect("CreateAlias", wins, codes, 5)
	if l := e.listAllAliases(t, &kms.ListAliasesInput{KeyId: aws.String(id)}); len(l) != 50 {
		t.Errorf("%d aliases of the key, want 50", len(l))
	}

	// Tags of one key: 45 of 50.
	if _, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: nTags(45, "a")}); err != nil {
		t.Fatal(err)
	}
	wins, codes = concurrently(n, func(i int) error {
		_, err := e.client.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: nTags(1, fmt.Sprintf("b%d-", i))})
		return err
	})
	if wins != 5 || codes["TagException"] != n-5 {
		t.Errorf("TagResource: %d calls succeeded, errors %v; want 5 and 5 TagException", wins, codes)
	}
	if tags, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)}); err != nil || len(tags.Tags) != 50 {
		t.Errorf("tags of the key: %d (%v), want 50", len(tags.Tags), err)
	}

	// On-demand rotations: 25 per key.
	wins, codes = concurrently(30, func(int) error {
		_, err := e.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
		return err
	})
	if wins != 25 || codes["LimitExceededException"] != 5 {
		t.Errorf("RotateKeyOnDemand: %d calls succeeded, errors %v; want 25 and 5 LimitExceededException", wins, codes)
	}
	if r, err := e.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)}); err != nil || len(r.Rotations) != 25 {
		t.Errorf("rotations of the key: %d (%v), want 25", len(r.Rotations), err)
	}

	// Grants of one key: 49,995 of 50,000 counted.
	grantee := "arn:aws:iam::" + e2eAccount + ":root"
	other := aws.ToString(key[1].KeyId)
	err := e.store.Update(ctx, func(tx store.Tx) error {
		return tx.Put(keyrepo.GrantCountKey(e2eRegion, other), []byte("49995"))
	})
	if err != nil {
		t.Fatal(err)
	}
	wins, codes = concurrently(n, func(int) error {
		_, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(other), GranteePrincipal: aws.String(grantee), Operations: grOps(types.GrantOperationEncrypt)})
		return err
	})
	expect("CreateGrant", wins, codes, 5)

	// The same named grant asked for at once: one grant, whose id every
	// call answers.
	ids := make([]string, n)
	wins, codes = concurrently(n, func(i int) error {
		out, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(id), GranteePrincipal: aws.String(grantee), Name: aws.String("once"),
			Operations: grOps(types.GrantOperationDecrypt)})
		if err == nil {
			ids[i] = aws.ToString(out.GrantId)
		}
		return err
	})
	grants := grList(t, e.client, &kms.ListGrantsInput{KeyId: aws.String(id)})
	if wins != n || len(grants) != 1 {
		t.Fatalf("named CreateGrant at once: %d succeeded (%v), %d grants", wins, codes, len(grants))
	}
	for _, g := range ids {
		if g != aws.ToString(grants[0].GrantId) {
			t.Errorf("a call answered grant %s; the one made is %s", g, aws.ToString(grants[0].GrantId))
		}
	}
}

// A key's state changed by calls made at once ends in one state that
// every part of the key agrees on: a key pending deletion has a date and
// is deleted at it; one that is not keeps no date, outlives the date and
// is used again once enabled.
func TestE2EKeyStateChangesRaced(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	ids := make([]string, 6)
	for i := range ids {
		id := e.newKey(t)
		ids[i] = id
		concurrently(9, func(i int) error {
			var err error
			switch i % 3 {
			case 0:
				_, err = e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(id), PendingWindowInDays: aws.Int32(7)})
			case 1:
				_, err = e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)})
			default:
				_, err = e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
			}
			return err
		})
	}
	pending := map[string]bool{}
	for _, id := range ids {
		m := describeIn(t, e.client, id)
		pending[id] = m.KeyState == types.KeyStatePendingDeletion
		if pending[id] != (m.DeletionDate != nil) {
			t.Errorf("key %s is %s with deletion date %v", id, m.KeyState, m.DeletionDate)
		}
	}
	e.clock.Advance(8 * 24 * time.Hour)
	if _, err := e.svc.DeleteExpiredKeys(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		_, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)})
		if pending[id] {
			expectAPIErrorCode(t, err, "NotFoundException")
			continue
		}
		if err != nil {
			t.Errorf("EnableKey of a key not pending deletion: %v", err)
		}
		if _, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}); err != nil {
			t.Errorf("Encrypt with a key whose deletion was cancelled: %v", err)
		}
	}
}

// One import token used by calls made at once with two materials: the
// first import gives the key its material, the same material imported
// again succeeds, and the other is refused.
func TestE2EImportRacedWithOneToken(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newExternalKey(t)
	p := e.importParams(t, id, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	materials := [][]byte{mustRandom(t, 32), mustRandom(t, 32)}
	wrapped := [][]byte{wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, materials[0]),
		wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, materials[1])}
	got := make([]string, 8)
	wins, codes := concurrently(len(got), func(i int) error {
		out, err := e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: aws.String(id), ImportToken: p.ImportToken,
			EncryptedKeyMaterial: wrapped[i%2], ExpirationModel: notExpiring})
		if err == nil {
			got[i] = aws.ToString(out.KeyMaterialId)
		}
		return err
	})
	if wins != len(got)/2 || codes["IncorrectKeyMaterialException"] != len(got)/2 {
		t.Fatalf("%d imports succeeded, errors %v; want one material's %d", wins, codes, len(got)/2)
	}
	current := aws.ToString(describeIn(t, e.client, id).CurrentKeyMaterialId)
	for i, m := range got {
		if (m != "") != (got[i%2] != "") || (m != "" && m != current) {
			t.Errorf("import %d answered material %q; the key's is %s", i, m, current)
		}
	}
}

// A call that read the store just before a revocation, and fills the
// cache only after the revocation answered, leaves nothing stale there:
// the next call sees the revocation. The change runs between the read
// of a key, an alias or a credential and its caching.
func TestE2EFillRacesRevocation(t *testing.T) {
	t.Parallel()
	var st *afterReadStore
	e, _ := newAuditedEnvWith(t, func(s store.Store) store.Store {
		st = &afterReadStore{Store: s}
		return st
	})
	ctx := context.Background()
	between := func(change func() error) {
		h := func() {
			if err := change(); err != nil {
				t.Errorf("the change between the read and the fill: %v", err)
			}
		}
		st.hook.Store(&h)
	}
	ran := func(what string) {
		t.Helper()
		if st.hook.Load() != nil {
			t.Fatalf("%s read nothing from the store", what)
		}
	}

	// A key read cold by Encrypt, disabled before it is cached.
	key := e.newKey(t)
	if _, err := e.client.ListKeys(ctx, &kms.ListKeysInput{}); err != nil { // the root's credential is cached
		t.Fatal(err)
	}
	between(func() error {
		_, err := e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(key)})
		return err
	})
	if _, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("the Encrypt that read the key before DisableKey: %v", err)
	}
	ran("Encrypt")
	_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
	expectAPIErrorCode(t, err, "DisabledException")

	// An alias read cold, deleted before it is cached.
	key = e.newKey(t)
	if _, err := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/fill"), TargetKeyId: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); err != nil { // the key is cached
		t.Fatal(err)
	}
	between(func() error {
		_, err := e.client.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String("alias/fill")})
		return err
	})
	if _, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/fill"), Plaintext: []byte("x")}); err != nil {
		t.Fatalf("the Encrypt that read the alias before DeleteAlias: %v", err)
	}
	ran("Encrypt through the alias")
	_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/fill"), Plaintext: []byte("x")})
	expectAPIErrorCode(t, err, "NotFoundException")

	// A credential read cold (a new user's), its access key deleted, or
	// its policy, before it is cached.
	for _, revoke := range []struct {
		name string
		do   func(u *testUser) error
		code string
	}{
		{"DeleteAccessKey", func(u *testUser) error {
			_, err := e.rootIAM().DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(u.name), AccessKeyId: aws.String(u.akid)})
			return err
		}, "UnrecognizedClientException"},
		{"DeleteUserPolicy", func(u *testUser) error {
			_, err := e.rootIAM().DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(u.name), PolicyName: aws.String("p0")})
			return err
		}, "AccessDeniedException"},
	} {
		u := e.newUser(t, "fill-"+strings.ToLower(revoke.name), allowKMS)
		between(func() error { return revoke.do(u) })
		if _, err := u.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")}); err != nil {
			t.Fatalf("%s: the Encrypt that read the credential before the change: %v", revoke.name, err)
		}
		ran(revoke.name)
		_, err = u.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
		expectAPIErrorCode(t, err, revoke.code)
	}
}
