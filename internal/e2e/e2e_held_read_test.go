package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/testsupport"
)

// newHeldEnv is an audited environment whose service and directory read
// through a HoldStore.
func newHeldEnv(t *testing.T) (*kmsEnv, *testsupport.HoldStore) {
	t.Helper()
	var h *testsupport.HoldStore
	e, _ := newAuditedEnvWith(t, func(s store.Store) store.Store {
		h = testsupport.NewHoldStore(s)
		return h
	})
	return e, h
}

// duringHeldRead makes call with its first read of the store held, and
// answers revoke while it is held (the read has found what it found),
// then lets the read go and waits for call, whatever it answers: it
// began before the revocation.
func duringHeldRead(t *testing.T, h *testsupport.HoldStore, call func() error, revoke func() error) {
	t.Helper()
	h.Arm()
	done := make(chan error, 1)
	go func() { done <- call() }()
	<-h.Held
	if err := revoke(); err != nil {
		t.Errorf("the revocation: %v", err)
	}
	close(h.Release)
	<-done
}

// A read of a key, an alias or a credential under way when a revocation
// of that same entry is answered is not cached: on a server of its own,
// where entries never expire, it would hold the revoked access until a
// restart. Each case holds the read of the one entry the call misses in
// the cache, lands the revocation, and calls again.
func TestE2EHeldReadOvertakenByARevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	encryptAs := func(c *kms.Client, key string) func() error {
		return func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
			return err
		}
	}
	// dropKey has the next call read key from the store.
	dropKey := func(t *testing.T, e *kmsEnv, key string) {
		t.Helper()
		if _, err := e.client.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(key), Description: aws.String("read me again")}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("the key's grant revoked", func(t *testing.T) {
		t.Parallel()
		e, h := newHeldEnv(t)
		g := e.newUser(t, "grantee")
		key := e.newKey(t)
		grant, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(key), GranteePrincipal: aws.String(userARNOf("grantee")),
			Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
		if err != nil {
			t.Fatal(err)
		}
		enc := encryptAs(g.kms, key)
		if err := enc(); err != nil { // the grantee's credential cached
			t.Fatal(err)
		}
		dropKey(t, e, key)
		duringHeldRead(t, h, enc, func() error {
			_, err := e.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(key), GrantId: grant.GrantId})
			return err
		})
		expectAPIErrorCode(t, enc(), "AccessDeniedException")
	})

	t.Run("the key disabled", func(t *testing.T) {
		t.Parallel()
		e, h := newHeldEnv(t)
		u := e.newUser(t, "user", allowKMS)
		key := e.newKey(t)
		enc := encryptAs(u.kms, key)
		if err := enc(); err != nil {
			t.Fatal(err)
		}
		dropKey(t, e, key)
		duringHeldRead(t, h, enc, func() error {
			_, err := e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(key)})
			return err
		})
		expectAPIErrorCode(t, enc(), "DisabledException")
	})

	t.Run("the user's policy deleted", func(t *testing.T) {
		t.Parallel()
		e, h := newHeldEnv(t)
		u := e.newUser(t, "user", allowKMS)
		key := e.newKey(t)
		e.encrypt(t, key, []byte("warm"), nil) // the key cached
		duringHeldRead(t, h, encryptAs(u.kms, key), func() error {
			_, err := e.rootIAM().DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("user"), PolicyName: aws.String("p0")})
			return err
		})
		expectAPIErrorCode(t, encryptAs(u.kms, key)(), "AccessDeniedException")
	})

	t.Run("the access key made inactive", func(t *testing.T) {
		t.Parallel()
		e, h := newHeldEnv(t)
		u := e.newUser(t, "user", allowKMS)
		key := e.newKey(t)
		e.encrypt(t, key, []byte("warm"), nil)
		duringHeldRead(t, h, encryptAs(u.kms, key), func() error {
			_, err := e.rootIAM().UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("user"), AccessKeyId: aws.String(u.akid), Status: iamtypes.StatusTypeInactive})
			return err
		})
		expectAPIErrorCode(t, encryptAs(u.kms, key)(), "UnrecognizedClientException")
	})

	t.Run("the session's role policy deleted", func(t *testing.T) {
		t.Parallel()
		e, h := newHeldEnv(t)
		c := e.assumeKMSRole(t, "worker", "job-1").Credentials
		session := e.clientWith(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
		key := e.newKey(t)
		e.encrypt(t, key, []byte("warm"), nil)
		duringHeldRead(t, h, encryptAs(session, key), func() error {
			_, err := e.rootIAM().DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("worker"), PolicyName: aws.String("kms")})
			return err
		})
		expectAPIErrorCode(t, encryptAs(session, key)(), "AccessDeniedException")
	})

	t.Run("the alias moved", func(t *testing.T) {
		t.Parallel()
		e, h := newHeldEnv(t)
		from, to := e.newKey(t), e.newKey(t)
		e.createAlias(t, "alias/moving", from)
		e.encrypt(t, from, []byte("warm"), nil)
		e.encrypt(t, to, []byte("warm"), nil)
		duringHeldRead(t, h, encryptAs(e.client, "alias/moving"), func() error {
			_, err := e.client.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String("alias/moving"), TargetKeyId: aws.String(to)})
			return err
		})
		out, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/moving"), Plaintext: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(out.KeyId); got != e.keyARN(to) {
			t.Errorf("alias/moving after UpdateAlias encrypts under %s, want %s", got, e.keyARN(to))
		}
	})

	// A caller that comes once the revocation is answered does not share
	// the read of the key still under way: it is refused before that
	// read lands.
	t.Run("a shared read begun before the key was disabled", func(t *testing.T) {
		t.Parallel()
		e, h := newHeldEnv(t)
		u, v := e.newUser(t, "first", allowKMS), e.newUser(t, "second", allowKMS)
		key := e.newKey(t)
		for _, c := range []*kms.Client{u.kms, v.kms} {
			if err := encryptAs(c, key)(); err != nil {
				t.Fatal(err)
			}
		}
		dropKey(t, e, key)
		h.Arm()
		first := make(chan error, 1)
		go func() { first <- encryptAs(u.kms, key)() }()
		<-h.Held
		if _, err := e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
		second := make(chan error, 1)
		go func() { second <- encryptAs(v.kms, key)() }()
		select {
		case err := <-second:
			expectAPIErrorCode(t, err, "DisabledException")
		case <-time.After(10 * time.Second): // a guard, not a wait: the answer comes at once
			t.Error("the call after DisableKey waits for the read begun before it")
		}
		close(h.Release)
		<-first
	})
}
