package e2e_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/identity"
)

// TestAuthorizeBeforeState sweeps every operation that names a key: a
// principal of another account with no permission on account A's keys
// gets the same answer whatever state A's key is in (enabled, disabled,
// pending deletion, pending import, of another usage or spec), so it
// learns nothing about the key beyond that it may not use it.
func TestAuthorizeBeforeState(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	const otherAccount = "444455556666"
	b := e.clientAs(t, otherAccount)
	bCreds, err := identity.BootstrapRoot(ctx, e.store, e.root, otherAccount)
	if err != nil {
		t.Fatal(err)
	}
	bKey := aws.ToString(mustKMS(t)(b.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.Arn)
	bBlob, err := b.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(bKey), Plaintext: []byte("b")})
	if err != nil {
		t.Fatal(err)
	}

	// Account A's keys, each with a ciphertext made while it could.
	type aKey struct{ arn, blob string }
	keys := map[string]aKey{}
	symmetric := func(name string) aKey {
		m := e.createKey(t, &kms.CreateKeyInput{})
		out, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: m.KeyId, Plaintext: []byte("a")})
		if err != nil {
			t.Fatal(err)
		}
		k := aKey{aws.ToString(m.Arn), base64.StdEncoding.EncodeToString(out.CiphertextBlob)}
		keys[name] = k
		return k
	}
	symmetric("enabled")
	d := symmetric("disabled")
	if _, err := e.client.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(d.arn)}); err != nil {
		t.Fatal(err)
	}
	p := symmetric("pending deletion")
	if _, err := e.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(p.arn), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	// Keys with no ciphertext of their own (blob ""): the operations that
	// name one are not tried on them.
	keys["pending import"] = aKey{arn: aws.ToString(e.createKey(t, &kms.CreateKeyInput{Origin: types.OriginTypeExternal}).Arn)}
	keys["signing"] = aKey{arn: aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify}).Arn)}
	keys["hmac"] = aKey{arn: aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}).Arn)}
	keys["key agreement"] = aKey{arn: aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement}).Arn)}

	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	peerDER, _ := x509.MarshalPKIXPublicKey(peer.PublicKey())
	grantID := strings.Repeat("ab", 32)
	policy, _ := json.Marshal(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}]}`)
	ops := []struct{ op, body string }{
		{"Encrypt", `{"KeyId":@KEY@,"Plaintext":"aGk="}`},
		{"Decrypt", `{"KeyId":@KEY@,"CiphertextBlob":@BLOB@}`},
		{"Decrypt", `{"CiphertextBlob":@BLOB@}`},
		{"ReEncrypt", `{"CiphertextBlob":@BLOB@,"DestinationKeyId":@BKEY@}`},
		{"ReEncrypt", `{"CiphertextBlob":@BBLOB@,"DestinationKeyId":@KEY@}`},
		{"GenerateDataKey", `{"KeyId":@KEY@,"KeySpec":"AES_256"}`},
		{"GenerateDataKeyWithoutPlaintext", `{"KeyId":@KEY@,"KeySpec":"AES_256"}`},
		{"GenerateDataKeyPair", `{"KeyId":@KEY@,"KeyPairSpec":"ECC_NIST_P256"}`},
		{"GenerateDataKeyPairWithoutPlaintext", `{"KeyId":@KEY@,"KeyPairSpec":"ECC_NIST_P256"}`},
		{"Sign", `{"KeyId":@KEY@,"Message":"aGk=","SigningAlgorithm":"ECDSA_SHA_256"}`},
		{"Verify", `{"KeyId":@KEY@,"Message":"aGk=","Signature":"aGk=","SigningAlgorithm":"ECDSA_SHA_256"}`},
		{"GetPublicKey", `{"KeyId":@KEY@}`},
		{"GenerateMac", `{"KeyId":@KEY@,"Message":"aGk=","MacAlgorithm":"HMAC_SHA_256"}`},
		{"VerifyMac", `{"KeyId":@KEY@,"Message":"aGk=","Mac":"aGk=","MacAlgorithm":"HMAC_SHA_256"}`},
		{"DeriveSharedSecret", fmt.Sprintf(`{"KeyId":@KEY@,"KeyAgreementAlgorithm":"ECDH","PublicKey":%q}`, base64.StdEncoding.EncodeToString(peerDER))},
		{"DescribeKey", `{"KeyId":@KEY@}`},
		{"CreateGrant", `{"KeyId":@KEY@,"GranteePrincipal":"arn:aws:iam::444455556666:root","Operations":["Decrypt"]}`},
		{"ListGrants", `{"KeyId":@KEY@}`},
		{"RevokeGrant", `{"KeyId":@KEY@,"GrantId":"` + grantID + `"}`},
		{"RetireGrant", `{"KeyId":@KEY@,"GrantId":"` + grantID + `"}`},
		{"GetKeyPolicy", `{"KeyId":@KEY@,"PolicyName":"default"}`},
		{"PutKeyPolicy", `{"KeyId":@KEY@,"PolicyName":"default","Policy":` + string(policy) + `}`},
		{"ListKeyPolicies", `{"KeyId":@KEY@}`},
		{"EnableKey", `{"KeyId":@KEY@}`},
		{"DisableKey", `{"KeyId":@KEY@}`},
		{"ScheduleKeyDeletion", `{"KeyId":@KEY@,"PendingWindowInDays":7}`},
		{"CancelKeyDeletion", `{"KeyId":@KEY@}`},
		{"UpdateKeyDescription", `{"KeyId":@KEY@,"Description":"mine now"}`},
		{"TagResource", `{"KeyId":@KEY@,"Tags":[{"TagKey":"a","TagValue":"b"}]}`},
		{"UntagResource", `{"KeyId":@KEY@,"TagKeys":["a"]}`},
		{"ListResourceTags", `{"KeyId":@KEY@}`},
		{"EnableKeyRotation", `{"KeyId":@KEY@}`},
		{"DisableKeyRotation", `{"KeyId":@KEY@}`},
		{"GetKeyRotationStatus", `{"KeyId":@KEY@}`},
		{"RotateKeyOnDemand", `{"KeyId":@KEY@}`},
		{"ListKeyRotations", `{"KeyId":@KEY@}`},
		{"GetParametersForImport", `{"KeyId":@KEY@,"WrappingAlgorithm":"RSAES_OAEP_SHA_256","WrappingKeySpec":"RSA_2048"}`},
		{"ImportKeyMaterial", `{"KeyId":@KEY@,"ImportToken":"aGk=","EncryptedKeyMaterial":"aGk=","ExpirationModel":"KEY_MATERIAL_DOES_NOT_EXPIRE"}`},
		{"DeleteImportedKeyMaterial", `{"KeyId":@KEY@}`},
		{"ListAliases", `{"KeyId":@KEY@}`},
		{"CreateAlias", `{"AliasName":"alias/taken-over","TargetKeyId":@KEY@}`},
	}
	bSigning := signing{akid: bCreds.ID, secret: bCreds.Secret, service: "kms", region: e2eRegion}
	for _, o := range ops {
		t.Run(o.op+" "+o.body, func(t *testing.T) {
			answers := map[string]string{} // state -> __type: message shape
			for state, k := range keys {
				if k.blob == "" && strings.Contains(o.body, "@BLOB@") {
					continue // no ciphertext of this key to name
				}
				body := strings.NewReplacer("@BBLOB@", fmt.Sprintf("%q", base64.StdEncoding.EncodeToString(bBlob.CiphertextBlob)),
					"@BKEY@", fmt.Sprintf("%q", bKey), "@KEY@", fmt.Sprintf("%q", k.arn), "@BLOB@", fmt.Sprintf("%q", k.blob)).Replace(o.body)
				req := e.kmsRequest(t, o.op, body)
				s := bSigning
				s.at = e.rootSigning().at
				signWith(t, req, body, s)
				r := e.send(t, req)
				typ, _ := r.json(t)["__type"].(string)
				if r.status == http.StatusOK {
					t.Errorf("%s on A's %s key succeeded for account B", o.op, state)
					continue
				}
				if typ != "AccessDeniedException" && typ != "NotFoundException" {
					msg, _ := r.json(t)["message"].(string)
					t.Errorf("%s on A's %s key: account B got %s (%s), which tells it about the key", o.op, state, typ, msg)
				}
				answers[state] = typ
			}
			if _, ok := answers["enabled"]; !ok {
				t.Fatal("no answer for the enabled key")
			}
			for state, typ := range answers {
				if typ != answers["enabled"] {
					t.Errorf("%s: A's %s key gives account B %s, an enabled one %s", o.op, state, typ, answers["enabled"])
				}
			}
		})
	}

	// None of it changed anything.
	for state, k := range keys {
		m, err := e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.arn)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(m.KeyMetadata.Description) == "mine now" {
			t.Errorf("account B changed A's %s key", state)
		}
	}
}
