package e2e_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/testsupport"
)

// The few places for making RSA key pairs go round-robin between the
// accounts whose calls wait for one. Account A holds the one place and
// keeps three more calls waiting; account B then asks for one key pair.
// B's call is served as soon as A's first waiting call is done, before
// A's second: it waits one turn, not behind A's whole queue (as it did
// when whoever the scheduler woke went next, tens of seconds with RSA_4096
// and fifty calls waiting).
func TestE2ERSAKeyPairTurnsAreFairBetweenAccounts(t *testing.T) {
	t.Parallel()
	made := map[string][]byte{}
	for _, spec := range []string{"RSA_2048", "RSA_3072"} {
		der, err := keys.GenerateAsymmetric(spec)
		if err != nil {
			t.Fatal(err)
		}
		made[spec] = der
	}
	type turn struct {
		spec string
		done chan struct{}
	}
	turns := make(chan turn)
	e := openKMSEnvWith(t, filepath.Join(t.TempDir(), "kms.db"), mustRandom(t, 32), testsupport.NewClock(e2eStart), func(c *service.Config) {
		c.RSAKeyPairs = 1
		c.GenerateKeyPair = func(spec string) ([]byte, error) {
			done := make(chan struct{})
			turns <- turn{spec, done}
			<-done
			return slices.Clone(made[spec]), nil
		}
	})
	ctx := context.Background()
	a, b := e.client, e.clientAs(t, "222233334444")
	keyOf := func(c *kms.Client) string {
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.KeyMetadata.KeyId)
	}
	aKey, bKey := keyOf(a), keyOf(b)
	results := make(chan error, 5)
	pair := func(c *kms.Client, keyID string, spec types.DataKeyPairSpec) {
		_, err := c.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{
			KeyId: aws.String(keyID), KeyPairSpec: spec,
		})
		results <- err
	}
	// waiting yields until n calls wait for the place, so that the calls
	// join their queues in the order they are started in.
	waiting := func(n int) {
		for e.svc.RSAKeyPairsWaiting() != n {
			runtime.Gosched()
		}
	}

	go pair(a, aKey, types.DataKeyPairSpecRsa2048)
	holder := <-turns
	for i := range 3 {
		go pair(a, aKey, types.DataKeyPairSpecRsa2048)
		waiting(i + 1)
	}
	go pair(b, bKey, types.DataKeyPairSpecRsa3072)
	waiting(4)

	close(holder.done)
	var order []string
	for range 4 {
		next := <-turns
		order = append(order, map[string]string{"RSA_2048": "A", "RSA_3072": "B"}[next.spec])
		close(next.done)
	}
	for range 5 {
		if err := <-results; err != nil {
			t.Errorf("GenerateDataKeyPairWithoutPlaintext: %v", err)
		}
	}
	if got, want := fmt.Sprint(order), "[A B A A]"; got != want {
		t.Errorf("once A's first call was done, the place went to %s; want %s: B's one call before A's second", got, want)
	}
	if n := e.svc.RSAKeyPairsWaiting(); n != 0 {
		t.Errorf("%d calls still waiting", n)
	}
}

// The call timeout bounds a call's wait on its store, not its wait for a
// turn to make an RSA key pair nor the making of it: a
// GetParametersForImport whose key pair is made past the bound, and a
// CreateKey RSA_2048 that waited for its turn past it, both succeed.
// Bounded, the first was refused after its key pair was made, and the
// second after its wait, where both succeeded before the bound was
// introduced: a queue of RSA_4096 CreateKeys longer than the bound was
// refused, pair after pair made for nothing.
func TestE2ERSAKeyPairTurnsOutsideTheCallTimeout(t *testing.T) {
	t.Parallel()
	der, err := keys.GenerateAsymmetric("RSA_2048")
	if err != nil {
		t.Fatal(err)
	}
	turns := make(chan chan struct{})
	e := openKMSEnvWith(t, filepath.Join(t.TempDir(), "kms.db"), mustRandom(t, 32), testsupport.NewClock(e2eStart), func(c *service.Config) {
		c.RSAKeyPairs = 1
		c.GenerateKeyPair = func(spec string) ([]byte, error) { // GetParametersForImport's wrapping key pair
			done := make(chan struct{})
			turns <- done
			<-done
			return slices.Clone(der), nil
		}
	})
	const bound = 200 * time.Millisecond
	e.guard.next.(*api.Handler).WithCallTimeout(bound)
	ctx := context.Background()
	external, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	if err != nil {
		t.Fatal(err)
	}
	params, created := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := e.client.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: external.KeyMetadata.KeyId,
			WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
		params <- err
	}()
	making := <-turns // GetParametersForImport makes its key pair
	go func() {
		_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
		created <- err
	}()
	for e.svc.RSAKeyPairsWaiting() != 1 {
		runtime.Gosched()
	}
	// Both calls' bounds run out: the one making its key pair, the
	// other waiting for its turn.
	past, cancel := context.WithTimeout(ctx, 2*bound)
	<-past.Done()
	cancel()
	close(making)
	if err := <-params; err != nil {
		t.Errorf("GetParametersForImport RSA_2048 whose key pair was made past the call timeout: %v", err)
	}
	if err := <-created; err != nil {
		t.Errorf("CreateKey RSA_2048 that waited for its turn past the call timeout: %v", err)
	}
}
