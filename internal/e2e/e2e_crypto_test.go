package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/openkms/kms/internal/keys"
)

// Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext) and
// GenerateRandom through the SDK.

const (
	incorrectKeyMsg = "The key ID in the request does not identify a CMK that can perform this operation."
	dryRunMsg       = "The request would have succeeded, but the DryRun option is set."
)

func TestE2EEncryptDecryptRoundTrip(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	e.newKey(t)
	e.createAlias(t, "alias/data", id)
	material := aws.ToString(e.describe(t, id).CurrentKeyMaterialId)
	forms := []string{id, e.keyARN(id), "alias/data", e.aliasARN("alias/data")}

	for _, enc := range forms {
		t.Run("encrypt with "+enc, func(t *testing.T) {
			pt := mustRandom(t, 100)
			ec := map[string]string{"purpose": "test", "form": enc}
			out, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(enc), Plaintext: pt, EncryptionContext: ec})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.KeyId) != e.keyARN(id) || out.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
				t.Errorf("Encrypt KeyId %s algorithm %s", aws.ToString(out.KeyId), out.EncryptionAlgorithm)
			}
			if len(out.CiphertextBlob) == 0 || len(out.CiphertextBlob) > 6144 || bytes.Contains(out.CiphertextBlob, pt) {
				t.Errorf("ciphertext of %d bytes", len(out.CiphertextBlob))
			}
			if requestID(out.ResultMetadata) == "" {
				t.Error("Encrypt response has no request id")
			}
			// Decrypt without a KeyId, and with each form of it.
			for _, dec := range append([]string{""}, forms...) {
				in := &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec}
				if dec != "" {
					in.KeyId = aws.String(dec)
				}
				d, err := e.client.Decrypt(ctx, in)
				if err != nil {
					t.Fatalf("Decrypt with KeyId %q: %v", dec, err)
				}
				if !bytes.Equal(d.Plaintext, pt) || aws.ToString(d.KeyId) != e.keyARN(id) ||
					d.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault || aws.ToString(d.KeyMaterialId) != material {
					t.Errorf("Decrypt with KeyId %q: plaintext ok %v, KeyId %s, algorithm %s, KeyMaterialId %s (want %s)",
						dec, bytes.Equal(d.Plaintext, pt), aws.ToString(d.KeyId), d.EncryptionAlgorithm, aws.ToString(d.KeyMaterialId), material)
				}
			}
		})
	}
	t.Run("explicit SYMMETRIC_DEFAULT", func(t *testing.T) {
		out, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("a"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault}); err != nil {
			t.Fatal(err)
		}
		_, err = e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("a"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
		expectAPIErrorCode(t, err, "InvalidKeyUsageException")
		expectTyped[*types.InvalidKeyUsageException](t, err)
	})
	t.Run("two encryptions differ", func(t *testing.T) {
		a := e.encrypt(t, id, []byte("same"), nil).CiphertextBlob
		b := e.encrypt(t, id, []byte("same"), nil).CiphertextBlob
		if bytes.Equal(a, b) {
			t.Error("two encryptions of the same plaintext are identical")
		}
	})
}

