package main_test

// Several kms server nodes on one PostgreSQL database, as a cluster is run:
// the same binary, the same root key (a shared --dev data directory), and
// records shared through the database.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
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
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
	"github.com/openkms/kms/internal/testsupport"
)

// startCluster starts n dev nodes on one fresh database and one data
// directory (which holds the root key and credentials they share), and
// waits until each serves and listens for the others' changes. extra
// flags go to every node.
func startCluster(t *testing.T, n int, extra ...string) ([]*server, string) {
	t.Helper()
	dsn := pgtest.Start(t)
	dir := t.TempDir()
	nodes := make([]*server, n)
	// Every node is started before any is waited for: they race to create
	// the root key, the account and the schema, as a cluster's nodes do.
	for i := range nodes {
		args := append([]string{"server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir, "--storage", dsn}, extra...)
		nodes[i] = &server{proc: startProc(t, baseEnv(), args...)}
	}
	for _, s := range nodes {
		m := s.waitOutput(listeningRE, startTimeout)
		s.URL, s.Region, s.Dir = m[1], m[2], m[3]
		waitHealthy(t, s)
	}
	// Each node hears of the others' changes from the test's first call.
	waitListening(t, dsn, n)
	return nodes, dsn
}

// clusterEvents returns the audit records of every node, from the
// database, after checking that every chain verifies.
func clusterEvents(t *testing.T, dsn string) []map[string]any {
	t.Helper()
	code, out, errOut := runToExit(t, baseEnv(), "audit", "verify", "--storage", dsn)
	if code != 0 {
		t.Fatalf("kms audit verify --storage: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runToExit(t, baseEnv(), "audit", "events", "--storage", dsn, "--json")
	if code != 0 {
		t.Fatalf("kms audit events --storage: exit %d\n%s", code, errOut)
	}
	var events []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event line %q: %v", line, err)
		}
		events = append(events, ev)
	}
	return events
}

// waitSigned waits until every chain of the database at dsn that holds
// records has a signed digest, as its node writes within seconds of its
// first record: a node killed before, or a backup taken before, leaves a
// chain with no digest, which kms audit verify reports once it is older
// than audit.ChainDigestGrace.
func waitSigned(t *testing.T, dsn string) {
	t.Helper()
	ctx := testCtx(t)
	pool, err := pgxpool.New(ctx, dsn)
	noErr(t, err, "connect to %s", dsn)
	defer pool.Close()
	waitFor(t, 20*time.Second, "every chain signed", func() error {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT chain FROM kms_audit_records EXCEPT SELECT chain FROM kms_audit_digests) c`).Scan(&n)
		if err == nil && n > 0 {
			err = fmt.Errorf("%d chains with records have no digest", n)
		}
		return err
	})
}

// waitListening waits until n connections listen for the change
// notifications of the database at dsn, one per node, and returns the ids
// of their server processes. A node serves before it listens (it
// connects beside its start): a change made before is not announced to
// it, and its first listening empties its caches.
func waitListening(t *testing.T, dsn string, n int) []int32 {
	t.Helper()
	ctx := testCtx(t)
	pool, err := pgxpool.New(ctx, dsn)
	noErr(t, err, "connect to %s", dsn)
	defer pool.Close()
	var pids []int32
	waitFor(t, 10*time.Second, fmt.Sprintf("%d listening connections", n), func() error {
		rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`)
		if err == nil {
			pids, err = pgx.CollectRows(rows, pgx.RowTo[int32])
		}
		if err == nil && len(pids) != n {
			err = fmt.Errorf("%d listening connections", len(pids))
		}
		return err
	})
	return pids
}

// countEvents counts the successful calls of name in events.
func countEvents(events []map[string]any, name string) int {
	n := 0
	for _, ev := range events {
		if ev["eventName"] == name && ev["errorCode"] == nil {
			n++
		}
	}
	return n
}

