package main_test

// kms decrypt of non-framed messages (content type 0x01), which the
// official Python, Java and C Encryption SDKs write when asked for a frame
// length of 0. The test writes them itself, from the specification, with a
// data key from our server through the KMS keyring.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openkms/kms/esdk"
	"github.com/openkms/kms/esdk/kmskeyring"
)

// nonFramedMessage returns a non-framed message of plain in suite (0x0478,
// 0x0578 or 0x0178) under the KMS key arn, with the encryption context
// purpose=non-framed: header (content type 0x01, frame length 0), body
// (IV 00…01, uint64 length, AES-GCM ciphertext and tag under the body AAD
// message ID | "AWSKMSEncryptionClient Single Block" | 1 | length), and
// for 0x0578 the ECDSA P-384 footer; and the header's length.
func (f *envFixture) nonFramedMessage(t *testing.T, suite esdk.Suite, plain []byte) ([]byte, int) {
	t.Helper()
	ec := map[string]string{"purpose": "non-framed"}
	var signKey *ecdsa.PrivateKey
	if suite.Signed() {
		var err error
		signKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		noErr(t, err, "GenerateKey")
		point, err := signKey.PublicKey.Bytes()
		noErr(t, err, "public key")
		compressed := append([]byte{0x02 | point[len(point)-1]&1}, point[1:49]...)
		ec[esdk.PublicKeyContextKey] = base64.StdEncoding.EncodeToString(compressed)
	}
	dataKey, edks, err := kmskeyring.New(f.s.client(t), f.arn).GenerateDataKey(testCtx(t), suite, ec)
	noErr(t, err, "GenerateDataKey")
	id := []byte{byte(suite >> 8), byte(suite)}
	h := &esdk.Header{Suite: suite, EncryptionContext: ec, EncryptedDataKeys: edks, NonFramed: true, AuthTag: make([]byte, 16)}
	var key []byte
	if suite.Committing() { // client-apis/key-derivation.md
		h.MessageID = make([]byte, 32)
		rand.Read(h.MessageID)
		prk, err := hkdf.Extract(sha512.New, dataKey, h.MessageID)
		noErr(t, err, "HKDF")
		key, err = hkdf.Expand(sha512.New, prk, string(id)+"DERIVEKEY", 32)
		noErr(t, err, "HKDF")
		h.CommitKey, err = hkdf.Expand(sha512.New, prk, "COMMITKEY", 32)
		noErr(t, err, "HKDF")
	} else {
		h.MessageID = make([]byte, 16)
		rand.Read(h.MessageID)
		h.IV = make([]byte, 12)
		key, err = hkdf.Key(sha256.New, dataKey, nil, string(id)+string(h.MessageID), 32)
		noErr(t, err, "HKDF")
	}
	block, err := aes.NewCipher(key)
	noErr(t, err, "AES")
	gcm, err := cipher.NewGCM(block)
	noErr(t, err, "GCM")
	msg, err := h.MarshalBinary()
	noErr(t, err, "MarshalBinary")
	msg = msg[:len(msg)-16-len(h.IV)]
	tag := gcm.Seal(nil, make([]byte, 12), nil, msg)
	msg = append(append(msg, h.IV...), tag...)
	headerLen := len(msg)

	iv := append(make([]byte, 11), 1)
	aad := append(bytes.Clone(h.MessageID), "AWSKMSEncryptionClient Single Block"...)
	aad = binary.BigEndian.AppendUint32(aad, 1)
	aad = binary.BigEndian.AppendUint64(aad, uint64(len(plain)))
	msg = append(msg, iv...)
	msg = binary.BigEndian.AppendUint64(msg, uint64(len(plain)))
	msg = gcm.Seal(msg, iv, plain, aad)
	if signKey != nil {
		digest := sha512.Sum384(msg)
		sig, err := ecdsa.SignASN1(rand.Reader, signKey, digest[:])
		noErr(t, err, "sign")
		msg = binary.BigEndian.AppendUint16(msg, uint16(len(sig)))
		msg = append(msg, sig...)
	}
	return msg, headerLen
}