func TestE2EEncryptErrors(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	unknown := "0b7a4d2e-5c1f-4e3a-9d8b-7f6e5d4c3b2a"
	cases := []struct {
		name      string
		keyID     string
		pt        []byte
		code, msg string
	}{
		{"4097 bytes", id, make([]byte, 4097), "ValidationException",
			"1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"},
		{"empty plaintext", id, []byte{}, "ValidationException",
			"1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"unknown key", unknown, []byte("x"), "NotFoundException", "Key '" + e.keyARN(unknown) + "' does not exist"},
		{"malformed key", "x", []byte("x"), "NotFoundException", "Invalid keyId 'x'"},
		{"unknown alias", "alias/none", []byte("x"), "NotFoundException", "Alias " + e.aliasARN("alias/none") + " is not found."},
		{"other region", "arn:aws:kms:us-west-2:" + e2eAccount + ":key/" + id, []byte("x"), "NotFoundException", "Invalid arn us-west-2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(c.keyID), Plaintext: c.pt})
			expectAPIError(t, err, c.code, c.msg)
		})
	}
	for _, n := range []int{1, 4096} {
		pt := mustRandom(t, n)
		if got := e.decrypt(t, e.encrypt(t, id, pt, nil).CiphertextBlob, nil).Plaintext; !bytes.Equal(got, pt) {
			t.Errorf("round trip of %d bytes failed", n)
		}
	}
	// The limit is the server's: the raw protocol gets the same answer.
	r := e.rawCall(t, "Encrypt", `{"KeyId":"`+id+`","Plaintext":"`+b64(make([]byte, 4097))+`"}`)
	expectRawError(t, r, 400, "ValidationException",
		"1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096")
	r = e.rawCall(t, "Encrypt", `{"KeyId":"`+id+`"}`)
	expectRawError(t, r, 400, "ValidationException",
		"1 validation error detected: Value null at 'plaintext' failed to satisfy constraint: Member must not be null")
	r = e.rawCall(t, "Encrypt", `{"Plaintext":"AA=="}`)
	expectRawError(t, r, 400, "ValidationException",
		"1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
}

func TestE2EDecryptWithWrongKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	a, b := e.newKey(t), e.newKey(t)
	e.createAlias(t, "alias/b", b)
	blob := e.encrypt(t, a, []byte("for a"), nil).CiphertextBlob
	for _, wrong := range []string{b, e.keyARN(b), "alias/b", e.aliasARN("alias/b")} {
		_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: aws.String(wrong)})
		expectAPIError(t, err, "IncorrectKeyException", incorrectKeyMsg)
		expectTyped[*types.IncorrectKeyException](t, err)
	}
	// A KeyId that names no key is refused as AWS refuses it: Decrypt
	// does not tell a missing key from one the caller may not use.
	unknown := "0b7a4d2e-5c1f-4e3a-9d8b-7f6e5d4c3b2a"
	for _, missing := range []string{unknown, e.keyARN(unknown)} {
		_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: aws.String(missing)})
		expectAPIError(t, err, "AccessDeniedException", "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.")
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceKeyId: aws.String(missing), DestinationKeyId: aws.String(a)})
		expectAPIError(t, err, "AccessDeniedException", "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.")
	}
	// A malformed KeyId is still NotFoundException.
	_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: aws.String("not-a-key")})
	expectAPIError(t, err, "NotFoundException", "Invalid keyId 'not-a-key'")
}

func TestE2EEncryptionContext(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	cases := []struct {
		name     string
		enc, dec map[string]string
		ok       bool
	}{
		{"exact", map[string]string{"a": "1", "b": "2"}, map[string]string{"b": "2", "a": "1"}, true},
		{"none and none", nil, nil, true},
		{"none and empty", nil, map[string]string{}, true},
		{"empty and none", map[string]string{}, nil, true},
		{"unicode", map[string]string{"ключ": "значение"}, map[string]string{"ключ": "значение"}, true},
		{"ab:c vs a:bc", map[string]string{"ab": "c"}, map[string]string{"a": "bc"}, false},
		{"missing", map[string]string{"a": "1"}, nil, false},
		{"missing but empty", map[string]string{"a": "1"}, map[string]string{}, false},
		{"extra pair", map[string]string{"a": "1"}, map[string]string{"a": "1", "b": "2"}, false},
		{"extra on decrypt only", nil, map[string]string{"a": "1"}, false},
		{"one pair missing", map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "1"}, false},
		{"value differs", map[string]string{"a": "1"}, map[string]string{"a": "2"}, false},
		{"value case", map[string]string{"a": "x"}, map[string]string{"a": "X"}, false},
		{"key case", map[string]string{"a": "x"}, map[string]string{"A": "x"}, false},
		{"empty value vs absent", map[string]string{"a": ""}, nil, false},
		{"separator games", map[string]string{"a": "b", "c": "d"}, map[string]string{"a": "b\x00c\x00d"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pt := []byte("context-bound " + c.name)
			blob := e.encrypt(t, id, pt, c.enc).CiphertextBlob
			out, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: c.dec})
			if c.ok {
				if err != nil {
					t.Fatalf("Decrypt: %v", err)
				}
				if !bytes.Equal(out.Plaintext, pt) {
					t.Error("wrong plaintext")
				}
				return
			}
			expectAPIErrorCode(t, err, "InvalidCiphertextException")
			expectTyped[*types.InvalidCiphertextException](t, err)
			// Also with the KeyId given.
			_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: c.dec, KeyId: aws.String(id)})
			expectAPIErrorCode(t, err, "InvalidCiphertextException")
		})
	}
	t.Run("no message on the wire", func(t *testing.T) {
		blob := e.encrypt(t, id, []byte("x"), map[string]string{"a": "1"}).CiphertextBlob
		r := e.rawCall(t, "Decrypt", `{"CiphertextBlob":"`+b64(blob)+`"}`)
		expectRawError(t, r, 400, "InvalidCiphertextException", "-")
	})
	t.Run("empty context key", func(t *testing.T) {
		_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x"), EncryptionContext: map[string]string{"": "v"}})
		expectAPIErrorCode(t, err, "ValidationException")
	})
}