func TestClusterNodesShareKeys(t *testing.T) {
	nodes, dsn := startCluster(t, 3, "--cache-max-age", "1h")
	ctx := testCtx(t)
	a, b, c := nodes[0].client(t), nodes[1].client(t), nodes[2].client(t)

	for _, s := range nodes {
		if !strings.Contains(s.stdout.String(), "records in PostgreSQL at") {
			t.Errorf("a node does not say it runs on PostgreSQL:\n%s", s.stdout)
		}
	}

	created, err := a.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("made on A")})
	noErr(t, err, "CreateKey on A")
	id := created.KeyMetadata.KeyId
	enc, err := b.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("across nodes")})
	noErr(t, err, "Encrypt on B")
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	noErr(t, err, "Decrypt on C")
	if string(dec.Plaintext) != "across nodes" || aws.ToString(dec.KeyId) != aws.ToString(created.KeyMetadata.Arn) {
		t.Fatalf("C decrypted %q with %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}

	// B and C have the key cached now. Disabling it on A must reach them
	// through the database's notifications: the cache age is an hour.
	_, err = a.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id})
	noErr(t, err, "DisableKey on A")
	for _, n := range []*kms.Client{b, c} {
		waitFor(t, 3*time.Second, "Encrypt refused after DisableKey on another node", func() error {
			_, err := n.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
			if apiErrorCode(err) == "DisabledException" {
				return nil
			}
			return fmt.Errorf("Encrypt: %v", err)
		})
	}
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id})
	noErr(t, err, "EnableKey on C")
	waitFor(t, 3*time.Second, "Encrypt allowed again on A", func() error {
		_, err := a.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
		return err
	})

	// A key policy change on one node is enforced by the others.
	_, err = b.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: id, PolicyName: aws.String("default"), Policy: aws.String(`{
		"Version": "2012-10-17",
		"Statement": [
			{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
			{"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:Decrypt", "Resource": "*"}
		]}`)})
	noErr(t, err, "PutKeyPolicy on B")
	waitFor(t, 3*time.Second, "Decrypt denied on A after PutKeyPolicy on B", func() error {
		_, err := a.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		if apiErrorCode(err) == "AccessDeniedException" {
			return nil
		}
		return fmt.Errorf("Decrypt: %v", err)
	})

	// Rotation on one node: the others decrypt with the new version at once,
	// and still decrypt the old ciphertext.
	k2, err := b.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey on B")
	old, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: k2.KeyMetadata.KeyId, Plaintext: []byte("v1")})
	noErr(t, err, "Encrypt on C")
	_, err = a.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: k2.KeyMetadata.KeyId})
	noErr(t, err, "RotateKeyOnDemand on A")
	newer, err := a.Encrypt(ctx, &kms.EncryptInput{KeyId: k2.KeyMetadata.KeyId, Plaintext: []byte("v2")})
	noErr(t, err, "Encrypt on A after rotation")
	for _, n := range []*kms.Client{b, c} {
		for _, blob := range [][]byte{old.CiphertextBlob, newer.CiphertextBlob} {
			waitFor(t, 3*time.Second, "decrypt across a rotation", func() error {
				_, err := n.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
				return err
			})
		}
	}

	// Every node recorded its calls in its own chain in the database, and
	// the chains verify.
	events := clusterEvents(t, dsn)
	if countEvents(events, "CreateKey") != 2 || countEvents(events, "DisableKey") != 1 || countEvents(events, "PutKeyPolicy") != 1 {
		t.Fatalf("the trail has %d CreateKey, %d DisableKey and %d PutKeyPolicy records, want 2, 1, 1",
			countEvents(events, "CreateKey"), countEvents(events, "DisableKey"), countEvents(events, "PutKeyPolicy"))
	}
}