// TestDecryptNonFramed: kms decrypt gives back, byte for byte, the
// plaintext of non-framed messages in the committing suites (signed and
// not) and, with --commitment-policy require-encrypt-allow-decrypt, in a
// version 1 suite, to a file and to stdout, with a body larger than what
// the decrypter keeps in memory; the official JavaScript SDK decrypts the
// same files, so they are what the specification says. Any changed,
// missing or added byte of the body is refused with one line and leaves
// nothing, in a file or on stdout.
func TestDecryptNonFramed(t *testing.T) {
	t.Parallel()
	f := newEnvFixture(t)
	plain := make([]byte, 3<<20/2+5)
	rand.Read(plain)
	dir := t.TempDir()
	for _, tc := range []struct {
		suite esdk.Suite
		args  []string
	}{
		{esdk.SuiteCommitKey, nil},
		{esdk.SuiteCommitKeyECDSAP384, nil},
		{esdk.SuiteHKDFSHA256, []string{"--commitment-policy", allowDecrypt}},
	} {
		t.Run(tc.suite.String(), func(t *testing.T) {
			msg, hl := f.nonFramedMessage(t, tc.suite, plain)
			file := filepath.Join(dir, tc.suite.String())
			noErr(t, os.WriteFile(file, msg, 0o600), "write message")
			f.decrypted(t, plain, file, tc.args...)
			code, stdout, stderr := runToExit(t, f.env, append(append([]string{"decrypt"}, tc.args...), file)...)
			if code != 0 || stdout != string(plain) {
				t.Fatalf("kms decrypt to stdout: exit %d, %d bytes\n%s", code, len(stdout), stderr)
			}
			if !tc.suite.Committing() {
				f.refused(t, "--commitment-policy require-encrypt-allow-decrypt decrypts it", file)
			}

			body := hl + 12 + 8
			flip := func(at int) []byte { m := bytes.Clone(msg); m[at] ^= 0x10; return m }
			longer := bytes.Clone(msg)
			binary.BigEndian.PutUint64(longer[hl+12:], uint64(len(plain)+1))
			cases := map[string][]byte{
				"IV":         flip(hl + 5),
				"length":     longer,
				"ciphertext": flip(body + len(plain)/2),
				"tag":        flip(body + len(plain) + 3),
				"truncated":  msg[:body+len(plain)],
				"appended":   append(bytes.Clone(msg), 0),
			}
			if tc.suite.Signed() {
				cases["signature"] = flip(len(msg) - 5)
			}
			for name, bad := range cases {
				file := filepath.Join(t.TempDir(), "bad")
				noErr(t, os.WriteFile(file, bad, 0o600), "write message")
				f.refused(t, "message authentication failed", file, tc.args...)
				code, stdout, stderr := runToExit(t, f.env, append(append([]string{"decrypt"}, tc.args...), file)...)
				if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 {
					t.Fatalf("%s, to stdout: exit %d, %d bytes out\n%s", name, code, len(stdout), stderr)
				}
			}
		})
	}

	t.Run("JavaScript SDK", func(t *testing.T) {
		jsDir := requireNodePackage(t, "esdk-js", "@aws-crypto/client-node")
		for _, suite := range []esdk.Suite{esdk.SuiteCommitKey, esdk.SuiteCommitKeyECDSAP384} {
			in, out := filepath.Join(dir, suite.String()), filepath.Join(t.TempDir(), "plain")
			cmd := exec.CommandContext(testCtx(t), "node", filepath.Join(jsDir, "esdk.js"), "decrypt", in, out)
			cmd.Env = f.env
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("node esdk.js decrypt %v: %v\n%s", suite, err, b)
			}
			got, err := os.ReadFile(out)
			noErr(t, err, "read the JavaScript SDK's plaintext")
			if !bytes.Equal(got, plain) {
				t.Fatalf("the JavaScript SDK decrypted %v to %d bytes, want the %d-byte plaintext", suite, len(got), len(plain))
			}
		}
	})
}