func TestE2ECiphertextTampering(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	other := e.newKey(t)
	ec := map[string]string{"k": "v"}
	blob := e.encrypt(t, id, []byte("sixteen byte msg"), ec).CiphertextBlob
	e.encrypt(t, other, []byte("warm"), nil)

	decryptFails := func(t *testing.T, what string, b []byte) {
		t.Helper()
		_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: b, EncryptionContext: ec})
		if err == nil {
			t.Errorf("%s: Decrypt succeeded", what)
			return
		}
		var ic *types.InvalidCiphertextException
		if !errors.As(err, &ic) {
			t.Errorf("%s: got %v, want InvalidCiphertextException", what, err)
		}
	}
	t.Run("bit flips", func(t *testing.T) {
		for i := range len(blob) * 8 {
			b := bytes.Clone(blob)
			b[i/8] ^= 1 << (i % 8)
			if i/8 >= 1 && i/8 <= 16 {
				// The header's key id now names a key that does not
				// exist: AWS's answer for that.
				_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: b, EncryptionContext: ec})
				expectAPIError(t, err, "AccessDeniedException", ciphertextKeyMsg)
				continue
			}
			decryptFails(t, "flip of bit "+strconv.Itoa(i), b)
		}
	})
	t.Run("truncation", func(t *testing.T) {
		for n := 1; n < len(blob); n++ {
			decryptFails(t, "first "+strconv.Itoa(n)+" bytes", blob[:n])
		}
		// Cut where what is left does not start with the format byte:
		// one in 256 key ids has it at byte 4, and the rest would then
		// read as a header naming another key (AccessDeniedException, as
		// the bit flips above expect).
		cut := 5
		for blob[cut] == keys.FormatV1 {
			cut++
		}
		decryptFails(t, "header removed", blob[cut:])
	})
	t.Run("extension", func(t *testing.T) {
		decryptFails(t, "one byte appended", append(bytes.Clone(blob), 0))
		decryptFails(t, "bad_data appended", append(bytes.Clone(blob), "bad_data"...))
		decryptFails(t, "doubled", append(bytes.Clone(blob), blob...))
	})
	t.Run("garbage", func(t *testing.T) {
		decryptFails(t, "random 100 bytes", mustRandom(t, 100))
		decryptFails(t, "one byte", []byte{1})
		decryptFails(t, "6144 bytes", mustRandom(t, 6144))
	})
	t.Run("limits", func(t *testing.T) {
		_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: make([]byte, 6145)})
		expectAPIError(t, err, "ValidationException",
			"1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length less than or equal to 6144")
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte{}})
		expectAPIError(t, err, "ValidationException",
			"1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length greater than or equal to 1")
		r := e.rawCall(t, "Decrypt", `{}`)
		expectRawError(t, r, 400, "ValidationException",
			"1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null")
	})
	// The blob is still good.
	if got := e.decrypt(t, blob, ec).Plaintext; string(got) != "sixteen byte msg" {
		t.Errorf("original blob decrypts to %q", got)
	}
}

func TestE2EKeyStatesForCrypto(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	good := e.newKey(t)
	arn := e.keyARN(id)
	e.createAlias(t, "alias/stateful", id)
	blob := e.encrypt(t, id, []byte("before"), nil).CiphertextBlob
	goodBlob := e.encrypt(t, good, []byte("other"), nil).CiphertextBlob

	ops := map[string]func() error{
		"Encrypt": func() error {
			_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")})
			return err
		},
		"Encrypt via alias": func() error {
			_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/stateful"), Plaintext: []byte("x")})
			return err
		},
		"Decrypt": func() error {
			_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
			return err
		},
		"Decrypt with KeyId": func() error {
			_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: aws.String(arn)})
			return err
		},
		"ReEncrypt from": func() error {
			_, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyId: aws.String(good)})
			return err
		},
		"ReEncrypt to": func() error {
			_, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: goodBlob, DestinationKeyId: aws.String(id)})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
			return err
		},
		"GenerateDataKeyWithoutPlaintext": func() error {
			_, err := e.client.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(id), NumberOfBytes: aws.Int32(8)})
			return err
		},
	}
	e.disable(t, id)
	for name, op := range ops {
		t.Run("disabled/"+name, func(t *testing.T) {
			err := op()
			expectAPIError(t, err, "DisabledException", arn+" is disabled.")
			expectTyped[*types.DisabledException](t, err)
		})
	}
	if _, err := e.client.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	for name, op := range ops {
		if err := op(); err != nil {
			t.Errorf("re-enabled/%s: %v", name, err)
		}
	}
	e.scheduleDeletion(t, id, 7)
	for name, op := range ops {
		t.Run("pending deletion/"+name, func(t *testing.T) {
			err := op()
			expectAPIError(t, err, "KMSInvalidStateException", arn+" is pending deletion.")
			expectTyped[*types.KMSInvalidStateException](t, err)
		})
	}
	if _, err := e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	// Cancelled deletion leaves the key Disabled.
	expectAPIError(t, ops["Encrypt"](), "DisabledException", arn+" is disabled.")
}