func TestClusterAccessKeyDeletionReachesEveryNode(t *testing.T) {
	nodes, _ := startCluster(t, 2, "--cache-max-age", "1h")
	ctx := testCtx(t)
	rootID, rootSecret := devCredentials(t, nodes[0].Dir)
	iamA := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(nodes[0].URL),
		Credentials: credentials.NewStaticCredentialsProvider(rootID, rootSecret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	_, err := iamA.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")})
	noErr(t, err, "CreateUser")
	_, err = iamA.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("kms"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)})
	noErr(t, err, "PutUserPolicy")
	ak, err := iamA.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	noErr(t, err, "CreateAccessKey")
	alice := kms.New(kms.Options{Region: nodes[1].Region, BaseEndpoint: aws.String(nodes[1].URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(aws.ToString(ak.AccessKey.AccessKeyId), aws.ToString(ak.AccessKey.SecretAccessKey), ""), HTTPClient: testsupport.SDKHTTPClient(nil)})
	waitFor(t, 3*time.Second, "alice's new key works on B", func() error {
		_, err := alice.ListKeys(ctx, &kms.ListKeysInput{})
		return err
	})
	_, err = iamA.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("alice"), AccessKeyId: ak.AccessKey.AccessKeyId})
	noErr(t, err, "DeleteAccessKey on A")
	waitFor(t, 3*time.Second, "the deleted access key refused on B", func() error {
		_, err := alice.ListKeys(ctx, &kms.ListKeysInput{})
		if apiErrorCode(err) == "UnrecognizedClientException" {
			return nil
		}
		return fmt.Errorf("ListKeys: %v", err)
	})
}

func TestClusterConcurrentCreateAlias(t *testing.T) {
	nodes, _ := startCluster(t, 2)
	ctx := testCtx(t)
	a, b := nodes[0].client(t), nodes[1].client(t)
	k1, err := a.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	k2, err := b.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	for round := range 20 {
		name := fmt.Sprintf("alias/race-%d", round)
		var wins, exists atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range []*kms.Client{a, b} {
			key := []*string{k1.KeyMetadata.KeyId, k2.KeyMetadata.KeyId}[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: key})
				switch {
				case err == nil:
					wins.Add(1)
				case apiErrorCode(err) == "AlreadyExistsException":
					exists.Add(1)
				default:
					t.Errorf("CreateAlias %s: %v", name, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || exists.Load() != 1 {
			t.Fatalf("%s: %d successes and %d AlreadyExistsException, want exactly one of each", name, wins.Load(), exists.Load())
		}
		// Both nodes agree on the one target.
		var targets []string
		for _, c := range []*kms.Client{a, b} {
			d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(name)})
			noErr(t, err, "DescribeKey %s", name)
			targets = append(targets, aws.ToString(d.KeyMetadata.KeyId))
		}
		if targets[0] != targets[1] {
			t.Fatalf("%s names %s on A and %s on B", name, targets[0], targets[1])
		}
	}
}

