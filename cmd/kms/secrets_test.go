package main_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	bolt "go.etcd.io/bbolt"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/testsupport"
)

// TestNoSecretInFilesOrLogs: the key material of every kind of key (each
// used), imported material, the data keys, data key pairs and plaintexts
// the API hands out, the secrets of access keys and role sessions, and
// console passwords (one typed into the user name field among them, and
// a secret sent as an access key id) are
// in none of what a server and its commands write: not in kms.db but
// sealed, nor in the audit trail and its digests, the server's output at
// its most verbose log level, a backup, an export of the trail, or the
// messages of errors provoked with them. TestNoMaterialAtRest looks at
// symmetric material in kms.db; this looks at the rest.
func TestNoSecretInFilesOrLogs(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	s := startServer(t, dir, baseEnv(), "--dev", "--log-level", "debug")
	c := s.client(t)
	secrets := map[string][]byte{}
	var answers []string // the messages of errors: none may hold a secret

	// Keys of every kind, each used once.
	for _, k := range []struct {
		spec  types.KeySpec
		usage types.KeyUsageType
	}{
		{types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt},
		{types.KeySpecRsa2048, types.KeyUsageTypeSignVerify},
		{types.KeySpecRsa2048, types.KeyUsageTypeEncryptDecrypt},
		{types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify},
		{types.KeySpecEccNistP384, types.KeyUsageTypeKeyAgreement},
		{types.KeySpecEccSecgP256k1, types.KeyUsageTypeSignVerify},
		{types.KeySpecEccNistEdwards25519, types.KeyUsageTypeSignVerify},
		{types.KeySpecMlDsa44, types.KeyUsageTypeSignVerify},
		{types.KeySpecHmac256, types.KeyUsageTypeGenerateVerifyMac},
	} {
		ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: k.spec, KeyUsage: k.usage})
		noErr(t, err, "CreateKey %s %s", k.spec, k.usage)
		md := ck.KeyMetadata
		switch {
		case k.usage == types.KeyUsageTypeSignVerify:
			_, err = c.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: []byte("m"), SigningAlgorithm: md.SigningAlgorithms[0]})
		case k.usage == types.KeyUsageTypeGenerateVerifyMac:
			_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: md.KeyId, Message: []byte("m"), MacAlgorithm: md.MacAlgorithms[0]})
		case k.usage == types.KeyUsageTypeKeyAgreement:
			peer := generateP384(t)
			var r *kms.DeriveSharedSecretOutput
			r, err = c.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: md.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peer})
			if err == nil {
				secrets["shared secret"] = r.SharedSecret
			}
		case k.spec == types.KeySpecRsa2048:
			pt := randBytes(t, 100)
			secrets["RSA plaintext"] = pt
			_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: pt, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
		default:
			pt := randBytes(t, 64)
			secrets["plaintext"] = pt
			var enc *kms.EncryptOutput
			enc, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: pt, EncryptionContext: map[string]string{"a": "b"}})
			noErr(t, err, "Encrypt")
			_, wrong := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "c"}})
			answers = append(answers, fmt.Sprint(wrong))
			dk, err2 := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256})
			noErr(t, err2, "GenerateDataKey")
			secrets["data key"] = dk.Plaintext
			for _, spec := range []types.DataKeyPairSpec{types.DataKeyPairSpecRsa2048, types.DataKeyPairSpecEccNistP256} {
				kp, err2 := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: md.KeyId, KeyPairSpec: spec})
				noErr(t, err2, "GenerateDataKeyPair %s", spec)
				secrets["data key pair "+string(spec)] = kp.PrivateKeyPlaintext
			}
			// Errors provoked with a secret: too long, and under a
			// disabled key.
			long := append(randBytes(t, 4097), pt...)
			_, err2 = c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: long})
			answers = append(answers, fmt.Sprint(err2))
			_, err2 = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: md.KeyId})
			noErr(t, err2, "DisableKey")
			_, err2 = c.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: pt})
			answers = append(answers, fmt.Sprint(err2))
			_, err2 = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: md.KeyId})
			noErr(t, err2, "EnableKey")
		}
		noErr(t, err, "using the %s %s key", k.spec, k.usage)
	}

	// Imported material.
	material := randBytes(t, 32)
	secrets["imported material"] = material
	ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	noErr(t, err, "CreateKey EXTERNAL")
	params, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: ck.KeyMetadata.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	noErr(t, err, "GetParametersForImport")
	pub, err := x509.ParsePKIXPublicKey(params.PublicKey)
	noErr(t, err, "the wrapping key")
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
	noErr(t, err, "wrap")
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: ck.KeyMetadata.KeyId, ImportToken: params.ImportToken,
		EncryptedKeyMaterial: wrapped, ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	noErr(t, err, "ImportKeyMaterial")

	// An IAM user's access key and password, a role session's secret.
	rootID, rootSecret := devCredentials(t, dir)
	creds := credentials.NewStaticCredentialsProvider(rootID, rootSecret, "")
	ic := iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), Credentials: creds, RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	_, err = ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")})
	noErr(t, err, "CreateUser")
	ak, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("alice")})
	noErr(t, err, "CreateAccessKey")
	secrets["access key secret"] = []byte(*ak.AccessKey.SecretAccessKey)
	password := "Pw-" + base64.RawURLEncoding.EncodeToString(randBytes(t, 12))
	secrets["password"] = []byte(password)
	_, err = ic.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("alice"), Password: aws.String(password)})
	noErr(t, err, "CreateLoginProfile")
	_, err = ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"sts:AssumeRole"}]}`)})
	noErr(t, err, "CreateRole")
	sc := sts.New(sts.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil),
		Credentials: credentials.NewStaticCredentialsProvider(*ak.AccessKey.AccessKeyId, *ak.AccessKey.SecretAccessKey, "")})
	ar, err := sc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111122223333:role/r"), RoleSessionName: aws.String("s1")})
	noErr(t, err, "AssumeRole")
	secrets["session secret"] = []byte(*ar.Credentials.SecretAccessKey)
	secrets["session token"] = []byte(*ar.Credentials.SessionToken)
	// Credentials swapped: the secret where the access key id goes (one
	// with a '/' would not even parse as an id).
	swapped := strings.ReplaceAll(*ak.AccessKey.SecretAccessKey, "/", "x")
	secrets["secret sent as the access key id"] = []byte(swapped)
	_, err = kms.New(kms.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil),
		Credentials: credentials.NewStaticCredentialsProvider(swapped, *ak.AccessKey.AccessKeyId, "")}).ListKeys(ctx, &kms.ListKeysInput{})
	if apiErrorCode(err) != "UnrecognizedClientException" {
		t.Fatalf("ListKeys with the credentials swapped: %v", err)
	}
	answers = append(answers, err.Error())
	// Console sign-ins: the password typed into the user name field, the
	// right one, and the access key.
	for _, form := range []map[string]string{
		{"account": "111122223333", "userName": password, "password": password},
		{"account": "111122223333", "userName": "alice", "password": password},
		{"accessKeyId": *ak.AccessKey.AccessKeyId, "secretAccessKey": *ak.AccessKey.SecretAccessKey},
	} {
		body, _ := json.Marshal(form)
		resp, err := http.Post(s.URL+"/console/api/signin", "application/json", bytes.NewReader(body))
		noErr(t, err, "console sign-in")
		resp.Body.Close()
	}

	// A backup and an export of the trail, taken while it serves.
	out := t.TempDir()
	backupFile, exportFile := filepath.Join(out, "kms.kmsbak"), filepath.Join(out, "trail.jsonl")
	if code, stdout, stderr := runToExit(t, baseEnv(), "backup", "-o", backupFile, "--data-dir", dir); code != 0 {
		t.Fatalf("kms backup: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runToExit(t, baseEnv(), "audit", "export", "--live", "--data-dir", dir, "-o", exportFile); code != 0 {
		t.Fatalf("kms audit export: exit %d\n%s%s", code, stdout, stderr)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}

	// The material of every key, as the store seals it.
	root, err := keys.ReadRootKeyFile(filepath.Join(dir, "root.key"))
	noErr(t, err, "root.key")
	db, err := bolt.Open(filepath.Join(dir, "kms.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	noErr(t, err, "open kms.db read-only")
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("kv")).ForEach(func(k, v []byte) error {
			if !bytes.HasPrefix(k, []byte("keyver/")) {
				return nil
			}
			v, err := authstore.NewKey(root).Open(k, v)
			if err != nil {
				return err
			}
			var rec struct {
				Sealed []byte `json:"sealed"`
			}
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			plain, err := root.Open(k, rec.Sealed)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			// The material follows its binding: four NUL-ended fields.
			parts := bytes.SplitN(plain, []byte{0}, 5)
			if len(parts) != 5 {
				return fmt.Errorf("%s: no binding", k)
			}
			secrets["material "+string(k)] = parts[4]
			return nil
		})
	})
	db.Close()
	noErr(t, err, "read the key material")
	if n := len(secrets); n < 22 {
		t.Fatalf("only %d secrets gathered", n)
	}

	var files []string
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != "root.key" && d.Name() != "credentials" {
			files = append(files, path)
		}
		return err
	})
	noErr(t, err, "walk the data directory")
	if len(files) < 5 {
		t.Fatalf("the data directory holds only %v", files)
	}
	haystacks := map[string][]byte{"the server's output": []byte(s.stdout.String() + s.stderr.String()),
		"the errors answered": []byte(strings.Join(answers, "\n"))}
	for _, f := range append(files, backupFile, exportFile) {
		b, err := os.ReadFile(f)
		noErr(t, err, "read %s", f)
		haystacks[f] = b
	}
	if !strings.Contains(string(haystacks[exportFile]), `"eventName":"ConsoleLogin"`) {
		t.Fatalf("the export holds no console sign-in: is it the trail?")
	}
	space := regexp.MustCompile(`\s+|\\n`)
	for what, b := range haystacks {
		flat := space.ReplaceAll(b, nil) // PEM lines, escaped newlines
		for name, secret := range secrets {
			for form, enc := range secretForms(secret) {
				if bytes.Contains(b, enc) || bytes.Contains(flat, enc) {
					t.Errorf("%s holds the %s (%s)", what, name, form)
				}
			}
		}
	}
}

// secretForms returns the encodings in which a secret, or the secret
// part of a private key's DER, might be found: forms of the secret, each
// base64 at the three alignments it can have within a longer encoding,
// lower-cased too (the trail lower-cases a name tried at sign-in), and
// for a private key its scalar or seed.
func secretForms(b []byte) map[string][]byte {
	out := forms(b)
	if len(b) >= 12 {
		out["lower case"] = bytes.ToLower(b)
	}
	for k := range 3 {
		if c := b[k:]; len(c) >= 12 {
			c = c[:len(c)/3*3]
			out[fmt.Sprint("base64 at ", k)] = []byte(base64.StdEncoding.EncodeToString(c))
			out[fmt.Sprint("base64url at ", k)] = []byte(base64.RawURLEncoding.EncodeToString(c))
		}
	}
	var scalar []byte
	switch k, _ := x509.ParsePKCS8PrivateKey(b); k := k.(type) {
	case *rsa.PrivateKey:
		scalar = k.D.Bytes()
	case *ecdsa.PrivateKey:
		scalar, _ = k.Bytes()
	case ed25519.PrivateKey:
		scalar = k.Seed()
	}
	if scalar != nil {
		for form, enc := range forms(scalar) {
			out["private scalar, "+form] = enc
		}
	}
	return out
}

// generateP384 returns the DER public key of a new P-384 key pair.
func generateP384(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	noErr(t, err, "P-384 key")
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	noErr(t, err, "marshal")
	return der
}