func TestE2EDryRun(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	dst := e.newKey(t)
	blob := e.encrypt(t, id, []byte("dry"), nil).CiphertextBlob
	yes := aws.Bool(true)
	ops := map[string]func(key string) error{
		"Encrypt": func(key string) error {
			_, err := e.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x"), DryRun: yes})
			return err
		},
		"Decrypt": func(key string) error {
			_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, KeyId: aws.String(key), DryRun: yes})
			return err
		},
		"ReEncrypt": func(key string) error {
			_, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceKeyId: aws.String(key), DestinationKeyId: aws.String(dst), DryRun: yes})
			return err
		},
		"GenerateDataKey": func(key string) error {
			_, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(key), KeySpec: types.DataKeySpecAes128, DryRun: yes})
			return err
		},
		"GenerateDataKeyWithoutPlaintext": func(key string) error {
			_, err := e.client.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(key), KeySpec: types.DataKeySpecAes256, DryRun: yes})
			return err
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			err := op(id)
			expectAPIError(t, err, "DryRunOperationException", dryRunMsg)
			expectTyped[*types.DryRunOperationException](t, err)
		})
	}
	// A dry run that would fail reports the failure instead.
	e.disable(t, id)
	for name, op := range ops {
		t.Run("disabled/"+name, func(t *testing.T) {
			expectAPIError(t, op(id), "DisabledException", e.keyARN(id)+" is disabled.")
		})
	}
	other := e.newKey(t)
	expectAPIError(t, ops["Decrypt"](other), "IncorrectKeyException", incorrectKeyMsg)
}