// TestClusterSurvivesKill spreads a load of writes and encryptions over three
// nodes, kills one with SIGKILL in the middle, and checks that every
// acknowledged operation is there on the survivors, which keep answering.
func TestClusterSurvivesKill(t *testing.T) {
	nodes, dsn := startCluster(t, 3)
	ctx := testCtx(t)
	clients := []*kms.Client{nodes[0].client(t), nodes[1].client(t), nodes[2].client(t)}
	shared, err := clients[0].CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")

	type acked struct {
		keyID string // a key created, or the key of blob
		blob  []byte
		plain []byte
	}
	var (
		mu       sync.Mutex
		acks     []acked
		killed   atomic.Bool
		afterOK  [3]atomic.Int32 // successes per node after the kill
		survErrs atomic.Int32
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 6 {
		node := w % 3
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[node]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var a acked
				var err error
				if i%2 == 0 {
					var out *kms.CreateKeyOutput
					out, err = c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(fmt.Sprintf("w%d-%d", w, i))})
					if err == nil {
						a.keyID = aws.ToString(out.KeyMetadata.KeyId)
					}
				} else {
					a.plain = []byte(fmt.Sprintf("worker %d op %d", w, i))
					var out *kms.EncryptOutput
					out, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: shared.KeyMetadata.KeyId, Plaintext: a.plain})
					if err == nil {
						a.keyID, a.blob = aws.ToString(out.KeyId), out.CiphertextBlob
					}
				}
				wasKilled := killed.Load()
				if err != nil {
					if node != 1 && wasKilled {
						survErrs.Add(1)
						t.Errorf("node %d failed after node 1 was killed: %v", node, err)
					}
					if node == 1 {
						return // the killed node: connection refused from now on
					}
					continue
				}
				mu.Lock()
				acks = append(acks, a)
				mu.Unlock()
				if wasKilled {
					afterOK[node].Add(1)
				}
			}
		}()
	}
	waitFor(t, 20*time.Second, "load under way", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acks) < 60 {
			return errors.New("fewer than 60 operations acknowledged")
		}
		return nil
	})
	// Killed before it signed its chain, the node would leave a chain
	// that verify reports as having no digest.
	waitSigned(t, dsn)
	nodes[1].kill()
	killed.Store(true)
	waitFor(t, 20*time.Second, "survivors keep answering", func() error {
		if afterOK[0].Load() < 10 || afterOK[2].Load() < 10 {
			return fmt.Errorf("after the kill, %d and %d operations on the survivors", afterOK[0].Load(), afterOK[2].Load())
		}
		return nil
	})
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for i, a := range acks {
		c := clients[[]int{0, 2}[i%2]]
		if a.blob == nil {
			if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(a.keyID)}); err != nil {
				t.Fatalf("acknowledged CreateKey %s is gone: %v", a.keyID, err)
			}
			continue
		}
		out, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: a.blob})
		if err != nil || !bytes.Equal(out.Plaintext, a.plain) {
			t.Fatalf("acknowledged ciphertext does not decrypt: %v", err)
		}
	}
	// Every acknowledged call has its record, the killed node's included,
	// and every chain verifies.
	events := clusterEvents(t, dsn)
	var created, encrypted int
	for _, a := range acks {
		if a.blob == nil {
			created++
		} else {
			encrypted++
		}
	}
	if n := countEvents(events, "CreateKey"); n < created+1 {
		t.Fatalf("%d CreateKey records for %d acknowledged", n, created+1)
	}
	if n := countEvents(events, "Encrypt"); n < encrypted {
		t.Fatalf("%d Encrypt records for %d acknowledged", n, encrypted)
	}
	t.Logf("%d operations acknowledged, node 1 killed mid-load, %d audit records", len(acks), len(events))
}

// waitFor retries check until it returns nil, failing the test with the last
// error after timeout. It polls: the condition is reached by another
// process, with nothing to wait on.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		<-tick.C
	}
}

