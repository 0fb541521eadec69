package main_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/store/pgtest"
	"github.com/openkms/kms/internal/testsupport"
)

// revocationBound is how long a change made on one node may take to be
// honoured on another whose notifications arrive: docs/cluster.md says
// milliseconds, typically; the caches' maximum age, an hour in these
// tests, plays no part.
const revocationBound = 3 * time.Second

// raceAcrossNodes calls use in several goroutines, over and over, while
// revoke runs (on another node than use's), until every goroutine has
// made a few calls after the first refusal it saw. It fails the test if a
// use was refused later than revocationBound after revoke answered, or
// if a use begun after a refusal succeeded: a node that has honoured a
// change must not go back to what it held before.
func raceAcrossNodes(t *testing.T, what string, use func() error, revoke func() error) {
	t.Helper()
	if err := use(); err != nil {
		t.Fatalf("%s: the use before the change: %v", what, err)
	}
	const workers, after = 4, 20
	var (
		answered  atomic.Int64 // unix nanoseconds; 0 until revoke answers
		refusedAt atomic.Int64 // the first refusal seen, unix nanoseconds
		relapses  atomic.Int32
		wg        sync.WaitGroup
	)
	deadline := time.Now().Add(revocationBound + 5*time.Second)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < after && time.Now().Before(deadline); {
				refused := refusedAt.Load() != 0
				err := use()
				switch {
				case err != nil && refusedAt.CompareAndSwap(0, time.Now().UnixNano()):
				case err == nil && refused:
					relapses.Add(1)
				}
				if refused {
					n++
				}
			}
		}()
	}
	err := revoke()
	answered.Store(time.Now().UnixNano())
	wg.Wait()
	if err != nil {
		t.Fatalf("%s: the revoking call: %v", what, err)
	}
	r := refusedAt.Load()
	switch lag := time.Duration(r - answered.Load()); {
	case r == 0:
		t.Errorf("%s: the other node never refused", what)
	case lag > revocationBound:
		t.Errorf("%s: the other node refused %v after the answer, past the bound %v", what, lag, revocationBound)
	}
	if n := relapses.Load(); n > 0 {
		t.Errorf("%s: %d calls begun after the other node refused succeeded", what, n)
	}
}