// A dry run with DryRunModifiers IGNORE_CIPHERTEXT tests the caller's
// permission on the key named, without a ciphertext.
func TestE2EDryRunIgnoreCiphertext(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id, dst := e.newKey(t), e.newKey(t)
	e.createAlias(t, "alias/dry", id)
	yes := aws.Bool(true)
	ignore := []types.DryRunModifierType{types.DryRunModifierTypeIgnoreCiphertext}
	decrypt := func(c *kms.Client, in kms.DecryptInput) error {
		_, err := c.Decrypt(ctx, &in)
		return err
	}
	reEncrypt := func(c *kms.Client, in kms.ReEncryptInput) error {
		_, err := c.ReEncrypt(ctx, &in)
		return err
	}
	for name, err := range map[string]error{
		"Decrypt without a blob":           decrypt(e.client, kms.DecryptInput{KeyId: aws.String(id), DryRun: yes, DryRunModifiers: ignore}),
		"Decrypt through an alias":         decrypt(e.client, kms.DecryptInput{KeyId: aws.String("alias/dry"), DryRun: yes, DryRunModifiers: ignore}),
		"Decrypt with a blob that is none": decrypt(e.client, kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: []byte("garbage"), DryRun: yes, DryRunModifiers: ignore}),
		"ReEncrypt without a blob":         reEncrypt(e.client, kms.ReEncryptInput{SourceKeyId: aws.String(id), DestinationKeyId: aws.String(dst), DryRun: yes, DryRunModifiers: ignore}),
	} {
		t.Run(name, func(t *testing.T) {
			expectAPIError(t, err, "DryRunOperationException", dryRunMsg)
		})
	}
	// Without the modifier, or without DryRun, the blob is required and
	// read; the modifier needs the key named.
	expectAPIError(t, decrypt(e.client, kms.DecryptInput{KeyId: aws.String(id), DryRunModifiers: ignore}), "ValidationException",
		"1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null")
	expectAPIError(t, decrypt(e.client, kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: []byte("garbage"), DryRun: yes}), "InvalidCiphertextException", "")
	expectAPIError(t, decrypt(e.client, kms.DecryptInput{DryRun: yes, DryRunModifiers: ignore}), "ValidationException",
		"1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	expectAPIError(t, reEncrypt(e.client, kms.ReEncryptInput{DestinationKeyId: aws.String(dst), DryRun: yes, DryRunModifiers: ignore}), "ValidationException",
		"1 validation error detected: Value null at 'sourceKeyId' failed to satisfy constraint: Member must not be null")
	expectAPIError(t, decrypt(e.client, kms.DecryptInput{KeyId: aws.String(id), CiphertextBlob: []byte("garbage"), DryRun: yes, DryRunModifiers: []types.DryRunModifierType{"BOGUS"}}), "ValidationException",
		"1 validation error detected: Value 'BOGUS' at 'dryRunModifiers.1.member' failed to satisfy constraint: Member must satisfy enum value set: [IGNORE_CIPHERTEXT]")

	// The permission is what is tested: a user IAM does not allow to
	// decrypt is refused, one it allows gets the dry run's answer.
	gina := e.kpUser(t, "gina", "")
	kpDenied(t, decrypt(gina.kms, kms.DecryptInput{KeyId: aws.String(e.keyARN(id)), DryRun: yes, DryRunModifiers: ignore}),
		gina.arn, "kms:Decrypt", e.keyARN(id), kpNoIdentity("kms:Decrypt"))
	kpDenied(t, reEncrypt(gina.kms, kms.ReEncryptInput{SourceKeyId: aws.String(e.keyARN(id)), DestinationKeyId: aws.String(e.keyARN(dst)), DryRun: yes, DryRunModifiers: ignore}),
		gina.arn, "kms:ReEncryptFrom", e.keyARN(id), kpNoIdentity("kms:ReEncryptFrom"))
	e.kpPutUserPolicy(t, "gina", "decrypt", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}`)
	expectAPIError(t, decrypt(gina.kms, kms.DecryptInput{KeyId: aws.String(e.keyARN(id)), DryRun: yes, DryRunModifiers: ignore}), "DryRunOperationException", dryRunMsg)

	// A dry run that would fail on the key reports that.
	e.disable(t, id)
	expectAPIError(t, decrypt(e.client, kms.DecryptInput{KeyId: aws.String(id), DryRun: yes, DryRunModifiers: ignore}), "DisabledException", e.keyARN(id)+" is disabled.")
	expectAPIError(t, reEncrypt(e.client, kms.ReEncryptInput{SourceKeyId: aws.String(dst), DestinationKeyId: aws.String(id), DryRun: yes, DryRunModifiers: ignore}), "DisabledException", e.keyARN(id)+" is disabled.")
}

// A dry run that ignores the ciphertext answers a KeyId (or SourceKeyId)
// naming no key as the call does: with AWS's AccessDeniedException for a
// ciphertext's key, not a NotFoundException that tells the two apart.
func TestE2EDryRunIgnoreCiphertextOfNoKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	dst := e.newKey(t)
	blob := e.encrypt(t, dst, []byte("p"), nil).CiphertextBlob
	ignore := []types.DryRunModifierType{types.DryRunModifierTypeIgnoreCiphertext}
	const other = "444455556666"
	for _, missing := range []string{"11111111-2222-3333-4444-555555555555", e.keyARN("11111111-2222-3333-4444-555555555555"),
		"arn:aws:kms:" + e2eRegion + ":" + other + ":key/11111111-2222-3333-4444-555555555555"} {
		_, err := e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(missing), CiphertextBlob: blob})
		expectAPIError(t, err, "AccessDeniedException", ciphertextKeyMsg)
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(missing), DryRun: aws.Bool(true), DryRunModifiers: ignore})
		expectAPIError(t, err, "AccessDeniedException", ciphertextKeyMsg)
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{SourceKeyId: aws.String(missing), CiphertextBlob: blob, DestinationKeyId: aws.String(dst)})
		expectAPIError(t, err, "AccessDeniedException", ciphertextKeyMsg)
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{SourceKeyId: aws.String(missing), DestinationKeyId: aws.String(dst),
			DryRun: aws.Bool(true), DryRunModifiers: ignore})
		expectAPIError(t, err, "AccessDeniedException", ciphertextKeyMsg)
	}
}

func TestE2EReEncrypt(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	src, dst := e.newKey(t), e.newKey(t)
	e.createAlias(t, "alias/dst", dst)
	srcEC := map[string]string{"stage": "source"}
	dstEC := map[string]string{"stage": "destination"}
	pt := []byte("re-encrypt me")
	blob := e.encrypt(t, src, pt, srcEC).CiphertextBlob
	srcMaterial := aws.ToString(e.describe(t, src).CurrentKeyMaterialId)
	dstMaterial := aws.ToString(e.describe(t, dst).CurrentKeyMaterialId)

	t.Run("to another key", func(t *testing.T) {
		out, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{
			CiphertextBlob: blob, SourceEncryptionContext: srcEC, SourceKeyId: aws.String(src),
			DestinationKeyId: aws.String("alias/dst"), DestinationEncryptionContext: dstEC,
		})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.SourceKeyId) != e.keyARN(src) || aws.ToString(out.KeyId) != e.keyARN(dst) ||
			out.SourceEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault ||
			out.DestinationEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault ||
			aws.ToString(out.SourceKeyMaterialId) != srcMaterial || aws.ToString(out.DestinationKeyMaterialId) != dstMaterial {
			t.Errorf("ReEncrypt output: source %s dest %s algs %s/%s materials %s/%s",
				aws.ToString(out.SourceKeyId), aws.ToString(out.KeyId), out.SourceEncryptionAlgorithm, out.DestinationEncryptionAlgorithm,
				aws.ToString(out.SourceKeyMaterialId), aws.ToString(out.DestinationKeyMaterialId))
		}
		d := e.decrypt(t, out.CiphertextBlob, dstEC)
		if !bytes.Equal(d.Plaintext, pt) || aws.ToString(d.KeyId) != e.keyARN(dst) {
			t.Errorf("re-encrypted blob decrypts to %q under %s", d.Plaintext, aws.ToString(d.KeyId))
		}
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: srcEC})
		expectAPIErrorCode(t, err, "InvalidCiphertextException")
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: dstEC, KeyId: aws.String(src)})
		expectAPIError(t, err, "IncorrectKeyException", incorrectKeyMsg)
	})
	t.Run("same key new context", func(t *testing.T) {
		out, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{
			CiphertextBlob: blob, SourceEncryptionContext: srcEC, DestinationKeyId: aws.String(src), DestinationEncryptionContext: dstEC,
		})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.SourceKeyId) != e.keyARN(src) || aws.ToString(out.KeyId) != e.keyARN(src) {
			t.Errorf("source %s dest %s", aws.ToString(out.SourceKeyId), aws.ToString(out.KeyId))
		}
		if bytes.Equal(out.CiphertextBlob, blob) {
			t.Error("ReEncrypt returned the input blob")
		}
		if got := e.decrypt(t, out.CiphertextBlob, dstEC).Plaintext; !bytes.Equal(got, pt) {
			t.Errorf("decrypts to %q", got)
		}
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: srcEC})
		expectAPIErrorCode(t, err, "InvalidCiphertextException")
		// No destination context: the result has none.
		out, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: srcEC, DestinationKeyId: aws.String(src)})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.decrypt(t, out.CiphertextBlob, nil).Plaintext; !bytes.Equal(got, pt) {
			t.Errorf("decrypts to %q", got)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: srcEC, SourceKeyId: aws.String(dst), DestinationKeyId: aws.String(dst)})
		expectAPIError(t, err, "IncorrectKeyException", incorrectKeyMsg)
		expectTyped[*types.IncorrectKeyException](t, err)
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: map[string]string{"stage": "wrong"}, DestinationKeyId: aws.String(dst)})
		expectAPIErrorCode(t, err, "InvalidCiphertextException")
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyId: aws.String(dst)})
		expectAPIErrorCode(t, err, "InvalidCiphertextException")
		unknown := "0b7a4d2e-5c1f-4e3a-9d8b-7f6e5d4c3b2a"
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionContext: srcEC, DestinationKeyId: aws.String(unknown)})
		expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob[:20], DestinationKeyId: aws.String(dst)})
		expectAPIErrorCode(t, err, "InvalidCiphertextException")
		r := e.rawCall(t, "ReEncrypt", `{"CiphertextBlob":"`+b64(blob)+`"}`)
		expectRawError(t, r, 400, "ValidationException",
			"1 validation error detected: Value null at 'destinationKeyId' failed to satisfy constraint: Member must not be null")
	})
}

func TestE2EGenerateDataKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	id := e.newKey(t)
	e.createAlias(t, "alias/dk", id)
	material := aws.ToString(e.describe(t, id).CurrentKeyMaterialId)
	ec := map[string]string{"file": "a.txt"}
	cases := []struct {
		name string
		spec types.DataKeySpec
		n    *int32
		want int
	}{
		{"AES_256", types.DataKeySpecAes256, nil, 32},
		{"AES_128", types.DataKeySpecAes128, nil, 16},
		{"1 byte", "", aws.Int32(1), 1},
		{"1024 bytes", "", aws.Int32(1024), 1024},
		{"64 bytes", "", aws.Int32(64), 64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("alias/dk"), KeySpec: c.spec, NumberOfBytes: c.n, EncryptionContext: ec})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Plaintext) != c.want || aws.ToString(out.KeyId) != e.keyARN(id) || aws.ToString(out.KeyMaterialId) != material {
				t.Errorf("GenerateDataKey: %d bytes, KeyId %s, KeyMaterialId %s", len(out.Plaintext), aws.ToString(out.KeyId), aws.ToString(out.KeyMaterialId))
			}
			d := e.decrypt(t, out.CiphertextBlob, ec)
			if !bytes.Equal(d.Plaintext, out.Plaintext) || aws.ToString(d.KeyId) != e.keyARN(id) {
				t.Error("the data key's CiphertextBlob does not decrypt to its Plaintext")
			}
			_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob})
			expectAPIErrorCode(t, err, "InvalidCiphertextException")

			wo, err := e.client.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(id), KeySpec: c.spec, NumberOfBytes: c.n, EncryptionContext: ec})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(wo.KeyId) != e.keyARN(id) || aws.ToString(wo.KeyMaterialId) != material {
				t.Errorf("WithoutPlaintext: KeyId %s KeyMaterialId %s", aws.ToString(wo.KeyId), aws.ToString(wo.KeyMaterialId))
			}
			if got := e.decrypt(t, wo.CiphertextBlob, ec).Plaintext; len(got) != c.want {
				t.Errorf("WithoutPlaintext blob decrypts to %d bytes, want %d", len(got), c.want)
			}
		})
	}
	t.Run("two data keys differ", func(t *testing.T) {
		a, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a.Plaintext, b.Plaintext) {
			t.Error("two data keys are equal")
		}
	})
	t.Run("no Plaintext on the wire without plaintext", func(t *testing.T) {
		r := e.rawCall(t, "GenerateDataKeyWithoutPlaintext", `{"KeyId":"`+id+`","KeySpec":"AES_256"}`)
		m := r.json(t)
		if r.status != 200 || m["Plaintext"] != nil || m["CiphertextBlob"] == nil {
			t.Errorf("GenerateDataKeyWithoutPlaintext: %d %s", r.status, r.body)
		}
	})
	errCases := []struct {
		name      string
		spec      types.DataKeySpec
		n         *int32
		code, msg string
	}{
		{"both", types.DataKeySpecAes256, aws.Int32(32), "ValidationException", "Please specify either number of bytes or key spec."},
		{"neither", "", nil, "ValidationException", "Please specify either number of bytes or key spec."},
		{"0 bytes", "", aws.Int32(0), "ValidationException",
			"1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"1025 bytes", "", aws.Int32(1025), "ValidationException",
			"1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"},
		{"AES-256", "AES-256", nil, "ValidationException",
			"1 validation error detected: Value 'AES-256' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, ECC_NIST_P384, "},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: c.spec, NumberOfBytes: c.n})
			expectAPIErrorPrefix(t, err, c.code, c.msg)
			_, err = e.client.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(id), KeySpec: c.spec, NumberOfBytes: c.n})
			expectAPIErrorPrefix(t, err, c.code, c.msg)
		})
	}
	unknown := "0b7a4d2e-5c1f-4e3a-9d8b-7f6e5d4c3b2a"
	_, err := e.client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(unknown), KeySpec: types.DataKeySpecAes256})
	expectAPIError(t, err, "NotFoundException", "Key '"+e.keyARN(unknown)+"' does not exist")
}

func TestE2EGenerateRandom(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	for _, n := range []int32{1, 32, 1024} {
		out, err := e.client.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(n)})
		if err != nil {
			t.Fatalf("GenerateRandom(%d): %v", n, err)
		}
		if len(out.Plaintext) != int(n) {
			t.Errorf("GenerateRandom(%d) returned %d bytes", n, len(out.Plaintext))
		}
	}
	a, err := e.client.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.client.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Plaintext, b.Plaintext) {
		t.Error("two GenerateRandom calls returned the same bytes")
	}

	msg0 := "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
	msg1025 := "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
	msgMissing := "NumberOfBytes is required."
	// Through the SDK (which does not check ranges itself) ...
	_, err = e.client.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(0)})
	expectAPIError(t, err, "ValidationException", msg0)
	_, err = e.client.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(1025)})
	expectAPIError(t, err, "ValidationException", msg1025)
	_, err = e.client.GenerateRandom(ctx, &kms.GenerateRandomInput{})
	expectAPIError(t, err, "ValidationException", msgMissing)
	// ... and on the wire.
	expectRawError(t, e.rawCall(t, "GenerateRandom", `{"NumberOfBytes":0}`), 400, "ValidationException", msg0)
	expectRawError(t, e.rawCall(t, "GenerateRandom", `{"NumberOfBytes":1025}`), 400, "ValidationException", msg1025)
	expectRawError(t, e.rawCall(t, "GenerateRandom", `{}`), 400, "ValidationException", msgMissing)
	expectRawError(t, e.rawCall(t, "GenerateRandom", `{"NumberOfBytes":null}`), 400, "ValidationException", msgMissing)
	expectRawError(t, e.rawCall(t, "GenerateRandom", `{"NumberOfBytes":-1}`), 400, "ValidationException",
		"1 validation error detected: Value '-1' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1")
	r := e.rawCall(t, "GenerateRandom", `{"NumberOfBytes":12}`)
	if r.status != 200 {
		t.Fatalf("GenerateRandom: %d %s", r.status, r.body)
	}
	if p, _ := r.json(t)["Plaintext"].(string); len(p) != 16 {
		t.Errorf("Plaintext %q is not 12 bytes of base64", p)
	}
	_, err = e.client.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8), CustomKeyStoreId: aws.String("cks-1234567890abcdef0")})
	expectAPIErrorCode(t, err, "CustomKeyStoreNotFoundException")
}

func TestE2ERequestIDs(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	seen := map[string]bool{}
	for range 3 {
		out, err := e.client.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(4)})
		if err != nil {
			t.Fatal(err)
		}
		id := requestID(out.ResultMetadata)
		if !uuidRE.MatchString(id) || seen[id] {
			t.Errorf("request id %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
	_, err := e.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("nope")})
	expectAPIErrorCode(t, err, "NotFoundException") // checks the error's request id too
	out, err := e.client.ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	if requestID(out.ResultMetadata) == "" {
		t.Error("ListKeys response has no request id")
	}
}

// TestE2ENoSecretsInResponses drives every operation once; the environment's
// cleanup then checks that no response body contained the root key, any
// key material (raw, base64 or hex) or the word "sealed".
func TestE2ENoSecretsInResponses(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	m := e.createKey(t, &kms.CreateKeyInput{Description: aws.String("d"), Tags: nTags(2, "t")})
	id := aws.ToString(m.KeyId)
	other := e.newKey(t)
	e.createAlias(t, "alias/leak", id)
	for _, op := range []string{"DescribeKey", "ListResourceTags", "EnableKey", "DisableKey", "EnableKey", "GenerateDataKey"} {
		body := `{"KeyId":"` + id + `"}`
		if op == "GenerateDataKey" {
			body = `{"KeyId":"` + id + `","KeySpec":"AES_256"}`
		}
		r := e.rawCall(t, op, body)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", op, r.status, r.body)
		}
		// Quoted forms: base64 blobs never contain a quote.
		low := strings.ToLower(string(r.body))
		for _, word := range []string{`"sealed`, `material"`, `"policy`, `root"`, `"statement`} {
			if strings.Contains(low, word) {
				t.Errorf("%s response mentions %q: %s", op, word, r.body)
			}
		}
	}
	blob := e.encrypt(t, "alias/leak", []byte("p"), nil).CiphertextBlob
	e.decrypt(t, blob, nil)
	if _, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyId: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(id), Description: aws.String("e")}); err != nil {
		t.Fatal(err)
	}
	e.listAllAliases(t, nil)
	e.listAllKeys(t)
	e.scheduleDeletion(t, other, 7)
	if _, err := e.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob[:len(blob)-1]})
	expectAPIErrorCode(t, err, "InvalidCiphertextException")
	if n := len(e.materials(t)); n != 2 {
		t.Errorf("found %d key versions in the store, want 2", n)
	}
	if e.guard.count() < 15 {
		t.Errorf("only %d responses recorded", e.guard.count())
	}
}

