package main_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/testsupport"
)

// The changes docs/cluster.md names beside those of
// TestClusterRevocationRacesOtherNode: an alias deleted or moved, a
// grant retired, imported material deleted on one node are honoured by
// another serving them at full speed within milliseconds, with caches an
// hour old allowed, and never undone there.
func TestClusterAliasGrantAndMaterialChangesRaceOtherNode(t *testing.T) {
	nodes, _ := startCluster(t, 2, "--cache-max-age", "1h")
	ctx := testCtx(t)
	a, b := nodes[0].client(t), nodes[1].client(t)
	newKey := func(in *kms.CreateKeyInput) *string {
		out, err := a.CreateKey(ctx, in)
		noErr(t, err, "CreateKey on A")
		return out.KeyMetadata.KeyId
	}
	encrypt := func(c *kms.Client, id *string) func() error {
		return func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
			return err
		}
	}

	gone := aws.String("alias/gone")
	_, err := a.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: gone, TargetKeyId: newKey(&kms.CreateKeyInput{})})
	noErr(t, err, "CreateAlias")
	raceAcrossNodes(t, "DeleteAlias", encrypt(b, gone), func() error {
		_, err := a.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: gone})
		return err
	})

	moved := aws.String("alias/moved")
	_, err = a.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: moved, TargetKeyId: newKey(&kms.CreateKeyInput{})})
	noErr(t, err, "CreateAlias")
	disabled := newKey(&kms.CreateKeyInput{})
	_, err = a.DisableKey(ctx, &kms.DisableKeyInput{KeyId: disabled})
	noErr(t, err, "DisableKey")
	raceAcrossNodes(t, "UpdateAlias", encrypt(b, moved), func() error {
		_, err := a.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: moved, TargetKeyId: disabled})
		return err
	})

	rootID, rootSecret := devCredentials(t, nodes[0].Dir)
	iamA := iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(nodes[0].URL),
		Credentials: credentials.NewStaticCredentialsProvider(rootID, rootSecret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	carolARN, carol := userClient(t, iamA, "carol", nodes[1])
	id := newKey(&kms.CreateKeyInput{})
	g, err := a.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: id, GranteePrincipal: aws.String(carolARN),
		RetiringPrincipal: aws.String("arn:aws:iam::111122223333:root"), Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	noErr(t, err, "CreateGrant for carol")
	waitFor(t, revocationBound, "carol allowed on B by the grant", encrypt(carol[0], id))
	raceAcrossNodes(t, "RetireGrant", encrypt(carol[0], id), func() error {
		_, err := a.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: id, GrantId: g.GrantId})
		return err
	})

	imported := newKey(&kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	params, err := a.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: imported,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	noErr(t, err, "GetParametersForImport")
	pub, err := x509.ParsePKIXPublicKey(params.PublicKey)
	noErr(t, err, "the wrapping key")
	material := make([]byte, 32)
	rand.Read(material)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
	noErr(t, err, "wrap the material")
	_, err = a.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: imported, ImportToken: params.ImportToken,
		EncryptedKeyMaterial: wrapped, ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	noErr(t, err, "ImportKeyMaterial")
	raceAcrossNodes(t, "DeleteImportedKeyMaterial", encrypt(b, imported), func() error {
		_, err := a.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: imported})
		return err
	})
}