// What one node takes away, another node serving the same caller at full
// speed stops allowing within milliseconds, with caches an hour old
// allowed, and never allows again: a fill of its cache racing the change
// notification must not put the old permission back.
func TestClusterRevocationRacesOtherNode(t *testing.T) {
	nodes, _ := startCluster(t, 2, "--cache-max-age", "1h")
	ctx := testCtx(t)
	a, b := nodes[0].client(t), nodes[1].client(t)
	rootID, rootSecret := devCredentials(t, nodes[0].Dir)
	iamA := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(nodes[0].URL),
		Credentials: credentials.NewStaticCredentialsProvider(rootID, rootSecret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	newKey := func() *string {
		out, err := a.CreateKey(ctx, &kms.CreateKeyInput{})
		noErr(t, err, "CreateKey on A")
		return out.KeyMetadata.KeyId
	}
	encrypt := func(c *kms.Client, id *string) func() error {
		return func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
			return err
		}
	}
	// user makes an IAM user allowed kms:* by an identity policy, with a
	// client on B, and returns its access key id.
	user := func(name string) (string, *kms.Client) {
		_, err := iamA.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
		noErr(t, err, "CreateUser")
		_, err = iamA.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("kms"),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)})
		noErr(t, err, "PutUserPolicy")
		ak, err := iamA.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
		noErr(t, err, "CreateAccessKey")
		c := kms.New(kms.Options{Region: nodes[1].Region, BaseEndpoint: aws.String(nodes[1].URL), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(aws.ToString(ak.AccessKey.AccessKeyId), aws.ToString(ak.AccessKey.SecretAccessKey), ""),
			HTTPClient:  testsupport.SDKHTTPClient(nil)})
		var last error
		waitFor(t, revocationBound, "the new user's key on B", func() error { last = encrypt(c, newKey())(); return last })
		return aws.ToString(ak.AccessKey.AccessKeyId), c
	}

	id := newKey()
	raceAcrossNodes(t, "DisableKey", encrypt(b, id), func() error {
		_, err := a.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id})
		return err
	})
	id = newKey()
	raceAcrossNodes(t, "ScheduleKeyDeletion", encrypt(b, id), func() error {
		_, err := a.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)})
		return err
	})

	akid, alice := user("alice")
	id = newKey()
	raceAcrossNodes(t, "DeleteAccessKey", encrypt(alice, id), func() error {
		_, err := iamA.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: aws.String(akid)})
		return err
	})
	_, bob := user("bob")
	raceAcrossNodes(t, "DeleteUserPolicy", encrypt(bob, id), func() error {
		_, err := iamA.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("bob"), PolicyName: aws.String("kms")})
		return err
	})

	// carol may use a key by its key policy alone, then by a grant alone.
	_, carol := user("carol")
	_, err := iamA.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("carol"), PolicyName: aws.String("kms")})
	noErr(t, err, "DeleteUserPolicy carol")
	carolARN := "arn:aws:iam::111122223333:user/carol"
	id = newKey()
	rootOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`
	_, err = a.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: id, Policy: aws.String(rootOnly +
		`,{"Effect":"Allow","Principal":{"AWS":"` + carolARN + `"},"Action":"kms:Encrypt","Resource":"*"}]}`)})
	noErr(t, err, "PutKeyPolicy naming carol")
	waitFor(t, revocationBound, "carol allowed on B by the key policy", encrypt(carol, id))
	raceAcrossNodes(t, "PutKeyPolicy", encrypt(carol, id), func() error {
		_, err := a.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: id, Policy: aws.String(rootOnly + `]}`)})
		return err
	})
	g, err := a.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(carolARN),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	noErr(t, err, "CreateGrant for carol")
	waitFor(t, revocationBound, "carol allowed on B by the grant", encrypt(carol, id))
	raceAcrossNodes(t, "RevokeGrant", encrypt(carol, id), func() error {
		_, err := a.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: id, GrantId: g.GrantId})
		return err
	})
}

// Grants made and revoked at once on both nodes, while the grantee uses
// the key on one of them: each node patches its cached key from every
// change, in whatever order the changes and its own calls come, and ends
// with the grants the database holds: none, once all are revoked, and
// then the one made last.
func TestClusterGrantChurnConverges(t *testing.T) {
	nodes, _ := startCluster(t, 2, "--cache-max-age", "1h")
	ctx := testCtx(t)
	rootID, rootSecret := devCredentials(t, nodes[0].Dir)
	iamA := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(nodes[0].URL),
		Credentials: credentials.NewStaticCredentialsProvider(rootID, rootSecret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	daveARN, dave := userClient(t, iamA, "dave", nodes...)
	roots := []*kms.Client{nodes[0].client(t), nodes[1].client(t)}
	created, err := roots[0].CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	id := created.KeyMetadata.KeyId
	encrypt := func(c *kms.Client) error {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
		return err
	}
	for _, c := range roots {
		noErr(t, encrypt(c), "Encrypt as the root") // each node caches the key
	}

	stop := make(chan struct{})
	var users sync.WaitGroup
	for _, c := range dave {
		users.Add(1)
		go func() {
			defer users.Done()
			for {
				select {
				case <-stop:
					return
				default:
					encrypt(c)
				}
			}
		}()
	}
	var churn sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		churn.Add(1)
		go func() {
			defer churn.Done()
			maker, revoker := roots[i%2], roots[(i/2)%2]
			for range 5 {
				g, err := maker.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(daveARN),
					Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
				if err == nil {
					_, err = revoker.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: id, GrantId: g.GrantId})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	churn.Wait()
	close(stop)
	users.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("grant churn: %v", err)
	}
	for i, c := range dave {
		waitFor(t, revocationBound, fmt.Sprintf("node %d refuses dave once every grant is revoked", i), func() error {
			if err := encrypt(c); apiErrorCode(err) != "AccessDeniedException" {
				return fmt.Errorf("Encrypt: %v", err)
			}
			return nil
		})
	}
	_, err = roots[0].CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(daveARN),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	noErr(t, err, "the last CreateGrant")
	for i, c := range dave {
		waitFor(t, revocationBound, fmt.Sprintf("node %d allows dave by the last grant", i), func() error { return encrypt(c) })
	}
	for i, c := range dave {
		for range 20 {
			if err := encrypt(c); err != nil {
				t.Fatalf("node %d: Encrypt by the last grant, once allowed: %v", i, err)
			}
		}
	}
}

// Quotas hold against calls that race for their last places from two
// nodes on one database: serializable transactions give as many
// successes as there are places left, and LimitExceededException to the
// rest; a named grant asked for on both nodes at once is one grant.
func TestClusterQuotasRaced(t *testing.T) {
	nodes, _ := startCluster(t, 2, "--key-quota", "10")
	ctx := testCtx(t)
	clients := []*kms.Client{nodes[0].client(t), nodes[1].client(t)}
	const n = 10
	race := func(what string, places int, call func(c *kms.Client, i int) error) {
		t.Helper()
		var mu sync.Mutex
		var wg sync.WaitGroup
		wins, codes := 0, map[string]int{}
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := call(clients[i%2], i)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else {
					codes[apiErrorCode(err)+" "+err.Error()]++
				}
			}()
		}
		wg.Wait()
		if wins != places || !allLimitExceeded(codes, n-places) {
			t.Errorf("%s: %d calls succeeded, errors %v; want %d and %d LimitExceededException", what, wins, codes, places, n-places)
		}
	}

	for range 5 {
		_, err := clients[0].CreateKey(ctx, &kms.CreateKeyInput{})
		noErr(t, err, "CreateKey")
	}
	race("CreateKey", 5, func(c *kms.Client, _ int) error { _, err := c.CreateKey(ctx, &kms.CreateKeyInput{}); return err })
	keys, err := clients[1].ListKeys(ctx, &kms.ListKeysInput{})
	noErr(t, err, "ListKeys")
	if len(keys.Keys) != 10 {
		t.Fatalf("%d keys, want 10", len(keys.Keys))
	}
	id := keys.Keys[0].KeyId

	for i := range 45 {
		_, err := clients[0].CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/a%d", i)), TargetKeyId: id})
		noErr(t, err, "CreateAlias")
	}
	race("CreateAlias", 5, func(c *kms.Client, i int) error {
		_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/b%d", i)), TargetKeyId: id})
		return err
	})
	rotations := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := clients[i%2].RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				rotations++
			case apiErrorCode(err) != "LimitExceededException":
				t.Errorf("RotateKeyOnDemand: %v", err)
			}
		}()
	}
	wg.Wait()
	if rotations != 25 {
		t.Errorf("%d on-demand rotations succeeded, want 25", rotations)
	}

	grants := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := clients[i%2].CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, Name: aws.String("once"),
				GranteePrincipal: aws.String("arn:aws:iam::111122223333:root"), Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
			if err != nil {
				t.Errorf("named CreateGrant: %v", err)
				return
			}
			grants[i] = aws.ToString(g.GrantId)
		}()
	}
	wg.Wait()
	list, err := clients[0].ListGrants(ctx, &kms.ListGrantsInput{KeyId: id})
	noErr(t, err, "ListGrants")
	if len(list.Grants) != 1 {
		t.Fatalf("%d grants after the named CreateGrant race, want 1", len(list.Grants))
	}
	for _, g := range grants {
		if g != aws.ToString(list.Grants[0].GrantId) {
			t.Errorf("a call answered grant %s; the one made is %s", g, aws.ToString(list.Grants[0].GrantId))
		}
	}
}

// allLimitExceeded reports whether the errors counted in codes (by code
// and message) are want LimitExceededException errors.
func allLimitExceeded(codes map[string]int, want int) bool {
	n := 0
	for c, k := range codes {
		if !strings.HasPrefix(c, "LimitExceededException ") {
			return false
		}
		n += k
	}
	return n == want
}

// With its change notifications held up (the database process that
// delivers them to the node stopped, as on a half-open connection), a
// node still honours a change made on another node within
// --cache-max-age: its cached key, grants and credentials are read again
// once that old, long before it gives up on the silent connection (5 s)
// and empties its caches.
func TestClusterLostNotificationsBoundedByCacheAge(t *testing.T) {
	const maxAge = time.Second
	nodes, dsn := startCluster(t, 2, "--cache-max-age", maxAge.String())
	ctx := testCtx(t)
	a, b := nodes[0].client(t), nodes[1].client(t)
	rootID, rootSecret := devCredentials(t, nodes[0].Dir)
	iamA := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(nodes[0].URL),
		Credentials: credentials.NewStaticCredentialsProvider(rootID, rootSecret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	encrypt := func(c *kms.Client, id *string) error {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
		return err
	}
	newKey := func() *string {
		out, err := a.CreateKey(ctx, &kms.CreateKeyInput{})
		noErr(t, err, "CreateKey on A")
		return out.KeyMetadata.KeyId
	}
	pids := waitListening(t, dsn, 2) // the listening connections, to stop
	disabled, granted, shared := newKey(), newKey(), newKey()
	_, alice := userClient(t, iamA, "alice", nodes[1])
	_, err := iamA.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("kms"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)})
	noErr(t, err, "PutUserPolicy")
	carolARN, carol := userClient(t, iamA, "carol", nodes[1])
	g, err := a.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: granted, GranteePrincipal: aws.String(carolARN),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	noErr(t, err, "CreateGrant")
	// B caches the keys, the grant and alice's credential.
	waitFor(t, 3*time.Second, "B serves the keys, the grant and alice", func() error {
		return errors.Join(encrypt(b, disabled), encrypt(carol[0], granted), encrypt(alice[0], shared))
	})

	for _, pid := range pids {
		noErr(t, syscall.Kill(int(pid), syscall.SIGSTOP), "stop the listening connection %d", pid)
		defer syscall.Kill(int(pid), syscall.SIGCONT)
	}

	_, err = a.DisableKey(ctx, &kms.DisableKeyInput{KeyId: disabled})
	noErr(t, err, "DisableKey on A")
	_, err = a.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: granted, GrantId: g.GrantId})
	noErr(t, err, "RevokeGrant on A")
	_, err = iamA.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("kms")})
	noErr(t, err, "DeleteUserPolicy on A")
	start := time.Now()
	for _, c := range []struct {
		what string
		call func() error
		code string
	}{
		{"the disabled key", func() error { return encrypt(b, disabled) }, "DisabledException"},
		{"the revoked grant", func() error { return encrypt(carol[0], granted) }, "AccessDeniedException"},
		{"alice without her policy", func() error { return encrypt(alice[0], shared) }, "AccessDeniedException"},
	} {
		waitFor(t, maxAge+time.Second-time.Since(start), c.what+" refused on B", func() error {
			if err := c.call(); apiErrorCode(err) != c.code {
				return fmt.Errorf("Encrypt: %v", err)
			}
			return nil
		})
	}
}

// A change to a key judged again in its own transaction reads what the
// decision needs (grants, alias names for kms:ResourceAliases) in that
// transaction, never waiting for another connection: with a pool of one,
// a read on another connection would wait for the one the transaction
// holds, for as long as the call may last.
func TestClusterKeyChangeJudgedWithinItsTransaction(t *testing.T) {
	dsn := pgtest.Start(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	s := &server{proc: startProc(t, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--storage", dsn+sep+"pool_max_conns=1")}
	m := s.waitOutput(listeningRE, startTimeout)
	s.URL, s.Region, s.Dir = m[1], m[2], m[3]
	waitHealthy(t, s)
	ctx := testCtx(t)
	root := s.client(t)
	rootID, rootSecret := devCredentials(t, s.Dir)
	iamc := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(rootID, rootSecret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	annARN, ann := userClient(t, iamc, "ann", s)
	bobARN, bob := userClient(t, iamc, "bob", s)
	k, err := root.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	id := k.KeyMetadata.KeyId
	_, err = root.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/shared"), TargetKeyId: id})
	noErr(t, err, "CreateAlias")
	_, err = root.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: id, Policy: aws.String(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
		{"Effect":"Allow","Principal":{"AWS":"` + annARN + `"},"Action":"kms:UpdateKeyDescription","Resource":"*",
		 "Condition":{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"alias/shared"}}}]}`)})
	noErr(t, err, "PutKeyPolicy")
	_, err = root.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(bobARN),
		Operations: []types.GrantOperation{types.GrantOperationCreateGrant, types.GrantOperationEncrypt}})
	noErr(t, err, "CreateGrant for bob")

	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = ann[0].UpdateKeyDescription(callCtx, &kms.UpdateKeyDescriptionInput{KeyId: id, Description: aws.String("by ann")})
	noErr(t, err, "UpdateKeyDescription allowed by an alias condition")
	_, err = bob[0].CreateGrant(callCtx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(bobARN),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	noErr(t, err, "CreateGrant allowed by a grant")
}
