package e2e_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// sweepEnumShown is where AWS's message lists other values than the
// model's enumeration, per operation and member (reference §1.3): a
// GenerateDataKey KeySpec outside AES_256 and AES_128 is answered with
// CreateKey's KeySpec values (boto/boto3#3428), and the server answers
// GenerateDataKeyWithoutPlaintext, which shares it, alike.
var sweepEnumShown = map[string]map[string][]string{
	"GenerateDataKey":                 {"keySpec": createKeySpecs},
	"GenerateDataKeyWithoutPlaintext": {"keySpec": createKeySpecs},
}

var createKeySpecs = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
	"ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512", "SM2",
	"ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"}

// sweepInputs makes the keys, alias, grants, ciphertext, signature and MAC
// the sweep's requests name, and returns each operation's minimal valid
// input with how the server answers it. The answer of an operation this
// server does not support, or of a valid input that names nothing real
// (an import token), is the error it answers.
func sweepInputs(t testing.TB, e *kmsEnv) map[string]sweepInput {
	t.Helper()
	ctx := context.Background()
	sym := e.newKey(t)
	off := e.newKey(t)    // DisableKey, then EnableKey
	doomed := e.newKey(t) // ScheduleKeyDeletion
	sign := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify}).KeyId)
	hmac := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}).KeyId)
	agree := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement}).KeyId)
	kem := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecMlKem768, KeyUsage: types.KeyUsageTypeEncapsulateDecapsulate}).KeyId)
	external := aws.ToString(e.createKey(t, &kms.CreateKeyInput{Origin: types.OriginTypeExternal}).KeyId)
	mrk := aws.ToString(e.createKey(t, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId)
	e.createAlias(t, "alias/sweep", sym)
	e.createAlias(t, "alias/sweep-doomed", sym)
	root := "arn:aws:iam::" + e2eAccount + ":root"
	grant := func() string {
		out, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(sym), GranteePrincipal: aws.String(root),
			RetiringPrincipal: aws.String(root), Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.GrantId)
	}
	revoked, retired := grant(), grant()
	ct := e.encrypt(t, sym, []byte("sweep"), nil).CiphertextBlob
	msg := []byte("sweep")
	sig, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(sign), Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	if err != nil {
		t.Fatal(err)
	}
	mac, err := e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(hmac), Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := e.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(sign)})
	if err != nil {
		t.Fatal(err)
	}
	encapsulated, err := e.client.Encapsulate(ctx, &kms.EncapsulateInput{KeyId: aws.String(kem), EncapsulationAlgorithm: types.EncapsulationAlgorithmSpecMlKem})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := e.client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(sym)})
	if err != nil {
		t.Fatal(err)
	}
	b := func(p []byte) string { return base64.StdEncoding.EncodeToString(p) }
	type obj = map[string]any
	ok := func(body obj) sweepInput { return sweepInput{body: body} }
	refused := func(answer string, body obj) sweepInput { return sweepInput{body: body, answer: answer} }
	store := "cks-1234567890abcdef0"
	return map[string]sweepInput{
		"CancelKeyDeletion":                   refused("KMSInvalidStateException", obj{"KeyId": sym}),
		"ConnectCustomKeyStore":               refused("CustomKeyStoreNotFoundException", obj{"CustomKeyStoreId": store}),
		"CreateAlias":                         ok(obj{"AliasName": "alias/sweep-new", "TargetKeyId": sym}),
		"CreateCustomKeyStore":                refused("CloudHsmClusterNotFoundException", obj{"CustomKeyStoreName": "sweep"}),
		"CreateGrant":                         ok(obj{"KeyId": sym, "GranteePrincipal": root, "Operations": []any{"Encrypt"}}),
		"CreateKey":                           ok(obj{}),
		"Decrypt":                             ok(obj{"CiphertextBlob": b(ct)}),
		"Decapsulate":                         ok(obj{"KeyId": kem, "SharedSecretCiphertextBlob": b(encapsulated.SharedSecretCiphertextBlob), "EncapsulationAlgorithm": "ML_KEM"}),
		"DeleteAlias":                         ok(obj{"AliasName": "alias/sweep-doomed"}),
		"DeleteCustomKeyStore":                refused("CustomKeyStoreNotFoundException", obj{"CustomKeyStoreId": store}),
		"DeleteImportedKeyMaterial":           ok(obj{"KeyId": external}),
		"DeriveSharedSecret":                  ok(obj{"KeyId": agree, "KeyAgreementAlgorithm": "ECDH", "PublicKey": b(pub.PublicKey)}),
		"DescribeCustomKeyStores":             ok(obj{}),
		"Encapsulate":                         ok(obj{"KeyId": kem, "EncapsulationAlgorithm": "ML_KEM"}),
		"DescribeKey":                         ok(obj{"KeyId": sym}),
		"DisableKey":                          ok(obj{"KeyId": off}),
		"DisableKeyRotation":                  ok(obj{"KeyId": sym}),
		"DisconnectCustomKeyStore":            refused("CustomKeyStoreNotFoundException", obj{"CustomKeyStoreId": store}),
		"EnableKey":                           ok(obj{"KeyId": off}),
		"EnableKeyRotation":                   ok(obj{"KeyId": sym}),
		"Encrypt":                             ok(obj{"KeyId": sym, "Plaintext": b(msg)}),
		"GenerateDataKey":                     ok(obj{"KeyId": sym, "KeySpec": "AES_256"}),
		"GenerateDataKeyPair":                 ok(obj{"KeyId": sym, "KeyPairSpec": "ECC_NIST_P256"}),
		"GenerateDataKeyPairWithoutPlaintext": ok(obj{"KeyId": sym, "KeyPairSpec": "ECC_NIST_P256"}),
		"GenerateDataKeyWithoutPlaintext":     ok(obj{"KeyId": sym, "KeySpec": "AES_256"}),
		"GenerateMac":                         ok(obj{"KeyId": hmac, "Message": b(msg), "MacAlgorithm": "HMAC_SHA_256"}),
		"GenerateRandom":                      ok(obj{"NumberOfBytes": 16}),
		"GetKeyLastUsage":                     ok(obj{"KeyId": sym}),
		"GetKeyPolicy":                        ok(obj{"KeyId": sym}),
		"GetKeyRotationStatus":                ok(obj{"KeyId": sym}),
		"GetParametersForImport":              ok(obj{"KeyId": external, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
		"GetPublicKey":                        ok(obj{"KeyId": sign}),
		"ImportKeyMaterial": refused("InvalidImportTokenException", obj{"KeyId": external, "ImportToken": b(msg), "EncryptedKeyMaterial": b(msg),
			"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
		"ListAliases":          ok(obj{}),
		"ListGrants":           ok(obj{"KeyId": sym}),
		"ListKeyPolicies":      ok(obj{"KeyId": sym}),
		"ListKeyRotations":     ok(obj{"KeyId": sym}),
		"ListKeys":             ok(obj{}),
		"ListResourceTags":     ok(obj{"KeyId": sym}),
		"ListRetirableGrants":  ok(obj{"RetiringPrincipal": root}),
		"PutKeyPolicy":         ok(obj{"KeyId": sym, "Policy": aws.ToString(policy.Policy)}),
		"ReEncrypt":            ok(obj{"CiphertextBlob": b(ct), "DestinationKeyId": sym}),
		"ReplicateKey":         ok(obj{"KeyId": mrk, "ReplicaRegion": e2eRegion2}),
		"RetireGrant":          ok(obj{"KeyId": sym, "GrantId": retired}),
		"RevokeGrant":          ok(obj{"KeyId": sym, "GrantId": revoked}),
		"RotateKeyOnDemand":    ok(obj{"KeyId": sym}),
		"ScheduleKeyDeletion":  ok(obj{"KeyId": doomed, "PendingWindowInDays": 7}),
		"Sign":                 ok(obj{"KeyId": sign, "Message": b(msg), "SigningAlgorithm": "ECDSA_SHA_256"}),
		"TagResource":          ok(obj{"KeyId": sym, "Tags": []any{obj{"TagKey": "k", "TagValue": "v"}}}),
		"UntagResource":        ok(obj{"KeyId": sym, "TagKeys": []any{"k"}}),
		"UpdateAlias":          ok(obj{"AliasName": "alias/sweep", "TargetKeyId": sym}),
		"UpdateCustomKeyStore": refused("CustomKeyStoreNotFoundException", obj{"CustomKeyStoreId": store}),
		"UpdateKeyDescription": ok(obj{"KeyId": sym, "Description": "sweep"}),
		"UpdatePrimaryRegion":  refused("NotFoundException", obj{"KeyId": mrk, "PrimaryRegion": e2eRegion3}),
		"Verify":               ok(obj{"KeyId": sign, "Message": b(msg), "Signature": b(sig.Signature), "SigningAlgorithm": "ECDSA_SHA_256"}),
		"VerifyMac":            ok(obj{"KeyId": hmac, "Message": b(msg), "Mac": b(mac.Mac), "MacAlgorithm": "HMAC_SHA_256"}),
	}
}

// sweepExtraMembers are members of AWS's API that this copy of the model
// lacks, with their constraints as the reference gives them (§2.5): the
// grant operations' service principals, 1 to 128 characters.
var sweepExtraMembers = map[string]map[string]modelShape{
	"CreateGrant": {
		"GranteeServicePrincipal":  {Type: "string", Min: ptr(int64(1)), Max: ptr(int64(128))},
		"RetiringServicePrincipal": {Type: "string", Min: ptr(int64(1)), Max: ptr(int64(128))},
	},
	"ListGrants":          {"GranteeServicePrincipal": {Type: "string", Min: ptr(int64(1)), Max: ptr(int64(128))}},
	"ListRetirableGrants": {"RetiringServicePrincipal": {Type: "string", Min: ptr(int64(1)), Max: ptr(int64(128))}},
}

func ptr[T any](v T) *T { return &v }

// addSweepMembers adds sweepExtraMembers to model's inputs.
func addSweepMembers(t testing.TB, model *kmsModel) {
	t.Helper()
	for op, members := range sweepExtraMembers {
		in := model.Shapes[model.Operations[op].Input.Shape]
		for name, sh := range members {
			if _, ok := in.Members[name]; ok {
				t.Fatalf("the model has %s.%s now: take it out of sweepExtraMembers", op, name)
			}
			shapeName := op + name + "SweepType"
			model.Shapes[shapeName] = &sh
			in.Members[name] = shapeRef{Shape: shapeName}
		}
	}
}

// sweepKnown are the cases, per operation, that the server answers
// otherwise than the model's constraints would, on purpose.
//
//   - CreateGrant without GranteePrincipal: this model requires it, but
//     AWS's API now takes GranteeServicePrincipal instead and requires
//     neither (reference §2.5, §4.13), so a missing one is refused by the
//     operation, not by request validation.
var sweepKnown = map[string]map[string]sweepAnswer{
	"CreateGrant": {"granteePrincipal missing": {"ValidationException", "You must specify a GranteePrincipal."}},
}

// sweepPending are the cases, per operation, where the server does not
// answer as the model says AWS does. A case that comes to answer so must
// be taken out.
var sweepPending = map[string][]string{}