// A node with another root key cannot join: it could open none of the
// cluster's key material.
func TestClusterRefusesOtherRootKey(t *testing.T) {
	_, dsn := startCluster(t, 1)
	code, _, stderr := runToExit(t, baseEnv("KMS_ROOT_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
		"server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--storage", dsn)
	if code == 0 || !strings.Contains(stderr, "the root key is not the one this key store was created with") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

// clientIn is s's client for another region.
func (s *server) clientIn(t *testing.T, region string) *kms.Client {
	t.Helper()
	return kms.New(s.client(t).Options(), func(o *kms.Options) { o.Region = region })
}

// A multi-Region key in a cluster, with a different node serving each
// region: what one node changes in one region, the nodes serving the
// other regions see at once, through the database's notifications (the
// cache age is an hour).
func TestClusterMultiRegion(t *testing.T) {
	nodes, dsn := startCluster(t, 3, "--cache-max-age", "1h")
	ctx := testCtx(t)
	us, eu, ap := nodes[0].clientIn(t, "us-east-1"), nodes[1].clientIn(t, "eu-west-1"), nodes[2].clientIn(t, "ap-southeast-2")

	created, err := us.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
	noErr(t, err, "CreateKey on the us-east-1 node")
	id := created.KeyMetadata.KeyId
	for _, r := range []string{"eu-west-1", "ap-southeast-2"} {
		_, err := us.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: id, ReplicaRegion: aws.String(r)})
		noErr(t, err, "ReplicateKey to %s", r)
	}
	enc, err := us.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("global")})
	noErr(t, err, "Encrypt in us-east-1")
	for name, c := range map[string]*kms.Client{"eu-west-1": eu, "ap-southeast-2": ap} {
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		noErr(t, err, "Decrypt in %s", name)
		if string(dec.Plaintext) != "global" || !strings.Contains(aws.ToString(dec.KeyId), ":"+name+":") {
			t.Fatalf("%s decrypted %q with %s", name, dec.Plaintext, aws.ToString(dec.KeyId))
		}
	}

	// A rotation on the us-east-1 node reaches the replicas the other
	// nodes have cached.
	before, err := eu.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
	noErr(t, err, "DescribeKey in eu-west-1")
	_, err = us.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id})
	noErr(t, err, "RotateKeyOnDemand in us-east-1")
	after, err := us.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
	noErr(t, err, "DescribeKey in us-east-1")
	if aws.ToString(after.KeyMetadata.CurrentKeyMaterialId) == aws.ToString(before.KeyMetadata.CurrentKeyMaterialId) {
		t.Fatal("the rotation did not change the material")
	}
	for name, c := range map[string]*kms.Client{"eu-west-1": eu, "ap-southeast-2": ap} {
		waitFor(t, 3*time.Second, name+" sees the rotation", func() error {
			d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
			if err != nil {
				return err
			}
			if got := aws.ToString(d.KeyMetadata.CurrentKeyMaterialId); got != aws.ToString(after.KeyMetadata.CurrentKeyMaterialId) {
				return fmt.Errorf("material %s", got)
			}
			return nil
		})
	}
	rotated, err := eu.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("after")})
	noErr(t, err, "Encrypt in eu-west-1 after the rotation")
	if _, err := us.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: rotated.CiphertextBlob}); err != nil {
		t.Fatalf("us-east-1 decrypts eu-west-1's ciphertext of the new material: %v", err)
	}

	// The primary moves to eu-west-1, as the eu-west-1 node then sees.
	_, err = us.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: id, PrimaryRegion: aws.String("eu-west-1")})
	noErr(t, err, "UpdatePrimaryRegion")
	waitFor(t, 3*time.Second, "eu-west-1 is the primary", func() error {
		d, err := eu.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
		if err != nil {
			return err
		}
		if typ := d.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType; typ != "PRIMARY" {
			return fmt.Errorf("eu-west-1 is %s", typ)
		}
		return nil
	})

	// Deleting the primary waits for its replicas.
	out, err := eu.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)})
	noErr(t, err, "ScheduleKeyDeletion of the primary")
	if out.KeyState != "PendingReplicaDeletion" || out.DeletionDate != nil {
		t.Fatalf("ScheduleKeyDeletion of a primary with replicas: %s, %v", out.KeyState, out.DeletionDate)
	}

	// A single-Region key of us-east-1 does not exist for the other nodes'
	// regions.
	single, err := us.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	_, err = ap.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: single.KeyMetadata.KeyId})
	if apiErrorCode(err) != "NotFoundException" {
		t.Fatalf("ap-southeast-2 DescribeKey of a us-east-1 key: %v", err)
	}

	events := clusterEvents(t, dsn)
	regions := map[string]bool{}
	for _, ev := range events {
		if ev["eventName"] == "Decrypt" {
			regions[fmt.Sprint(ev["awsRegion"])] = true
		}
	}
	if !regions["eu-west-1"] || !regions["ap-southeast-2"] || !regions["us-east-1"] {
		t.Errorf("Decrypt records in regions %v, want us-east-1, eu-west-1 and ap-southeast-2", regions)
	}
}