// ReEncrypt checks that the source key is the ciphertext's before it looks
// at the destination key's usage: a wrong SourceKeyId is
// IncorrectKeyException even when the destination could not encrypt.
func TestE2EReEncryptChecksSourceBeforeDestinationUsage(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	a, b := e.newKey(t), e.newKey(t)
	signing := e.createKey(t, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	blob := e.encrypt(t, a, []byte("for a"), nil).CiphertextBlob
	_, err := e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceKeyId: aws.String(b), DestinationKeyId: signing.KeyId})
	expectAPIError(t, err, "IncorrectKeyException", incorrectKeyMsg)
	// With the right source, the destination's usage is what is wrong.
	_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceKeyId: aws.String(a), DestinationKeyId: signing.KeyId})
	expectAPIError(t, err, "InvalidKeyUsageException", *signing.Arn+" key usage is SIGN_VERIFY which is not valid for ReEncrypt.")
}

// A blob in the symmetric format whose header names an RSA or HMAC key,
// sent without a KeyId, is refused as a ciphertext that does not
// authenticate (it once reached a nil symmetric key and answered 500).
func TestE2EHeaderNamingANonSymmetricKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	for _, spec := range []struct {
		spec  types.KeySpec
		usage types.KeyUsageType
		alg   types.EncryptionAlgorithmSpec
	}{
		{types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt, types.EncryptionAlgorithmSpecRsaesOaepSha256},
		{types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt, ""},
	} {
		out, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec.spec, KeyUsage: spec.usage})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(out.KeyMetadata.KeyId)
		kid, ok := keys.ParseID(id)
		if !ok {
			t.Fatalf("key id %q", id)
		}
		blob := make([]byte, keys.BlobOverhead+8)
		blob[0] = keys.FormatV1
		copy(blob[1:17], kid[:])
		blob[20] = 1
		_, err = e.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionAlgorithm: spec.alg})
		if spec.alg == "" {
			// Without the algorithm the default (symmetric) one is
			// checked against the key first.
			expectAPIErrorCode(t, err, "InvalidKeyUsageException")
			continue
		}
		expectAPIError(t, err, "InvalidCiphertextException", "")
		_, err = e.client.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, SourceEncryptionAlgorithm: spec.alg, DestinationKeyId: aws.String(e.newKey(t))})
		expectAPIError(t, err, "InvalidCiphertextException", "")
	}
}
