package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/testsupport"
)

// What a caller allowed the import operations can try against them: costly
// requests, and key material that is not what it claims to be.

// GetParametersForImport makes an RSA key pair, up to a second of a CPU
// for RSA_4096: such calls wait for the same few places as RSA data key
// pairs, so that a caller asking for many cannot take every CPU. Here
// the one place is held by a GenerateDataKeyPair; a GetParametersForImport
// meanwhile makes no key and gives up with its client, and gets its turn
// once the place is free.
func TestE2EGetParametersForImportWaitsForRSAKeyPairs(t *testing.T) {
	t.Parallel()
	rsaKey, err := keys.GenerateAsymmetric("RSA_2048")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var made atomic.Int32
	e := openKMSEnvWith(t, filepath.Join(t.TempDir(), "kms.db"), mustRandom(t, 32), testsupport.NewClock(e2eStart), func(c *service.Config) {
		c.RSAKeyPairs = 1
		c.GenerateKeyPair = func(spec string) ([]byte, error) {
			if made.Add(1) == 1 {
				close(entered)
				<-release
			}
			return slices.Clone(rsaKey), nil
		}
	})
	ctx := context.Background()
	sym := aws.ToString(e.createKey(t, &kms.CreateKeyInput{}).KeyId)
	ext := e.newExternalKey(t)

	first := make(chan error, 1)
	go func() {
		_, err := e.client.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{
			KeyId: aws.String(sym), KeyPairSpec: types.DataKeyPairSpecRsa2048,
		})
		first <- err
	}()
	<-entered
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = e.client.GetParametersForImport(short, &kms.GetParametersForImportInput{
		KeyId: aws.String(ext), WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048,
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetParametersForImport while the one place is held: %v; want it to wait until its client gives up", err)
	}
	if n := made.Load(); n != 1 {
		t.Errorf("%d RSA key pairs made at once; want 1", n)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("GenerateDataKeyPairWithoutPlaintext: %v", err)
	}
	// Its turn come, the wrapping key is the one the generator made.
	wrapping, err := keys.ParseAsymmetric("RSA_2048", rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	material := mustRandom(t, 32)
	p := e.importParams(t, ext, types.AlgorithmSpecRsaesOaepSha256, types.WrappingKeySpecRsa2048)
	if !bytes.Equal(p.PublicKey, wrapping.PublicDER) {
		t.Error("the wrapping public key is not the one the key pair generator made")
	}
	if _, err := e.client.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
		KeyId: aws.String(ext), ImportToken: p.ImportToken, ExpirationModel: notExpiring,
		EncryptedKeyMaterial: wrapForImport(t, types.AlgorithmSpecRsaesOaepSha256, p.PublicKey, material),
	}); err != nil {
		t.Fatalf("ImportKeyMaterial: %v", err)
	}
}
