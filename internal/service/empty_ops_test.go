package service_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/service"
)

// A member the request gave as the empty string is validated as given,
// as AWS validates it: too short, or not in its enumeration. It is not
// read as a member left out, which would make CreateKey{KeySpec: ""} a
// symmetric key and Decrypt{KeyId: ""} a decrypt under any key.
func TestMembersGivenEmptyAreRefused(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	blob, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("x")})
	f.must(err)
	keysBefore, err := f.svc.ListKeys(f.ctx, rootA, &kmsapi.ListKeysInput{})
	f.must(err)
	const short = "1 validation error detected: Value '' at '%s' failed to satisfy constraint: Member must have length greater than or equal to 1"
	for _, tc := range []struct {
		empty []string
		call  func(ctx context.Context) error
		msg   string
	}{
		{[]string{"keySpec"}, func(ctx context.Context) error {
			_, err := f.svc.CreateKey(ctx, rootA, &kmsapi.CreateKeyInput{})
			return err
		}, "1 validation error detected: Value '' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, ECC_NIST_P384, ECC_NIST_P256, ECC_NIST_P521, HMAC_384, RSA_3072, ECC_SECG_P256K1, RSA_4096, SYMMETRIC_DEFAULT, HMAC_256, HMAC_224, HMAC_512, SM2, ML_DSA_44, ML_DSA_65, ML_DSA_87, ECC_NIST_EDWARDS25519, ML_KEM_512, ML_KEM_768, ML_KEM_1024]"},
		{[]string{"origin", "keyUsage"}, func(ctx context.Context) error {
			_, err := f.svc.CreateKey(ctx, rootA, &kmsapi.CreateKeyInput{})
			return err
		}, "2 validation errors detected: Value '' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE]; " +
			"Value '' at 'origin' failed to satisfy constraint: Member must satisfy enum value set: [AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE]"},
		{[]string{"keyId"}, func(ctx context.Context) error {
			_, err := f.svc.Decrypt(ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: blob.CiphertextBlob})
			return err
		}, fmt.Sprintf(short, "keyId")},
		// A dry run that ignores the ciphertext needs the key named: given
		// empty, it is too short, not also missing.
		{[]string{"keyId"}, func(ctx context.Context) error {
			_, err := f.svc.Decrypt(ctx, rootA, &kmsapi.DecryptInput{DryRun: true, DryRunModifiers: []string{"IGNORE_CIPHERTEXT"}})
			return err
		}, fmt.Sprintf(short, "keyId")},
		{[]string{"sourceKeyId"}, func(ctx context.Context) error {
			_, err := f.svc.ReEncrypt(ctx, rootA, &kmsapi.ReEncryptInput{DestinationKeyID: id, DryRun: true, DryRunModifiers: []string{"IGNORE_CIPHERTEXT"}})
			return err
		}, fmt.Sprintf(short, "sourceKeyId")},
		{[]string{"keyId"}, func(ctx context.Context) error {
			_, err := f.svc.DescribeKey(ctx, rootA, &kmsapi.DescribeKeyInput{})
			return err
		}, fmt.Sprintf(short, "keyId")},
		{[]string{"encryptionAlgorithm"}, func(ctx context.Context) error {
			_, err := f.svc.Encrypt(ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("x")})
			return err
		}, "1 validation error detected: Value '' at 'encryptionAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]"},
		{[]string{"name"}, func(ctx context.Context) error {
			_, err := f.svc.CreateGrant(ctx, rootA, &kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: "arn:aws:iam::" + acctA + ":root", Operations: []string{"Encrypt"}})
			return err
		}, "2 validation errors detected: Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
			"Value '' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"},
		{[]string{"policyName"}, func(ctx context.Context) error {
			_, err := f.svc.GetKeyPolicy(ctx, rootA, &kmsapi.GetKeyPolicyInput{KeyID: id})
			return err
		}, "2 validation errors detected: Value '' at 'policyName' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
			"Value '' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+"},
		{[]string{"grantToken"}, func(ctx context.Context) error {
			_, err := f.svc.RetireGrant(ctx, rootA, &kmsapi.RetireGrantInput{KeyID: id, GrantID: "0000000000000000000000000000000000000000000000000000000000000000"})
			return err
		}, fmt.Sprintf(short, "grantToken")},
		{[]string{"signingAlgorithm"}, func(ctx context.Context) error {
			_, err := f.svc.Sign(ctx, rootA, &kmsapi.SignInput{KeyID: id, Message: []byte("m")})
			return err
		}, "1 validation error detected: Value '' at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [RSASSA_PSS_SHA_256, RSASSA_PSS_SHA_384, RSASSA_PSS_SHA_512, RSASSA_PKCS1_V1_5_SHA_256, RSASSA_PKCS1_V1_5_SHA_384, RSASSA_PKCS1_V1_5_SHA_512, ECDSA_SHA_256, ECDSA_SHA_384, ECDSA_SHA_512, SM2DSA, ML_DSA_SHAKE_256, ED25519_SHA_512, ED25519_PH_SHA_512]"},
	} {
		wantErr(t, tc.call(service.WithEmptyMembers(f.ctx, tc.empty)), fault.Validation, tc.msg)
	}
	keysAfter, err := f.svc.ListKeys(f.ctx, rootA, &kmsapi.ListKeysInput{})
	f.must(err)
	if len(keysAfter.Keys) != len(keysBefore.Keys) {
		t.Fatalf("%d keys after the refused CreateKeys, want %d", len(keysAfter.Keys), len(keysBefore.Keys))
	}

	// Left out, the same members are absent, as before.
	_, err = f.svc.DescribeKey(f.ctx, rootA, &kmsapi.DescribeKeyInput{})
	wantErr(t, err, fault.Validation, "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	dec, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: blob.CiphertextBlob})
	f.must(err)
	if string(dec.Plaintext) != "x" {
		t.Fatalf("Decrypt gave %q", dec.Plaintext)
	}
}