// A node signs its chain as soon as it has recorded something, not at the
// first tick of the digest interval (5 s): a chain with records and no
// digest does not verify, and a node killed in between would leave one.
// Killed at once after its chain is signed, the trail verifies.
func TestNewChainIsSignedAtOnce(t *testing.T) {
	t.Parallel()
	nodes, dsn := startCluster(t, 1)
	mustCreateKey(t, nodes[0])
	pool, err := pgxpool.New(testCtx(t), dsn)
	noErr(t, err, "connect to %s", dsn)
	defer pool.Close()
	// Well within the 5 s a tick would take.
	waitFor(t, 3*time.Second, "the new chain signed", func() error {
		var n int
		err := pool.QueryRow(testCtx(t), `SELECT count(*) FROM kms_audit_digests`).Scan(&n)
		if err == nil && n == 0 {
			err = errors.New("no digest yet")
		}
		return err
	})
	nodes[0].kill()
	code, stdout, stderr := runToExit(t, baseEnv(), "audit", "verify", "--storage", dsn)
	if code != 0 {
		t.Fatalf("audit verify after the kill: exit %d\n%s%s", code, stdout, stderr)
	}
}

// Whoever can write the cluster's database but has no root key cannot
// change who may use a key: a key policy edited in kms_records to let
// another account in makes every call on that key fail with a 500
// KMSInternalException, on a node started after the edit, while the
// other keys are served.
func TestClusterDatabaseEditsAreRefused(t *testing.T) {
	nodes, dsn := startCluster(t, 1)
	ctx := testCtx(t)
	c := nodes[0].client(t)
	victim, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	other, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	if code := nodes[0].stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}

	pool, err := pgxpool.New(ctx, dsn)
	noErr(t, err, "connect")
	defer pool.Close()
	tag, err := pool.Exec(ctx, `UPDATE kms_records SET v = decode(replace(encode(v, 'escape'), 'arn:aws:iam::111122223333:root', 'arn:aws:iam::444455556666:root'), 'escape') WHERE k = $1`,
		[]byte("key/us-east-1/"+aws.ToString(victim.KeyMetadata.KeyId)))
	noErr(t, err, "edit the key's policy")
	if tag.RowsAffected() != 1 {
		t.Fatalf("edited %d rows", tag.RowsAffected())
	}

	s := startServer(t, nodes[0].Dir, baseEnv(), "--dev", "--storage", dsn)
	c = s.client(t)
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: victim.KeyMetadata.KeyId})
	if apiErrorCode(err) != "KMSInternalException" {
		t.Errorf("DescribeKey of the edited key: %v, want KMSInternalException", err)
	}
	record := "key/us-east-1/" + aws.ToString(victim.KeyMetadata.KeyId)
	waitForLog(t, s, "the log of the refused record", record, "not authenticated under the root key")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: other.KeyMetadata.KeyId, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt with the other key")
}

// Two nodes started together on a cluster's store from before its
// records were authenticated upgrade it once: one tags every record, the
// other finds it done (a record tagged twice would read as neither), and
// both serve the keys made before.
func TestClusterUpgradesStoreOnce(t *testing.T) {
	nodes, dsn := startCluster(t, 1)
	ctx := testCtx(t)
	k, err := nodes[0].client(t).CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	if code := nodes[0].stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	dir := nodes[0].Dir
	root, err := keys.ReadRootKeyFile(filepath.Join(dir, "root.key"))
	noErr(t, err, "read the root key")
	pg, err := pgstore.Open(ctx, dsn)
	noErr(t, err, "open the database")
	err = pg.Update(ctx, func(tx store.Tx) error { return asBeforeAuthentication(tx, root) })
	pg.Close()
	noErr(t, err, "make the store one from before")

	var both []*server
	for range 2 {
		both = append(both, &server{proc: startProc(t, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir, "--storage", dsn, "--authenticate-store")})
	}
	for _, s := range both {
		m := s.waitOutput(listeningRE, startTimeout)
		s.URL, s.Region, s.Dir = m[1], m[2], m[3]
		waitHealthy(t, s)
		_, err := s.client(t).Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("x")})
		noErr(t, err, "Encrypt with the key made before, on %s", s.URL)
	}
	const upgraded = "the key store's records are now authenticated under the root key"
	waitFor(t, 3*time.Second, "the log of the upgrade", func() error { // the log is written in batches
		if n := strings.Count(both[0].stderr.String()+both[1].stderr.String(), upgraded); n != 1 {
			return fmt.Errorf("%d nodes say they upgraded the store, want 1", n)
		}
		return nil
	})
}
