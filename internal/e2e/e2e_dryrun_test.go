package e2e_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/store"
)

const dryRunMessage = "The request would have succeeded, but the DryRun option is set."

// Every operation of the model that has a DryRun member answers
// DryRunOperationException once the call is authorized and would succeed,
// changes nothing, and is audited; a caller who may not make the call is
// refused as without DryRun.
func TestE2EDryRunEveryOperation(t *testing.T) {
	t.Parallel()
	e, logPath := newAuditedEnv(t)
	ctx := context.Background()
	sym := e.newKey(t)
	blob := e.encrypt(t, sym, []byte("secret"), nil).CiphertextBlob
	signing := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify}).KeyId)
	mac := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}).KeyId)
	agree := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement}).KeyId)
	pub, err := e.client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(agree)})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(signing), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(mac), Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	if err != nil {
		t.Fatal(err)
	}
	grant, err := e.client.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(sym), GranteePrincipal: aws.String("arn:aws:iam::" + e2eAccount + ":root"),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	if err != nil {
		t.Fatal(err)
	}
	dry := aws.Bool(true)
	calls := map[string]func(c *kms.Client) error{
		"CreateGrant": func(c *kms.Client) error {
			_, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String(sym), GranteePrincipal: aws.String("arn:aws:iam::" + e2eAccount + ":root"),
				Operations: []types.GrantOperation{types.GrantOperationEncrypt}, DryRun: dry})
			return err
		},
		"Decrypt": func(c *kms.Client) error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, DryRun: dry})
			return err
		},
		"DeriveSharedSecret": func(c *kms.Client) error {
			_, err := c.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(agree), KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh,
				PublicKey: pub.PublicKey, DryRun: dry})
			return err
		},
		"Encrypt": func(c *kms.Client) error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(sym), Plaintext: []byte("x"), DryRun: dry})
			return err
		},
		"GenerateDataKey": func(c *kms.Client) error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(sym), KeySpec: types.DataKeySpecAes256, DryRun: dry})
			return err
		},
		"GenerateDataKeyWithoutPlaintext": func(c *kms.Client) error {
			_, err := c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(sym), KeySpec: types.DataKeySpecAes256, DryRun: dry})
			return err
		},
		"GenerateDataKeyPair": func(c *kms.Client) error {
			_, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(sym), KeyPairSpec: types.DataKeyPairSpecEccNistP256, DryRun: dry})
			return err
		},
		"GenerateDataKeyPairWithoutPlaintext": func(c *kms.Client) error {
			_, err := c.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(sym), KeyPairSpec: types.DataKeyPairSpecEccNistP256, DryRun: dry})
			return err
		},
		"GenerateMac": func(c *kms.Client) error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(mac), Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256, DryRun: dry})
			return err
		},
		"ReEncrypt": func(c *kms.Client) error {
			_, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyId: aws.String(sym), DryRun: dry})
			return err
		},
		"RetireGrant": func(c *kms.Client) error {
			_, err := c.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: aws.String(e.keyARN(sym)), GrantId: grant.GrantId, DryRun: dry})
			return err
		},
		"RevokeGrant": func(c *kms.Client) error {
			_, err := c.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: aws.String(sym), GrantId: grant.GrantId, DryRun: dry})
			return err
		},
		"Sign": func(c *kms.Client) error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(signing), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, DryRun: dry})
			return err
		},
		"Verify": func(c *kms.Client) error {
			_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(signing), Message: []byte("m"), Signature: sig.Signature,
				SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, DryRun: dry})
			return err
		},
		"VerifyMac": func(c *kms.Client) error {
			_, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(mac), Message: []byte("m"), Mac: tag.Mac,
				MacAlgorithm: types.MacAlgorithmSpecHmacSha256, DryRun: dry})
			return err
		},
	}
	if want := dryRunOperations(t); want != nil {
		for _, op := range want {
			if calls[op] == nil {
				t.Errorf("the model gives %s a DryRun member; this test does not call it", op)
			}
		}
	}
	before := storeRecords(t, e.store)
	for op, call := range calls {
		expectAPIError(t, call(e.client), "DryRunOperationException", dryRunMessage)
		if after := storeRecords(t, e.store); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%s with DryRun changed the store", op)
			before = after
		}
	}
	audited := map[string]bool{}
	for _, r := range mustRecords(t, logPath) {
		if r.ErrorCode == "DryRunOperationException" {
			audited[r.EventName] = true
		}
	}
	for op := range calls {
		if !audited[op] {
			t.Errorf("no audit record of %s with DryRun", op)
		}
	}
	// Authorization comes first: a caller without permission is refused
	// as without DryRun.
	u := e.newUser(t, "nobody")
	for op, call := range calls {
		if err := call(u.kms); err == nil || errMessage(err) == dryRunMessage {
			t.Errorf("%s with DryRun by a user without permission: %v; want a refusal", op, err)
		}
	}
}

// A request with DryRun that would fail is answered with its own error,
// not DryRunOperationException, over the wire as directly.
func TestE2EDryRunOfAFailingRequest(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	rsaSign := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify}).KeyId)
	rsaEnc := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt}).KeyId)
	ecc := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify}).KeyId)
	mac := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}).KeyId)
	agree := aws.ToString(e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement}).KeyId)
	for _, tc := range []struct {
		name      string
		call      func(dry *bool) error
		code, msg string
	}{
		{"Sign, algorithm of another spec", func(dry *bool) error {
			_, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(rsaSign), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, DryRun: dry})
			return err
		}, "InvalidKeyUsageException", "Algorithm ECDSA_SHA_256 is incompatible with key spec RSA_2048."},
		{"Sign, digest of the wrong length", func(dry *bool) error {
			_, err := e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(ecc), Message: []byte("m"), MessageType: types.MessageTypeDigest,
				SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, DryRun: dry})
			return err
		}, "ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_256."},
		{"GenerateMac, algorithm of another spec", func(dry *bool) error {
			_, err := e.client.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(mac), Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha512, DryRun: dry})
			return err
		}, "InvalidKeyUsageException", "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256."},
		{"DeriveSharedSecret, garbage public key", func(dry *bool) error {
			_, err := e.client.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: aws.String(agree), KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh,
				PublicKey: []byte("garbage"), DryRun: dry})
			return err
		}, "ValidationException", ""},
		{"Encrypt, too large for RSA", func(dry *bool) error {
			_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(rsaEnc), Plaintext: make([]byte, 1000),
				EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256, DryRun: dry})
			return err
		}, "ValidationException", "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes."},
		{"Encrypt, context with RSA", func(dry *bool) error {
			_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(rsaEnc), Plaintext: []byte("p"), EncryptionContext: map[string]string{"a": "b"},
				EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256, DryRun: dry})
			return err
		}, "ValidationException", "EncryptionContext is not supported with asymmetric KMS keys."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// An empty message reaches the SDK as "UnknownError": the two
			// answers are compared with each other, and with msg if any.
			want := expectAPIErrorCode(t, tc.call(nil), tc.code)
			got := expectAPIErrorCode(t, tc.call(aws.Bool(true)), tc.code)
			if want == nil || got == nil {
				return
			}
			if tc.msg != "" && want.ErrorMessage() != tc.msg {
				t.Errorf("without DryRun: %q, want %q", want.ErrorMessage(), tc.msg)
			}
			if got.ErrorMessage() != want.ErrorMessage() {
				t.Errorf("with DryRun: %q, want %q as without", got.ErrorMessage(), want.ErrorMessage())
			}
		})
	}
	// The same keys, asked what they can do, still answer a dry run.
	_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(rsaEnc), Plaintext: make([]byte, 190),
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256, DryRun: aws.Bool(true)})
	expectAPIError(t, err, "DryRunOperationException", dryRunMessage)
	_, err = e.client.Sign(ctx, &kms.SignInput{KeyId: aws.String(rsaSign), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256, DryRun: aws.Bool(true)})
	expectAPIError(t, err, "DryRunOperationException", dryRunMessage)
}

// storeRecords is every record of st.
func storeRecords(t testing.TB, st store.Store) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := st.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) { m[string(k)] = string(v); return true, nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dryRunOperations lists the operations whose input has a DryRun member in
// the AWS KMS model botocore ships; nil (outside CI) when python3 with
// botocore is not there to find it.
func dryRunOperations(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("python3", "-c", "import botocore, os; print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 with botocore is needed to read the AWS KMS model: %v", err)
		}
		return nil
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "data", "kms", "2014-11-01", "service-2.json.gz")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var model struct {
		Operations map[string]struct {
			Input struct{ Shape string } `json:"input"`
		} `json:"operations"`
		Shapes map[string]struct {
			Members map[string]json.RawMessage `json:"members"`
		} `json:"shapes"`
	}
	if err := json.NewDecoder(zr).Decode(&model); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for name, op := range model.Operations {
		if _, ok := model.Shapes[op.Input.Shape].Members["DryRun"]; ok {
			ops = append(ops, name)
		}
	}
	if len(ops) == 0 {
		t.Fatal("no operation of the model has a DryRun member")
	}
	return ops
}
